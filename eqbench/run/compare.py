"""Score gate: compare a results.json against a baseline, cell by cell, only where the numbers mean the same.

Two cells are comparable only when they measure the same thing: the same kind, method, dataset, scale and
metric (the cell key), under the same protocol@version, on the same images (dataset digest, image count
and image names). Any other pair is `not comparable` with the reason, and is never counted as improved
or regressed. Tolerances are per metric, in the metric's unit (dB for PSNR and EQ_S, absolute for SSIM).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..metrics import METRICS

# Largest change per cell that counts as "within tolerance", in the metric's unit.
DEFAULT_TOLERANCES = {"psnr-y": 0.05, "psnr-rgb": 0.05, "eq-s": 0.05, "ssim-y": 0.0005}
FALLBACK_TOLERANCE = 0.05
STATUSES = ("regressed", "improved", "within tolerance", "not comparable", "missing", "new")


@dataclass(frozen=True)
class Finding:
    status: str  # one of STATUSES
    key: tuple  # (kind, method, dataset, scale label, metric)
    base: float | None
    new: float | None
    reason: str = ""

    @property
    def delta(self) -> float | None:
        if self.base is None or self.new is None:
            return None
        return self.new - self.base


def scale_text(s) -> str:
    h, w = float(s[0]), float(s[1])
    return f"{h:g}" if h == w else f"{h:g}x{w:g}"


def _index(doc: dict) -> dict[tuple, dict]:
    return {(r.get("kind", "eval"), r["method"], r["dataset"], scale_text(r["scale"]), r["metric"]): r
            for r in doc["rows"]}  # fmt: skip


def _digest(doc: dict, dataset: str) -> str | None:
    return ((doc.get("datasets") or {}).get(dataset) or {}).get("digest")


def incomparable(new_row: dict, base_row: dict, new_doc: dict, base_doc: dict) -> str:
    """Why two cells with the same key measure different things ('' when they are comparable)."""
    why = []
    if new_row.get("protocol") != base_row.get("protocol"):
        why.append(f"protocol {new_row.get('protocol')} vs {base_row.get('protocol')}")
    if new_row.get("n_images") != base_row.get("n_images"):
        why.append(f"{new_row.get('n_images')} images vs {base_row.get('n_images')}")
    else:
        ni, bi = set(new_row.get("images") or {}), set(base_row.get("images") or {})
        if ni and bi and ni != bi:
            why.append(f"different images ({len(ni ^ bi)} names differ)")
    if new_row.get("kind", "eval") == "eval":  # analyses may crop or subset; their rows carry the images
        dn, db = _digest(new_doc, new_row["dataset"]), _digest(base_doc, base_row["dataset"])
        if dn and db and dn != db:
            why.append(f"dataset digest {dn[:8]} vs {db[:8]}")
    return "; ".join(why)


def _value(v) -> float:
    return float(v)  # "inf"/"nan" strings as written to JSON, or a number


def _judge(key: tuple, bv: float, nv: float, tol: float) -> str:
    info = METRICS.get(key[4])
    sign = 1.0 if (info is None or info.higher_is_better) else -1.0
    if math.isnan(nv) and not math.isnan(bv):
        return "regressed"
    if nv == bv or (math.isnan(nv) and math.isnan(bv)):
        return "within tolerance"
    gain = sign * (nv - bv)
    return "regressed" if gain < -tol else "improved" if gain > tol else "within tolerance"


def tolerance_for(metric: str, tolerances: dict[str, float]) -> float:
    return tolerances.get(metric, tolerances.get("*", DEFAULT_TOLERANCES.get(metric, FALLBACK_TOLERANCE)))


def compare(new: dict, base: dict, tolerances: dict[str, float] | float | None = None) -> list[Finding]:
    """Every baseline cell: regressed / improved (beyond the metric's tolerance) / within tolerance /
    not comparable (with the reason) / missing; cells only in `new` are 'new'. A number for
    `tolerances` applies to every metric (the old single --tolerance)."""
    if not isinstance(tolerances, dict):
        tolerances = {} if tolerances is None else {"*": float(tolerances)}
    a, b = _index(new), _index(base)
    findings = []
    for key, brow in b.items():
        bv = _value(brow["value"])
        if key not in a:
            findings.append(Finding("missing", key, bv, None))
            continue
        nrow = a[key]
        nv = _value(nrow["value"])
        why = incomparable(nrow, brow, new, base)
        status = "not comparable" if why else _judge(key, bv, nv, tolerance_for(key[4], tolerances))
        findings.append(Finding(status, key, bv, nv, why))
    findings += [Finding("new", k, None, _value(r["value"]), "not in the baseline") for k, r in a.items() if k not in b]
    return findings


def counts(findings: list[Finding]) -> dict[str, int]:
    return {s: sum(f.status == s for f in findings) for s in STATUSES}


def exit_reasons(findings: list[Finding], *, allow_missing: bool = False, fail_on_change: bool = False) -> list[str]:
    """Why the gate fails (empty: it passes)."""
    c = counts(findings)
    failing = ["regressed", "not comparable"] + ([] if allow_missing else ["missing"])
    failing += ["improved", "new"] if fail_on_change else []
    return [f"{c[s]} {s}" for s in failing if c[s]]


def verdict(findings: list[Finding], reasons: list[str]) -> str:
    c = counts(findings)
    tally = ", ".join(f"{c[s]} {s}" for s in STATUSES if s != "new" or c[s])
    if reasons:
        return f"FAIL (exit 1): {tally}; fails because of {', '.join(reasons)}"
    return f"PASS (exit 0): {tally}"


_ORDER = {s: i for i, s in enumerate(("regressed", "not comparable", "improved", "new", "missing",
                                      "within tolerance"))}
_HEAD = ["status", "method", "dataset", "scale", "metric", "baseline", "new", "delta", "reason"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _listed(findings: list[Finding], show_all: bool) -> tuple[list[Finding], list[Finding]]:
    """(cells listed one per line, missing cells summarised); `show_all` lists every cell."""
    rows = [f for f in findings if show_all or f.status not in ("within tolerance", "missing")]
    rows.sort(key=lambda f: (_ORDER[f.status], f.key))
    missing = [] if show_all else [f for f in findings if f.status == "missing"]
    return rows, missing


def _missing_summary(missing: list[Finding]) -> list[str]:
    by: dict[tuple, int] = {}
    for f in missing:
        by[(f.key[1], f.key[2])] = by.get((f.key[1], f.key[2]), 0) + 1
    return [f"missing: {n} cells of {m} on {d}" for (m, d), n in sorted(by.items())]


def _body(rows: list[Finding]) -> list[list[str]]:
    return [[f.status, f.key[1], f.key[2], f.key[3] if f.key[0] == "eval" else f"{f.key[3]} ({f.key[0]})", f.key[4],
             _fmt(f.base), _fmt(f.new), _fmt(f.delta), f.reason] for f in rows]  # fmt: skip


def render(findings: list[Finding], fmt: str = "text", show_all: bool = False, *, reasons: list[str] | None = None,
           tolerances: dict[str, float] | None = None) -> str:
    """The verdict line first, then the listed cells; `fmt` text | md | json."""
    reasons = exit_reasons(findings) if reasons is None else reasons
    head = verdict(findings, reasons)
    rows, missing = _listed(findings, show_all)
    if fmt == "json":
        return json.dumps({"verdict": head, "exit_code": 1 if reasons else 0, "reasons": reasons,
                           "counts": counts(findings), "tolerances": tolerances or {},
                           "cells": [{"status": f.status, "kind": f.key[0], "method": f.key[1], "dataset": f.key[2],
                                      "scale": f.key[3], "metric": f.key[4], "baseline": f.base, "new": f.new,
                                      "delta": f.delta, "reason": f.reason} for f in sorted(
                                          findings, key=lambda f: (_ORDER[f.status], f.key))]},
                          indent=1)  # fmt: skip
    body = _body(rows)
    tol = ", ".join(f"{m} {v:g}" for m, v in (tolerances or {}).items())
    if fmt == "md":
        lines = [f"**eqbench compare**: {head}", ""] + ([f"Tolerances: {tol}", ""] if tol else [])
        if body:
            lines += ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
        lines += [""] + [f"- {s}" for s in _missing_summary(missing)] if missing else []
        return "\n".join(lines).rstrip()
    out = [head] + ([f"tolerances: {tol}"] if tol else [])
    if body:
        widths = [max(len(x[i]) for x in [_HEAD] + body) for i in range(len(_HEAD))]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [_HEAD] + body]
    out += _missing_summary(missing)
    return "\n".join(out)
