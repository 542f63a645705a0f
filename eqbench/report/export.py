"""Markdown / CSV exports of the report's tables (`eqbench report --format md|csv [--metric M|all]`).

Each table gets a caption (title, protocol, what the marks mean); CSV cells keep full precision (the
stored floats' repr), markdown uses the report's digits. Analysis-only results files export what they have
(EQ_S, profiles).
"""

from __future__ import annotations

import csv
import io

from .grids import Grid, cards_grid, profile_grids, published_grid
from .methods import method_infos, ordered, reference_method
from .tables import Table, build_table, csv_table, markdown_table

SCORES = (("psnr-y", "eval"), ("ssim-y", "eval"), ("psnr-rgb", "eval"), ("eq-s", "equivariance"),
          ("psnr-y", "equivariance-ref"))  # fmt: skip


def _caption(t: Table, kind: str, labels: dict[str, str]) -> str:
    what = {"equivariance-ref": " (PSNR-Y of the EQ_S crops)"}.get(kind, "")
    marks = ["column headers give each dataset's image count; * = outside the x1-x4 training range"]
    if t.reference:
        marks.append(f"a trailing v marks a cell worse than {t.reference}")
    if any(t.ranks(c) for c in t.columns):
        marks.append("best in bold, second in italics")
    flagged = sorted({lab.split("[", 1)[1].rstrip("]") for lab in labels.values() if "[" in lab})
    if flagged:
        marks.append(f"methods marked [{'] ['.join(flagged)}] are not the papers' models")
    return f"{t.metric}{what}, protocol {t.protocol}: " + "; ".join(marks)


def _grid_text(g: Grid, fmt: str) -> str:
    if fmt == "md":
        lines = ["| " + " | ".join(g.head) + " |", "|" + "---|" * len(g.head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in g.text_rows()]
        return "\n".join(lines)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(g.head)
    w.writerows([["" if v is None else repr(v) if isinstance(v, float) else v for v in r] for r in g.rows])
    return buf.getvalue()


def export_tables(doc: dict, metric: str, fmt: str) -> str:
    """`metric`: one metric's score table, or 'all' (every table of the HTML report, captioned)."""
    methods = list(dict.fromkeys(r["method"] for r in doc["rows"]))
    infos = method_infos(doc, methods)
    order, ref = ordered(methods, infos), reference_method(infos)
    labels = {m: infos[m].label for m in methods}
    blocks = []
    for name, kind in SCORES:
        if metric not in ("all", name) or (metric != "all" and kind == "equivariance-ref"):
            continue
        t = build_table(doc, name, kind=kind, order=order, reference=ref)
        if t.methods:
            body = markdown_table(t, labels) if fmt == "md" else csv_table(t, labels)
            blocks.append((_caption(t, kind, labels), body))
    if metric == "all":
        infos_all = method_infos(doc, order)
        grids = [cards_grid(infos_all, order), *profile_grids(doc, order)]
        paper = [m for m in order if infos[m].size == "paper" and infos[m].source != "random-init"
                 and not infos[m].reference]  # fmt: skip
        if paper and (g := published_grid(doc, paper + [ref] if ref else paper)):
            grids.append(g)
        blocks += [(f"{g.title}" + (f": {g.note}" if g.note else ""), _grid_text(g, fmt)) for g in grids]
    if not blocks:
        return ""
    if fmt == "md":
        return "\n\n".join(f"**{cap}**\n\n{body}" for cap, body in blocks) + "\n"
    return "\n".join(f"# {cap}\n{body}" for cap, body in blocks)
