"""eqbench run: evaluate methods over datasets x scales under one protocol, run analyses, write the report."""

from __future__ import annotations

import argparse

from .common import add_data_root

NAME = "run"
HELP = "evaluate methods on datasets and scales (+ analyses and the HTML report)"
EXAMPLES = """examples:
  eqbench run --methods all                                  # the CPU zoo on the embedded samples
  eqbench run --methods all --datasets Set5 Set14 --scales 2 3 4 6 1.55 2.75 \\
      --analyses equivariance cka profile --data-root ../shared/datasets --out reports/zoo
  eqbench run --methods bicubic --datasets Set5 Set14 --scales 2 3 4 --protocol classic-y \\
      --data-root ../shared/datasets --out out/bicubic
  eqbench run --methods bicubic liif --datasets Set5 --scales 2 2.75 1.5x4 --weights liif=liif.pth \\
      --out out/liif
  eqbench run --config run.yaml --limit 2                    # CLI options override the file's"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Every default is None here: the effective value comes from CLI > --config file > defaults
    # (eqbench/run/config.py), so the file's value is kept unless the option is on the command line.
    p.add_argument("--config", help="YAML file of run options (keys: the long option names)")
    p.add_argument("--methods", nargs="+", help="method names, package.module:attribute specs of your own models, "
                   "or 'all' (every built-in method with weights or a zoo model; 'all SPEC ...' adds yours)")
    p.add_argument("--datasets", nargs="+", help="dataset names (datasets.yaml) or image folders (a path, named by "
                   "its folder name); default: Set5 Set14 when the "
                   "data root has them, else the embedded 'samples'")
    p.add_argument("--scales", nargs="+", help="2, 2.75, or HxW like 1.5x4 (default: 2 3 4)")
    p.add_argument("--protocol", help="matlab (default), classic-y, arbsr, basicsr, liif, eqsr")
    p.add_argument("--analyses", nargs="+", help="equivariance cka profile, 'all' or 'none' (default: all three "
                   "with --methods all, none otherwise)")
    p.add_argument("--size", help="model preset for --weights / --random-init: paper (default) or tiny; methods "
                   "without --weights use the CPU zoo's tiny models")
    p.add_argument("--weights", nargs="*", metavar="METHOD=PATH", help="weights per method (default: the zoo's)")
    p.add_argument("--limit", type=int, help="at most N images per dataset (smoke runs)")
    p.add_argument("--device", help="cpu (default), cuda, cuda:1 ...")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output folder for results.json (default: runs/eval-<date>-<time>)")
    p.add_argument("--results-name", help="file name of the results in --out (default results.json)")
    p.add_argument("--random-init", action="store_true", default=None,
                   help="evaluate learned methods without --weights at their random initialisation (smoke tests)")
    p.add_argument("--no-report", dest="report", action="store_false", default=None,
                   help="do not write report.html beside results.json")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--cell-cache", metavar="DIR", help="reuse cells evaluated before with the same weights, data, "
                   "scale, protocol and evaluation code (sha256 of the source files on the evaluation path), "
                   "kept in DIR, e.g. ~/.cache/eqbench/cells; re-evaluates the rest (default: no cache)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", default=None,
                   help="continue a run in --out, skipping finished cells")
    g.add_argument("--force", action="store_true", default=None, help="overwrite a run already in --out")
    add_data_root(p)


def build_config(a: argparse.Namespace):
    """The frozen RunConfig from the parsed options (eqbench/run/config.py validates every name)."""
    from ..run.config import build_config as build

    cli = {k: getattr(a, k, None) for k in ("methods", "datasets", "scales", "protocol", "size", "limit", "device",
                                            "seed", "out", "data_root", "random_init", "resume", "force",
                                            "analyses", "report", "results_name", "cell_cache")}  # fmt: skip
    cli["weights"] = a.weights
    return build(cli, config_file=a.config, progress=not a.no_progress)


def run(a: argparse.Namespace) -> int:
    from ..run.job import run_job

    run_job(build_config(a))
    return 0
