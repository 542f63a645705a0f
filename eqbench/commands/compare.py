"""eqbench compare: flag score regressions against a baseline results.json (exit 1 on regression)."""

from __future__ import annotations

import argparse
import math

from ..errors import EqbenchError

NAME = "compare"
HELP = "compare results.json with a baseline; exit 1 on a regression (for CI)"
EXAMPLES = """examples:
  eqbench compare runs/eval/results.json --baseline reports/baseline.json --tolerance 0.05
  eqbench compare new.json --baseline base.json --markdown summary.md   # e.g. $GITHUB_STEP_SUMMARY"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="the new results.json")
    p.add_argument("--baseline", required=True, help="the reference results.json")
    p.add_argument("--tolerance", type=float, default=0.05,
                   help="largest allowed drop per cell, in the metric's unit (default 0.05)")
    p.add_argument("--markdown", help="also write the table as markdown to this file")
    p.add_argument("--all", action="store_true", help="list unchanged cells too")
    p.add_argument("--allow-missing", action="store_true", help="cells missing from the new results are not failures")
    p.add_argument("--fail-on-change", action="store_true",
                   help="improvements beyond the tolerance fail too: any moved score needs a deliberately "
                   "regenerated baseline (the zoo's CI gate)")


def run(a: argparse.Namespace) -> int:
    from ..results import load_results, write_text_atomic
    from ..run.compare import compare, render

    if not (a.tolerance >= 0 and math.isfinite(a.tolerance)):
        raise EqbenchError(f"--tolerance must be a finite number >= 0, got {a.tolerance}")
    new, base = load_results(a.results), load_results(a.baseline)
    pn, pb = new.get("config", {}).get("protocol"), base.get("config", {}).get("protocol")
    if pn and pb and pn != pb:
        raise EqbenchError(f"the baseline was made under protocol {pb}, the new results under {pn}: scores are not "
                           "comparable; re-run with --protocol " + pb.split("@")[0] + " or regenerate the baseline")
    findings = compare(new, base, a.tolerance)
    print(render(findings, "text", a.all))
    if a.markdown:
        write_text_atomic(a.markdown, render(findings, "md", a.all) + "\n")
    bad = {"regression", "protocol"} | (set() if a.allow_missing else {"missing"})
    bad |= {"improved", "new"} if a.fail_on_change else set()
    return 1 if any(f.status in bad for f in findings) else 0
