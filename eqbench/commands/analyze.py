"""eqbench analyze: scale equivariance (EQ_S), layer similarity across scales (CKA), model profiles.

Results go into results.json in --out (the schema `eqbench run` writes; an existing file there gets
the analysis added), figures into --out/figures as PNG and SVG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EqbenchError
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
    p.add_argument("analysis", choices=["equivariance", "cka", "profile"])
    p.add_argument("--methods", nargs="+", required=True, help="method names (equivariance always adds bicubic)")
    p.add_argument("--scales", nargs="+", default=["2", "3", "4"],
                   help="2, 2.5, or HxW like 1.5x4 (profile: the FLOPs scales)")
    p.add_argument("--size", help="model preset: paper or tiny (default: tiny zoo models where no --weights are "
                   "given, else paper)")
    p.add_argument("--weights", nargs="*", default=[], metavar="METHOD=PATH",
                   help="weights per method (default: the CPU zoo's; profiles use random weights)")
    p.add_argument("--random-init", action="store_true",
                   help="equivariance/cka: analyse learned methods without --weights (smoke tests)")
    p.add_argument("--datasets", "--dataset", nargs="+", dest="datasets",
                   help="EQ_S per dataset; CKA crops from all; profile timing on the first (default: Set5 "
                   "Set14 when the data root has them, else the embedded 'samples')")
    p.add_argument("--protocol", default="matlab", help="evaluation protocol for f and scoring (EQ_S, timing)")
    p.add_argument("--limit", type=int, help="at most N images per dataset")
    p.add_argument("--eq-crop", type=int, metavar="N",
                   help="equivariance: centre-crop each image to at most N x N first (default: whole images)")
    p.add_argument("--crops", type=int, default=64, help="cka: number of LR crops")
    p.add_argument("--crop-size", type=int, default=48, help="cka: LR crop side in pixels")
    p.add_argument("--batch-size", type=int, default=16, help="cka: crops per minibatch (>= 4)")
    p.add_argument("--cka-pairs", metavar="all|METHOD", help="cka between methods: 'all' pairs, or each method vs "
                   "METHOD (default: each method vs the first one)")
    p.add_argument("--input-sizes", nargs="+", type=int, default=[100], help="profile: square LR sides for FLOPs")
    p.add_argument("--memory-input", type=int, default=100, help="profile: square LR side for peak memory")
    p.add_argument("--memory-scale", default="4", help="profile: scale for peak memory")
    p.add_argument("--timing-scale", default="4", help="profile: scale of the timed dataset LR images")
    p.add_argument("--min-run-time", type=float, default=0.2, help="profile: seconds of timing per image")
    p.add_argument("--min-measurements", type=int, default=3, help="profile: timed blocks per image (>= 1)")
    p.add_argument("--no-timing", action="store_true", help="profile: skip the latency measurement")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (results.json and figures/ go there)")
    add_data_root(p)


def config_from_args(a: argparse.Namespace):
    """Validate everything before any work and build the frozen AnalysisConfig."""
    from ..data.datasets import default_datasets
    from ..protocol import get_protocol
    from ..run.analyses import AnalysisConfig
    from ..run.config import parse_weights
    from ..run.models import resolve_models
    from ..scales import parse_scale

    weights = dict(parse_weights(a.weights))
    # EQ_S and CKA of untrained weights say nothing about a method: no silent random initialisation.
    specs = resolve_models(a.methods, weights=weights, size=a.size, random_init=a.random_init,
                           fallback_random=a.analysis == "profile")
    if a.analysis == "cka" and list(a.methods) == ["all"]:
        specs = [s for s in specs if s.source != "parameter-free"]  # bicubic has no layers to compare
    methods = tuple(s.method for s in specs)
    for name, v, low in (("--limit", a.limit, 1), ("--eq-crop", a.eq_crop, 8), ("--crops", a.crops, 4),
                         ("--crop-size", a.crop_size, 1), ("--batch-size", a.batch_size, 4),
                         ("--memory-input", a.memory_input, 1), ("--min-measurements", a.min_measurements, 1)):
        if v is not None and v < low:
            raise EqbenchError(f"{name} must be at least {low}, got {v}")
    if a.cka_pairs not in (None, "all", *methods):
        raise EqbenchError(f"--cka-pairs takes 'all' or one of the --methods ({' '.join(methods)}), "
                           f"got {a.cka_pairs!r}")
    if any(n < 1 for n in a.input_sizes):
        raise EqbenchError(f"--input-sizes must be positive, got {a.input_sizes}")
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise EqbenchError(f"--out {out} exists and is not a folder")
    return AnalysisConfig(
        methods=methods, scales=tuple(dict.fromkeys(parse_scale(s) for s in a.scales)),
        datasets=tuple(dict.fromkeys(a.datasets or default_datasets(a.data_root))),
        protocol=get_protocol(a.protocol), out=out, size=a.size or "paper", weights=tuple(weights.items()),
        models=tuple(specs),
        data_root=a.data_root, limit=a.limit, device=a.device, seed=a.seed, random_init=a.random_init,
        eq_crop=a.eq_crop, crops=a.crops, crop_size=a.crop_size, batch_size=a.batch_size, cka_pairs=a.cka_pairs,
        input_sizes=tuple(a.input_sizes),
        memory_input=a.memory_input, memory_scale=parse_scale(a.memory_scale),
        timing_scale=parse_scale(a.timing_scale), min_run_time=a.min_run_time,
        min_measurements=a.min_measurements, timing=not a.no_timing,
    )  # fmt: skip


def run(a: argparse.Namespace) -> int:
    from ..run import analyses as jobs
    from ..run.store import AnalysisStore

    cfg = config_from_args(a)
    store = AnalysisStore(cfg.out, device=cfg.device, seed=cfg.seed, config={"analysis": a.analysis, **cfg.to_dict()})
    {"equivariance": jobs.run_equivariance, "cka": jobs.run_cka, "profile": jobs.run_profile}[a.analysis](cfg, store)
    print(f"wrote {store.save()}")
    return 0
