"""The analyses and the report of `eqbench run`, written into the run's own results.json.

The analyses run after the evaluation on the same models, datasets and scales (CKA on the methods that
declare feature taps; EQ_S always includes bicubic). They are recomputed on `--resume` (cheap next to
the evaluation); the evaluation cells are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .config import RunConfig

# The main job's analysis sizes: small enough that `eqbench run --methods all` stays within minutes on two
# CPU cores; a YAML `analysis_options:` block changes them.
RUN_ANALYSIS_DEFAULTS = {
    "eq_crop": 128, "crops": 16, "crop_size": 48, "batch_size": 8, "input_sizes": (100,), "memory_input": 48,
    "min_run_time": 0.05, "min_measurements": 1, "timing_limit": 2,
}  # fmt: skip


def analysis_config(cfg: RunConfig, methods: tuple[str, ...]):
    from ..analysis.jobs import AnalysisConfig
    from ..scales import parse_scale

    opts = {**RUN_ANALYSIS_DEFAULTS, **dict(cfg.analysis_options)}
    for k in ("memory_scale", "timing_scale"):
        if k in opts:
            opts[k] = parse_scale(str(opts[k]))
    if "input_sizes" in opts:
        opts["input_sizes"] = tuple(int(n) for n in opts["input_sizes"])
    return AnalysisConfig(
        methods=methods, scales=cfg.scales, datasets=cfg.datasets, protocol=cfg.protocol, out=cfg.out,
        data_root=cfg.data_root, limit=cfg.limit, device=cfg.device, seed=cfg.seed,
        models=tuple(m for m in cfg.models if m.method in methods), **opts,
    )  # fmt: skip


def run_analyses(cfg: RunConfig) -> None:
    from ..analysis import jobs
    from ..analysis.store import AnalysisStore

    for name in cfg.analyses:
        methods = cfg.methods
        if name == "cka":
            # Parameter-free methods (bicubic) have no layers to compare.
            methods = tuple(m.method for m in cfg.models if m.source != "parameter-free")
            if not methods:
                print("eqbench: cka skipped: no method with feature taps in this run", file=sys.stderr)
                continue
        acfg = analysis_config(cfg, methods)
        print(f"eqbench: analysis {name} ({', '.join(methods)})", file=sys.stderr)
        store = AnalysisStore(cfg.out, device=cfg.device, seed=cfg.seed, config={"analysis": name, **acfg.to_dict()},
                              name=cfg.results_name)
        {"equivariance": jobs.run_equivariance, "cka": jobs.run_cka, "profile": jobs.run_profile}[name](acfg, store)
        store.save()


def write_report(results: Path, output: Path | None = None) -> Path:
    from ..report.html import render
    from .results import load_results, write_text_atomic

    out = output or results.with_name("report.html" if results.name == "results.json" else results.stem + ".html")
    write_text_atomic(out, render(load_results(results)))
    return out
