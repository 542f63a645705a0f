"""Markdown / CSV renderings shared by `report` and `compare`."""

from __future__ import annotations

from ..report.tables import build_table, csv_table, markdown_table


def render_tables(doc: dict, metric: str, fmt: str) -> str:
    kind = "equivariance" if metric == "eq-s" else "eval"
    t = build_table(doc, metric, kind=kind)
    if not t.methods:
        return ""
    return markdown_table(t) if fmt == "md" else csv_table(t)
