"""eqbench run: evaluate methods over datasets x scales under one protocol."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from ..data.io import EqbenchWarning
from ..errors import EqbenchError
from .common import add_data_root, parse_weights

PARAMETER_FREE = ("bicubic",)

NAME = "run"
HELP = "evaluate methods on datasets and scales"
EXAMPLES = """examples:
  eqbench run --methods bicubic --datasets Set5 Set14 --scales 2 3 4 --protocol classic-y \\
      --data-root ../shared/datasets --out out/bicubic
  eqbench run --methods bicubic liif --datasets Set5 --scales 2 2.75 1.5x4 --weights liif=liif.safetensors \\
      --out out/liif"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--methods", nargs="+", required=True, help="method names, or 'all'")
    p.add_argument("--datasets", nargs="+", help="dataset names (datasets.yaml); default: Set5 Set14 when the "
                   "data root has them, else the embedded 'samples'")
    p.add_argument("--scales", nargs="+", default=["2", "3", "4"], help="2, 2.75, or HxW like 1.5x4")
    p.add_argument("--protocol", default="matlab", help="matlab (default), classic-y, arbsr, basicsr, liif")
    p.add_argument("--size", default="paper", help="model preset: paper or tiny")
    p.add_argument("--weights", nargs="*", default=[], metavar="METHOD=PATH", help="weights per method")
    p.add_argument("--limit", type=int, help="at most N images per dataset (smoke runs)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder for results.json (default: runs/eval-<date>-<time>)")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate learned methods without --weights at their random initialisation (smoke tests)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue a run in --out, skipping finished cells")
    g.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    add_data_root(p)


def run(a: argparse.Namespace) -> int:
    from ..method import list_methods
    from ..protocol import get_protocol
    from ..report.tables import text_table
    from ..run.runner import RunConfig
    from ..run.runner import run as run_eval
    from ..scales import parse_scale

    if a.limit is not None and a.limit < 1:
        raise EqbenchError("--limit must be a positive number of images")
    weights = parse_weights(a.weights)
    methods = select_methods(a.methods, dict(weights), a.random_init, list_methods())
    datasets = a.datasets or default_datasets(a.data_root)
    out = Path(a.out) if a.out else Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")
    cfg = RunConfig(
        methods=tuple(dict.fromkeys(methods)), datasets=tuple(dict.fromkeys(datasets)),
        scales=tuple(dict.fromkeys(parse_scale(s) for s in a.scales)), protocol=get_protocol(a.protocol),
        out=out, data_root=a.data_root, size=a.size, weights=weights, limit=a.limit,
        device=a.device, seed=a.seed, resume=a.resume, force=a.force,
    )

    def progress(m, ds, scale, cell):
        print(f"  {m:>10} {ds:>8} {scale.label():>7}  psnr-y {cell.mean('psnr-y'):.4f}  "
              f"ssim-y {cell.mean('ssim-y'):.5f}  ({len(cell.per_image)} images)", file=sys.stderr)

    doc = run_eval(cfg, progress=progress)
    print(text_table(doc))
    print(f"wrote {cfg.out / 'results.json'}")
    return 0


def select_methods(requested: list[str], weights: dict[str, str], random_init: bool, known: list[str]) -> list[str]:
    """Methods to run. Learned methods need weights: never a silent fallback to random initialisation."""
    from ..method import method_entry

    everything = requested == ["all"]
    names = known if everything else requested
    for n in names:
        method_entry(n)
    for m in weights:
        if m not in names:
            raise EqbenchError(f"--weights names {m!r}, which is not among --methods {' '.join(names)}")
    if random_init:
        return names
    missing = [n for n in names if n not in PARAMETER_FREE and n not in weights]
    if missing and not everything:
        raise EqbenchError(f"no weights for {', '.join(missing)}: pass --weights {missing[0]}=PATH "
                           "(or --random-init to evaluate untrained weights, e.g. for a smoke test)")
    if missing:
        warnings.warn(f"skipping {', '.join(missing)}: no weights (pass --weights METHOD=PATH)", EqbenchWarning,
                      stacklevel=2)
    return [n for n in names if n not in missing]


def default_datasets(data_root: str | None) -> list[str]:
    from ..data.datasets import load_catalog, resolve_data_root, status

    catalog = load_catalog()
    root, _ = resolve_data_root(data_root)
    bench = [n for n in ("Set5", "Set14") if status(catalog[n], root).found]
    return bench or ["samples"]
