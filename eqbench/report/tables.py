"""Paper-style tables from results rows: methods as rows, dataset x scale as columns.

Columns are grouped as in the EQSR paper's Table 1: in-distribution scales (both factors <= 4) and
out-of-distribution ones (marked *). Best and second best per column follow the metric's
`higher_is_better` (eqbench.metrics.METRICS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..metrics import METRICS
from ..scales import Scale

OOD_LIMIT = 4.0  # the methods' training range is x1..x4


def scale_label(s) -> str:
    sc = Scale(float(s[0]), float(s[1]))
    return sc.label() + ("*" if max(sc.h, sc.w) > OOD_LIMIT else "")


@dataclass
class Table:
    metric: str
    protocol: str
    methods: list[str]
    columns: list[tuple[str, str]]  # (dataset, scale label)
    values: dict[tuple[str, str, str], float]  # (method, dataset, scale label) -> value
    n_images: dict[tuple[str, str, str], int] = field(default_factory=dict)  # same keys -> images averaged
    reference: str | None = None  # cells worse than this method's in their column are flagged

    def get(self, method: str, col: tuple[str, str]) -> float | None:
        return self.values.get((method, *col))

    @property
    def higher_is_better(self) -> bool:
        info = METRICS.get(self.metric)
        return info.higher_is_better if info else True

    def ranks(self, col: tuple[str, str]) -> dict[str, int]:
        """method -> 1 (best) or 2 (second best) for this column; ties share a rank. Only when at least
        three methods compete: with two, best/second would just colour every cell."""
        vals = [(m, v) for m in self.methods if (v := self.get(m, col)) is not None and not math.isnan(v)]
        if len(vals) < 3:
            return {}
        distinct = sorted({v for _, v in vals}, reverse=self.higher_is_better)
        return {m: distinct.index(v) + 1 for m, v in vals if v in distinct[:2]}

    def below_reference(self, method: str, col: tuple[str, str]) -> bool:
        """Whether this cell is worse than the reference method's (bicubic's) in the same column."""
        if self.reference is None or method == self.reference:
            return False
        v, r = self.get(method, col), self.get(self.reference, col)
        if v is None or r is None or math.isnan(v) or math.isnan(r):
            return False
        return v < r if self.higher_is_better else v > r

    def dataset_images(self) -> dict[str, str]:
        """dataset -> '5 images' (or '2-5 images' when cells average different counts)."""
        out: dict[str, set[int]] = {}
        for (_, ds, _), n in self.n_images.items():
            out.setdefault(ds, set()).add(int(n))
        return {ds: (f"{min(ns)}" if len(ns) == 1 else f"{min(ns)}-{max(ns)}") + " images" for ds, ns in out.items()}

    def fmt(self, v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        digits = METRICS[self.metric].digits if self.metric in METRICS else 4
        return f"{v:.{digits}f}"


def build_table(doc: dict, metric: str, kind: str = "eval", order: list[str] | None = None,
                reference: str | None = None) -> Table:
    """`order`: the row order (default: first appearance); `reference`: the method cells are flagged against."""
    rows = [r for r in doc["rows"] if r.get("kind", "eval") == kind and r["metric"] == metric]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if order is not None:
        methods = [m for m in order if m in methods] + [m for m in methods if m not in order]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    cols = sorted({(r["dataset"], tuple(float(x) for x in r["scale"])) for r in rows},
                  key=lambda c: (datasets.index(c[0]), max(c[1]) > OOD_LIMIT, c[1][0] != c[1][1], c[1]))
    values, counts = {}, {}
    for r in rows:
        key = (r["method"], r["dataset"], scale_label(r["scale"]))
        values[key] = float(r["value"])  # "inf"/"nan" as written to JSON, or a number
        if r.get("n_images") is not None:
            counts[key] = r["n_images"]
    return Table(metric, doc.get("config", {}).get("protocol", "?"), methods,
                 [(d, scale_label(s)) for d, s in cols], values, counts,
                 reference if reference in methods else None)  # fmt: skip


def text_table(doc: dict, metrics: tuple[str, ...] = ("psnr-y", "ssim-y")) -> str:
    out = []
    for metric in metrics:
        t = build_table(doc, metric)
        if not t.methods:
            continue
        head = ["method"] + [f"{d} x{s}" for d, s in t.columns]
        body = [[m] + [t.fmt(t.get(m, c)) for c in t.columns] for m in t.methods]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        out.append(f"{metric} ({t.protocol})")
        for r in [head] + body:
            out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        out.append("")
    return "\n".join(out).rstrip()


def _head(t: Table) -> list[str]:
    n = t.dataset_images()
    return ["method"] + [f"{d} x{s}" + (f" ({n[d]})" if d in n else "") for d, s in t.columns]


def markdown_table(t: Table, labels: dict[str, str] | None = None) -> str:
    """Best in bold, second in italics (>= 3 methods); cells below the reference marked with a trailing v."""
    labels = labels or {}
    lines = ["| " + " | ".join(_head(t)) + " |", "|" + "---|" * (len(t.columns) + 1)]
    for m in t.methods:
        cells = []
        for c in t.columns:
            rank = t.ranks(c).get(m)
            v = t.fmt(t.get(m, c)) + (" v" if t.below_reference(m, c) else "")
            cells.append(f"**{v}**" if rank == 1 else f"_{v}_" if rank == 2 else v)
        lines.append(f"| {labels.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(t: Table, labels: dict[str, str] | None = None) -> str:
    """Full precision (repr of the stored float); empty for a missing cell."""
    import csv
    import io

    labels = labels or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_head(t))
    for m in t.methods:
        w.writerow([labels.get(m, m)] + ["" if (v := t.get(m, c)) is None else repr(v) for c in t.columns])
    return buf.getvalue()


def render_tables(doc: dict, metric: str, fmt: str) -> str:
    """One metric's table, or every table of the report (metric 'all'), as markdown ("md") or CSV, captioned;
    "" when there is nothing to export (eqbench/report/export.py)."""
    from .export import export_tables

    return export_tables(doc, metric, fmt)
