"""eqbench analyze: scale equivariance (EQ_S), layer similarity across scales (CKA), model profiles.

Results go into results.json in --out (the schema `eqbench run` writes; an existing file there gets
the analysis added), figures into --out/figures as PNG and SVG.
"""

from __future__ import annotations

import argparse

from .common import add_data_root

NAME = "analyze"
HELP = "EQ_S equivariance curves, CKA across scales, model profiles"
EXAMPLES = """examples:
  eqbench analyze equivariance --methods bicubic --datasets Set5 --scales 2 2.5 3 4 \\
      --data-root ../shared/datasets --out out/eq
  eqbench analyze cka --methods liif --size tiny --weights liif=liif_tiny.safetensors --datasets Set14 \\
      --scales 2 3 4 --crops 64 --data-root ../shared/datasets --out out/cka
  eqbench analyze cka --methods liif lte --size tiny --random-init --scales 2 3 4 --out out/cka-smoke
  eqbench analyze profile --methods bicubic liif --input-sizes 48 100 --scales 2 4 --datasets Set5 \\
      --data-root ../shared/datasets --out out/profile"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Analysis options default to None here: their one set of defaults is AnalysisOptions (run/config.py).
    from ..run.config import ANALYSES
    from ..run.config import AnalysisOptions as O

    p.add_argument("analysis", choices=ANALYSES)
    p.add_argument("--methods", nargs="+", required=True, help="method names or package.module:attribute specs "
                   "(equivariance always adds the reference method, bicubic)")
    p.add_argument("--scales", nargs="+", default=["2", "3", "4"],
                   help="2, 2.5, or HxW like 1.5x4 (profile: the FLOPs scales)")
    p.add_argument("--size", help="model preset: paper or tiny (default: tiny zoo models where no --weights are "
                   "given, else paper)")
    p.add_argument("--weights", nargs="*", default=[], metavar="METHOD=PATH",
                   help="weights per method (default: the CPU zoo's; profiles use random weights)")
    p.add_argument("--random-init", action="store_true",
                   help="equivariance/cka: analyse learned methods without --weights (smoke tests)")
    p.add_argument("--datasets", "--dataset", nargs="+", dest="datasets",
                   help="names or image folders; EQ_S per dataset; CKA crops from all; profile timing on the "
                   "first (default: Set5 "
                   "Set14 when the data root has them, else the embedded 'samples')")
    p.add_argument("--protocol", default="matlab", help="evaluation protocol for f and scoring (EQ_S, timing)")
    p.add_argument("--limit", type=int, help="at most N images per dataset")
    p.add_argument("--eq-crop", type=int, metavar="N",
                   help="equivariance: centre-crop each image to at most N x N first (default: whole images)")
    p.add_argument("--crops", type=int, help=f"cka: number of LR crops (default {O.crops})")
    p.add_argument("--crop-size", type=int, help=f"cka: LR crop side in pixels (default {O.crop_size})")
    p.add_argument("--batch-size", type=int, help=f"cka: crops per minibatch (>= 4, default {O.batch_size})")
    p.add_argument("--cka-pairs", metavar="all|METHOD", help="cka between methods: 'all' pairs, or each method vs "
                   "METHOD (default: each method vs the first one)")
    p.add_argument("--input-sizes", nargs="+", type=int,
                   help=f"profile: square LR sides for FLOPs (default {' '.join(map(str, O.input_sizes))})")
    p.add_argument("--memory-input", type=int, help=f"profile: square LR side for peak memory (default "
                   f"{O.memory_input})")
    p.add_argument("--memory-scale", help=f"profile: scale for peak memory (default {O.memory_scale.label()})")
    p.add_argument("--timing-scale", help=f"profile: scale of the timed dataset LR images (default "
                   f"{O.timing_scale.label()})")
    p.add_argument("--min-run-time", type=float, help=f"profile: seconds of timing per image (default "
                   f"{O.min_run_time})")
    p.add_argument("--min-measurements", type=int, help=f"profile: timed blocks per image (>= 1, default "
                   f"{O.min_measurements})")
    p.add_argument("--no-timing", dest="timing", action="store_false", default=None,
                   help="profile: skip the latency measurement")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (results.json and figures/ go there)")
    add_data_root(p)


def run(a: argparse.Namespace) -> int:
    from ..run.config import build_analyze_config
    from ..run.job import run_job

    run_job(build_analyze_config(a.analysis, vars(a)))
    return 0
