"""The one job runner behind `eqbench run` and `eqbench analyze`: evaluate, analyse, report.

    from eqbench.run.config import build_config
    from eqbench.run.job import run_job
    run_job(build_config({"methods": ["all"], "datasets": ["Set5"], "out": "out/zoo"}))

The configuration is complete and validated before this starts (eqbench/run/config.py); the job only
does the work, writing results.json after every cell and analysis.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import CellErrors
from .analyses import run_analyses, write_report
from .config import RunConfig


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _progress(m, ds, scale, cell) -> None:
    _say(f"  {m:>10} {ds:>8} {scale.label():>7}  psnr-y {cell.mean('psnr-y'):.4f}  "
         f"ssim-y {cell.mean('ssim-y'):.5f}  ({len(cell.per_image)} images)")


def run_job(cfg: RunConfig) -> Path:
    """Evaluate (unless `cfg.evaluate` is False), run `cfg.analyses`, write the report; returns results.json.

    A cell whose model output is not finite is reported on its own line and not scored; the job finishes
    the other cells, then raises `CellErrors` (exit 2) naming them.
    """
    failed = _evaluate(cfg) if cfg.evaluate else []
    failed += run_analyses(cfg)
    if not cfg.evaluate and cfg.results_path.exists():
        print(f"wrote {cfg.results_path}")
    if cfg.report and cfg.results_path.exists():
        print(f"wrote {write_report(cfg.results_path)}")
    if failed:
        raise CellErrors(failed, str(cfg.results_path))
    return cfg.results_path


def _evaluate(cfg: RunConfig) -> list[str]:
    from ..report.tables import text_table
    from .runner import run as run_eval

    for spec in cfg.models:
        src = {"zoo": "zoo", "user": spec.weights, "random": "random init"}.get(spec.source)
        if src:
            _say(f"  {spec.method}: {spec.size}, weights: {src}")
    failed: list[str] = []
    try:
        doc = run_eval(cfg, progress=_progress)
    except CellErrors as e:  # the other cells are written: finish the job, then fail
        if not cfg.results_path.exists():
            raise
        doc, failed = e.doc, list(e.failed)
    print(text_table(doc))
    print(f"wrote {cfg.results_path}")
    return failed
