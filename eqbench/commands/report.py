"""eqbench report: an HTML page (or markdown/CSV tables) rendered from a results.json alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EqbenchError

NAME = "report"
HELP = "render results.json as HTML (or markdown/CSV tables)"
EXAMPLES = """examples:
  eqbench report runs/eval/results.json -o report.html
  eqbench report runs/eval/results.json --format md
  eqbench report runs/eval/results.json --format csv --metric ssim-y -o ssim.csv
  eqbench report runs/eval/results.json --format md --metric all        # every table of the HTML report
  eqbench report runs/eval/results.json --cka-pairs all                 # every between-method CKA pair"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="a results.json written by eqbench run / analyze")
    p.add_argument("-o", "--output", help="output file (default: report.html beside results.json; md/csv: stdout)")
    p.add_argument("--format", choices=["html", "md", "csv"], default="html")
    p.add_argument("--metric", default="psnr-y", help="for md/csv: which metric's table, or 'all' (every table of "
                   "the HTML report, captioned; CSV at full precision)")
    p.add_argument("--reference", help="method the relative plots subtract (default: the parameter-free reference)")
    p.add_argument("--cka-pairs", metavar="all|METHOD", help="between-method CKA shown: 'all' pairs, or each method "
                   "vs METHOD (default: each method vs the first one with between-method CKA)")
    p.add_argument("--no-published", action="store_true", help="leave out the block of published numbers")


def run(a: argparse.Namespace) -> int:
    from ..metrics import METRICS
    from ..report.tables import render_tables
    from ..results import load_results, write_text_atomic

    doc = load_results(a.results)
    if a.format == "html":
        from ..report.html import render

        html = render(doc, reference=a.reference, published=not a.no_published, cka_pairs=a.cka_pairs)
        out = Path(a.output) if a.output else Path(a.results).with_name("report.html")
        write_text_atomic(out, html)
        print(f"wrote {out}")
        return 0
    if a.metric != "all" and a.metric not in METRICS:
        from ..errors import unknown_name

        raise unknown_name("metric", a.metric, METRICS)
    text = render_tables(doc, a.metric, a.format)
    if not text:
        what = "tables" if a.metric == "all" else f"{a.metric!r} rows"
        raise EqbenchError(f"{a.results} has no {what} to export; try --metric all (or another --metric)")
    if a.output:
        write_text_atomic(Path(a.output), text)
        print(f"wrote {a.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
