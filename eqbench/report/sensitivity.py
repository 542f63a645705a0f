"""Protocol sensitivity: one method's scores under every protocol, side by side.

Input: results.json documents of the same method evaluated under different protocols (one `eqbench run
--protocol P` each). Output: rows dataset x scale, one column per protocol, and the spread (max - min)
per row, which is how much of a published gap the scoring convention alone can explain.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from ..errors import EqbenchError
from .tables import build_table


@dataclass
class SensitivityTable:
    method: str
    metric: str
    protocols: list[str]
    rows: list[tuple[str, str]]  # (dataset, scale label)
    values: dict[tuple[str, str, str], float]  # (protocol, dataset, scale label) -> value
    digits: int

    def get(self, protocol: str, row: tuple[str, str]) -> float | None:
        return self.values.get((protocol, *row))

    def spread(self, row: tuple[str, str]) -> float | None:
        vals = [v for p in self.protocols if (v := self.get(p, row)) is not None and math.isfinite(v)]
        return max(vals) - min(vals) if len(vals) > 1 else None

    def cells(self, row: tuple[str, str]) -> list[str]:
        out = [self.fmt(self.get(p, row)) for p in self.protocols]
        return out + [self.fmt(self.spread(row))]

    def fmt(self, v: float | None) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{self.digits}f}"

    def head(self) -> list[str]:
        return ["dataset", "scale", *self.protocols, "spread (max - min)"]


def sensitivity_table(docs: list[dict], method: str, metric: str = "psnr-y") -> SensitivityTable:
    """`method`'s `metric` from each results document (one protocol each), rows in first-seen order."""
    protocols, rows, values, digits = [], [], {}, 4
    for doc in docs:
        t = build_table(doc, metric)
        if method not in t.methods:
            raise EqbenchError(f"results under protocol {t.protocol} have no {method!r} rows (methods: "
                               f"{', '.join(t.methods) or 'none'}); evaluate it there first")
        if t.protocol in protocols:
            raise EqbenchError(f"two results files are both under protocol {t.protocol}: give one per protocol")
        protocols.append(t.protocol)
        for col in t.columns:
            if col not in rows:
                rows.append(col)
            if (v := t.get(method, col)) is not None:
                values[(t.protocol, *col)] = v
        digits = 4 if metric.startswith("psnr") else 5
    return SensitivityTable(method, metric, protocols, rows, values, digits)


def sensitivity_markdown(t: SensitivityTable) -> str:
    lines = [f"Protocol sensitivity: {t.method}, {t.metric}", "",
             "| " + " | ".join(t.head()) + " |", "|" + "---|" * len(t.head())]
    lines += [f"| {d} | x{s} | " + " | ".join(t.cells((d, s))) + " |" for d, s in t.rows]
    return "\n".join(lines)


def sensitivity_csv(t: SensitivityTable) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(t.head())
    for d, s in t.rows:
        w.writerow([d, s, *t.cells((d, s))])
    return buf.getvalue()


def sensitivity_html(t: SensitivityTable) -> str:
    """A self-contained HTML page holding the table (it does not depend on the main report's template)."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in t.head())
    body = "".join("<tr>" + f"<td>{e(d)}</td><td>x{e(s)}</td>" + "".join(f"<td>{c}</td>" for c in t.cells((d, s)))
                   + "</tr>" for d, s in t.rows)
    title = f"Protocol sensitivity: {e(t.method)}, {e(t.metric)}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}</style></head><body>"
            f"<h2>{title}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<p>One column per protocol (name@version); spread = max - min over the protocols, the part of a "
            "difference between papers that the scoring convention alone can make.</p></body></html>")
