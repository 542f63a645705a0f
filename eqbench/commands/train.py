"""eqbench train: train a registered method with a published or CPU recipe; resumable, distributed.

Writes OUT/checkpoints/NNNNNNNN/ (weights.safetensors + optimizer/RNG state + meta.json, committed
atomically every --save-every iterations), OUT/log.csv, OUT/val.csv and finally OUT/final.safetensors
(the EMA weights when the recipe keeps an EMA). Multi-process: launch with torchrun.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..errors import EqbenchError
from .common import add_data_root

NAME = "train"
HELP = "train a method (recipes, checkpoints, --resume, torchrun)"
EXAMPLES = """examples:
  eqbench train --method liif --size tiny --train-data BSD68 SunHays80 --data-root ../shared/datasets \\
      --iters 2000 --out runs/liif-tiny
  eqbench train --resume --out runs/liif-tiny                        # continue after a crash or kill
  eqbench train --method lte --sampler eqsr --train-data BSD68 --out runs/lte-eqsr-data --val-data Set5
  torchrun --nproc_per_node 2 -m eqbench train --method liif --train-data BSD68 --out runs/ddp
  eqbench train --method liif --recipes                               # list the method's recipes"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", help="registered method name (eqbench methods)")
    p.add_argument("--size", help="model preset: tiny (default) or paper")
    p.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                   help="a method option (repeatable); VALUE is read as JSON if it parses, e.g. encoder=rdn")
    p.add_argument("--recipe", help="recipe name (default: cpu; see --recipes) or a YAML recipe file")
    p.add_argument("--recipes", action="store_true", help="list the recipes of --method and exit")
    p.add_argument("--sampler", help="override the recipe's batch kind: points, window or pairs "
                   "(eqbench/train/batch_kinds.py; the old names liif and eqsr still work)")
    p.add_argument("--resize", choices=("pil-bicubic", "matlab-bicubic"),
                   help="override the recipe's LR resize for training pairs")
    p.add_argument("--train-data", nargs="+", default=[], metavar="NAME",
                   help="training sets (datasets.yaml names)")
    add_data_root(p)
    p.add_argument("--iters", type=int,
                   help="total iterations (the recipe's phases and milestones are rescaled)")
    p.add_argument("--batch-size", type=int, help="global batch size (split over torchrun processes)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N iterations (default 500)")
    p.add_argument("--keep", type=int, help="checkpoints kept (default 2; 0 keeps all)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="PATH",
                   help="continue the run in --out, or the run/checkpoint folder PATH")
    p.add_argument("--init", metavar="WEIGHTS", help="initial weights (safetensors or the official format)")
    p.add_argument("--init-backbone", metavar="WEIGHTS",
                   help="start from a fixed-scale network's backbone (ArbSR: RCAN_BIX4.pt)")
    p.add_argument("--teacher", nargs="+", metavar="S=PATH",
                   help="knowledge-transfer teachers per integer scale (recipes with knowledge_transfer)")
    p.add_argument("--out", required=False, help="output folder")
    p.add_argument("--val-data", metavar="NAME", help="validation set for PSNR-Y (e.g. Set5)")
    p.add_argument("--val-scales", nargs="+", help="validation scales (default 4)")
    p.add_argument("--val-every", type=int, metavar="N",
                   help="validate every N iterations (default --save-every)")
    p.add_argument("--val-protocol", help="validation protocol (default matlab)")
    p.add_argument("--val-limit", type=int, metavar="N", help="validate on the first N images only")
    p.add_argument("--workers", type=int, help="DataLoader worker processes (default 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (torchrun: one GPU per process)")
    p.add_argument("--log-every", type=int, metavar="N", help="CSV log interval (default 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _options(items: list[str] | None) -> tuple[tuple[str, object], ...] | None:
    if items is None:
        return None
    out = []
    for it in items:
        if "=" not in it:
            raise EqbenchError(f"--option takes KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        out.append((k.strip(), val))
    return tuple(out)


def _teachers(items: list[str] | None) -> tuple[tuple[int, str], ...] | None:
    if items is None:
        return None
    out = []
    for it in items:
        k, _, v = it.partition("=")
        if not v or not k.strip().isdigit():
            raise EqbenchError(f"--teacher takes SCALE=PATH with an integer scale, got {it!r}")
        out.append((int(k), v))
    return tuple(out)


def run(a: argparse.Namespace) -> int:
    from ..train import TrainConfig, train
    from ..train.recipes import get_recipe, recipe_names

    if a.recipes:
        if not a.method:
            raise EqbenchError("--recipes needs --method")
        for name in recipe_names(a.method):
            r = get_recipe(a.method, name)
            print(f"{name:>14}  {r.sampler.kind:>6} {r.sampler.resize:<14} batch {r.batch_size:<3} "
                  f"{r.total_iters:>8} iters  {len(r.phases)} phase(s)  {r.source}")
        return 0
    if not a.out:
        raise EqbenchError("--out DIR is required (the run's folder)")
    for flag, v in (("--iters", a.iters), ("--batch-size", a.batch_size), ("--keep", a.keep),
                    ("--log-every", a.log_every), ("--val-every", a.val_every)):
        if v is not None and v < (0 if flag == "--keep" else 1):
            raise EqbenchError(f"{flag} must be positive, got {v}")
    if a.workers is not None and a.workers < 0:
        raise EqbenchError(f"--workers must be >= 0, got {a.workers}")
    cfg = TrainConfig(
        out=Path(a.out), method=a.method, size=a.size, options=_options(a.option), recipe=a.recipe,
        sampler=a.sampler, resize=a.resize, train_data=tuple(a.train_data), data_root=a.data_root,
        iters=a.iters, batch_size=a.batch_size, seed=a.seed, save_every=a.save_every, keep=a.keep,
        resume=a.resume, init=a.init, init_backbone=a.init_backbone, teachers=_teachers(a.teacher),
        val_data=a.val_data, val_scales=tuple(a.val_scales) if a.val_scales else None,
        val_every=a.val_every, val_protocol=a.val_protocol, val_limit=a.val_limit, workers=a.workers,
        device=a.device, progress=not a.no_progress, log_every=a.log_every,
    )
    final = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        print(f"wrote {final}")
    return 0
