"""Paper-style tables from results rows: methods as rows, dataset x scale as columns.

Columns are grouped as in the EQSR paper's Table 1: in-distribution scales (both factors <= 4) and
out-of-distribution ones (marked *). Best and second best per column follow the metric's
`higher_is_better` (eqbench.metrics.METRICS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    def get(self, method: str, col: tuple[str, str]) -> float | None:
        return self.values.get((method, *col))

    def ranks(self, col: tuple[str, str]) -> dict[str, int]:
        """method -> 1 (best) or 2 (second best) for this column; ties share a rank."""
        info = METRICS.get(self.metric)
        hib = info.higher_is_better if info else True
        vals = [(m, v) for m in self.methods if (v := self.get(m, col)) is not None and not math.isnan(v)]
        distinct = sorted({v for _, v in vals}, reverse=hib)
        return {m: distinct.index(v) + 1 for m, v in vals if v in distinct[:2] and len(vals) > 1}

    def fmt(self, v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        digits = METRICS[self.metric].digits if self.metric in METRICS else 4
        return f"{v:.{digits}f}"


def build_table(doc: dict, metric: str, kind: str = "eval") -> Table:
    rows = [r for r in doc["rows"] if r.get("kind", "eval") == kind and r["metric"] == metric]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    cols = sorted({(r["dataset"], tuple(float(x) for x in r["scale"])) for r in rows},
                  key=lambda c: (datasets.index(c[0]), max(c[1]) > OOD_LIMIT, c[1]))
    values = {}
    for r in rows:
        v = r["value"]
        if isinstance(v, str):  # "inf"/"nan" as written to JSON
            v = float(v)
        values[(r["method"], r["dataset"], scale_label(r["scale"]))] = v
    return Table(metric, doc.get("config", {}).get("protocol", "?"), methods,
                 [(d, scale_label(s)) for d, s in cols], values)


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


def markdown_table(t: Table) -> str:
    head = "| method | " + " | ".join(f"{d} x{s}" for d, s in t.columns) + " |"
    lines = [head, "|" + "---|" * (len(t.columns) + 1)]
    for m in t.methods:
        cells = []
        for c in t.columns:
            rank = t.ranks(c).get(m)
            v = t.fmt(t.get(m, c))
            cells.append(f"**{v}**" if rank == 1 else f"_{v}_" if rank == 2 else v)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(t: Table) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method"] + [f"{d} x{s}" for d, s in t.columns])
    for m in t.methods:
        w.writerow([m] + [t.fmt(t.get(m, c)) for c in t.columns])
    return buf.getvalue()


def render_tables(doc: dict, metric: str, fmt: str) -> str:
    """The metric's table as markdown (fmt "md") or CSV; "" when no method has that metric."""
    kind = "equivariance" if metric == "eq-s" else "eval"
    table = build_table(doc, metric, kind=kind)
    if not table.methods:
        return ""
    return markdown_table(table) if fmt == "md" else csv_table(table)
