"""eqbench compare: flag score changes against a baseline results.json (exit 1 when the gate fails)."""

from __future__ import annotations

import argparse
import math

from ..errors import EqbenchError

NAME = "compare"
HELP = "compare results.json with a baseline; the first line is the verdict, exit 1 when the gate fails (for CI)"
EXAMPLES = """examples:
  eqbench compare runs/eval/results.json --baseline reports/baseline.json
  eqbench compare new.json --baseline base.json --tol psnr-y=0.02 ssim-y=0.0002
  eqbench compare new.json --baseline base.json --format md > summary.md   # e.g. $GITHUB_STEP_SUMMARY
  eqbench compare new.json --baseline base.json --tolerance 0.001 --fail-on-change   # the zoo's CI gate

Cells are compared only when protocol@version, dataset digest, image count (and names), metric and scale
all match; other pairs are listed as 'not comparable' with the reason and fail the gate.
Default tolerances: psnr-y / psnr-rgb / eq-s 0.05 dB, ssim-y 0.0005 (absolute)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="the new results.json")
    p.add_argument("--baseline", required=True, help="the reference results.json")
    p.add_argument("--tolerance", type=float,
                   help="one largest allowed change for every metric, in the metric's unit (overrides the "
                   "per-metric defaults; --tol overrides it per metric)")
    p.add_argument("--tol", nargs="+", default=[], metavar="METRIC=VALUE",
                   help="per-metric tolerance, e.g. psnr-y=0.05 (dB) ssim-y=0.0005 (absolute)")
    p.add_argument("--format", choices=["text", "md", "json"], default="text", help="what is printed")
    p.add_argument("--markdown", help="also write the markdown rendering to this file")
    p.add_argument("--all", action="store_true", help="list every cell (within tolerance and missing too)")
    p.add_argument("--allow-missing", action="store_true", help="cells missing from the new results are not failures")
    p.add_argument("--fail-on-change", action="store_true",
                   help="improvements beyond the tolerance and new cells fail too: any moved score needs a "
                   "deliberately regenerated baseline (the zoo's CI gate)")


def _tolerances(a: argparse.Namespace) -> dict[str, float]:
    from ..errors import unknown_name
    from ..metrics import METRICS
    from ..run.compare import DEFAULT_TOLERANCES

    def check(name: str, v: float) -> float:
        if not (v >= 0 and math.isfinite(v)):
            raise EqbenchError(f"{name} must be a finite number >= 0, got {v}")
        return v

    tol = dict(DEFAULT_TOLERANCES)
    if a.tolerance is not None:
        tol = {m: check("--tolerance", a.tolerance) for m in METRICS}
    for item in a.tol:
        metric, sep, value = item.partition("=")
        if not sep:
            raise EqbenchError(f"--tol takes METRIC=VALUE, e.g. psnr-y=0.05; got {item!r}")
        if metric not in METRICS:
            raise unknown_name("metric", metric, METRICS)
        try:
            tol[metric] = check(f"--tol {metric}", float(value))
        except ValueError:
            raise EqbenchError(f"--tol {metric}: {value!r} is not a number") from None
    return tol


def run(a: argparse.Namespace) -> int:
    from ..results import load_results, write_text_atomic
    from ..run.compare import compare, exit_reasons, render

    tol = _tolerances(a)
    new, base = load_results(a.results), load_results(a.baseline)
    findings = compare(new, base, tol)
    reasons = exit_reasons(findings, allow_missing=a.allow_missing, fail_on_change=a.fail_on_change)
    print(render(findings, a.format, a.all, reasons=reasons, tolerances=tol))
    if a.markdown:
        write_text_atomic(a.markdown, render(findings, "md", a.all, reasons=reasons, tolerances=tol) + "\n")
    return 1 if reasons else 0
