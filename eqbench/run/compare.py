"""Score-regression gate: compare a results.json against a baseline, cell by cell."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..metrics import METRICS


@dataclass(frozen=True)
class Finding:
    status: str  # "regression" | "missing" | "protocol" | "improved" | "ok" | "new"
    key: tuple  # (kind, method, dataset, scale label, metric)
    base: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        if self.base is None or self.new is None:
            return None
        return self.new - self.base


def _val(v) -> float:
    return float(v) if isinstance(v, str) else float(v)


def _index(doc: dict) -> dict[tuple, tuple[float, str]]:
    out = {}
    for r in doc["rows"]:
        s = r["scale"]
        label = f"{float(s[0]):g}" if s[0] == s[1] else f"{float(s[0]):g}x{float(s[1]):g}"
        out[(r.get("kind", "eval"), r["method"], r["dataset"], label, r["metric"])] = (_val(r["value"]), r["protocol"])
    return out


def compare(new: dict, base: dict, tolerance: float) -> list[Finding]:
    """Every baseline cell: regression (worse by more than `tolerance`), missing, protocol mismatch,
    improved (better by more than tolerance) or ok; cells only in `new` are 'new'."""
    a, b = _index(new), _index(base)
    findings = []
    for key, (bv, bp) in b.items():
        if key not in a:
            findings.append(Finding("missing", key, bv, None))
            continue
        nv, np_ = a[key]
        if np_ != bp:
            findings.append(Finding("protocol", key, bv, nv))
            continue
        info = METRICS.get(key[4])
        sign = 1.0 if (info is None or info.higher_is_better) else -1.0
        if math.isnan(nv) and not math.isnan(bv):
            findings.append(Finding("regression", key, bv, nv))
            continue
        gain = sign * (nv - bv) if math.isfinite(nv) and math.isfinite(bv) else (0.0 if nv == bv else sign * (nv - bv))
        status = "regression" if gain < -tolerance else "improved" if gain > tolerance else "ok"
        findings.append(Finding(status, key, bv, nv))
    findings += [Finding("new", k, None, v) for k, (v, _) in a.items() if k not in b]
    return findings


def render(findings: list[Finding], fmt: str = "text", show_ok: bool = False) -> str:
    rows = [f for f in findings if show_ok or f.status not in ("ok",)]
    order = {"regression": 0, "protocol": 1, "missing": 2, "improved": 3, "new": 4, "ok": 5}
    rows.sort(key=lambda f: (order[f.status], f.key))

    def fmt_v(v):
        return "-" if v is None else f"{v:.4f}"

    head = ["status", "method", "dataset", "scale", "metric", "baseline", "new", "delta"]
    body = [[f.status, f.key[1], f.key[2], f.key[3], f.key[4], fmt_v(f.base), fmt_v(f.new), fmt_v(f.delta)]
            for f in rows]
    counts = {s: sum(f.status == s for f in findings) for s in order}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return f"**eqbench compare**: {summary}\n\n" + ("\n".join(lines) if body else "no differences")
    if not body:
        return f"{summary}"
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body]
    return "\n".join(lines) + f"\n{summary}"
