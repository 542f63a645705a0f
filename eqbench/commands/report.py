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
  eqbench report runs/eval/results.json --cka-pairs all                 # every between-method CKA pair
  eqbench report runs/matlab/results.json runs/eqsr/results.json --sensitivity bicubic --format md"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="a results.json written by eqbench run / analyze (several: one "
                   "per protocol, with --sensitivity)")
    p.add_argument("--sensitivity", metavar="METHOD", help="protocol sensitivity: METHOD's scores in each "
                   "results file (one protocol each) side by side")
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
    from ..results import load_results

    if a.sensitivity:
        return _sensitivity(a)
    if len(a.results) > 1:
        raise EqbenchError("several results files make a protocol sensitivity view: add --sensitivity METHOD")
    a.results = a.results[0]
    if a.metric != "all" and a.metric not in METRICS:  # every format (html ignores it; a typo is still a typo)
        from ..errors import unknown_name

        raise unknown_name("metric", a.metric, METRICS)
    doc = load_results(a.results)
    if a.format == "html":
        from ..report.html import render

        html = render(doc, reference=a.reference, published=not a.no_published, cka_pairs=a.cka_pairs)
        out = Path(a.output) if a.output else Path(a.results).with_name("report.html")
        _write(out, html)
        print(f"wrote {out}")
        return 0
    text = render_tables(doc, a.metric, a.format)
    if not text:
        what = "tables" if a.metric == "all" else f"{a.metric!r} rows"
        raise EqbenchError(f"{a.results} has no {what} to export; try --metric all (or another --metric)")
    if a.output:
        _write(Path(a.output), text)
        print(f"wrote {a.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _sensitivity(a: argparse.Namespace) -> int:
    from ..report import sensitivity as sens
    from ..results import load_results

    t = sens.sensitivity_table([load_results(r) for r in a.results], a.sensitivity, a.metric)
    text = {"md": sens.sensitivity_markdown, "csv": sens.sensitivity_csv, "html": sens.sensitivity_html}[a.format](t)
    if a.output or a.format == "html":
        out = Path(a.output) if a.output else Path(a.results[0]).with_name("sensitivity.html")
        _write(out, text)
        print(f"wrote {out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _write(out: Path, text: str) -> None:
    """Atomically, under the lock of that output file (two reports into one file: one waits)."""
    from ..lock import output_lock
    from ..results import write_text_atomic

    if out.is_dir():
        raise EqbenchError(f"-o {out} is a folder; give a file name such as {out / 'report.html'}")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EqbenchError(f"cannot create the folder of -o {out}: {e.strerror}; choose another -o") from None
    with output_lock(parent, out.name, what="eqbench report"):
        write_text_atomic(out, text)
