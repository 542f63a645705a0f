"""TrainConfig (built once at the CLI edge or by a Python caller) and its resolution into a run.

Unset fields (None) take their defaults, or, when resuming, the values recorded in the checkpoint,
so `eqbench train --resume --out DIR` needs nothing else. Set fields must agree with the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EqbenchError
from . import checkpoints
from .recipes import Recipe, get_recipe, recipe_from_dict, with_overrides

DEFAULT_SIZE, DEFAULT_RECIPE, DEFAULT_SEED = "tiny", "cpu", 0
# How a run is carried out (not what it computes): unset on --resume, they keep the run's values.
SETTINGS = {"save_every": 500, "keep": 2, "log_every": 10, "workers": 0, "data_root": None, "val_data": None,
            "val_scales": ("4",), "val_every": None, "val_protocol": "matlab", "val_limit": None}


@dataclass(frozen=True)
class TrainConfig:
    out: Path
    method: str | None = None
    size: str | None = None
    options: tuple[tuple[str, object], ...] | None = None
    recipe: str | None = None  # a recipe name of the method, or a YAML recipe file
    sampler: str | None = None  # override the recipe's batch builder (eqsr, liif, pairs)
    resize: str | None = None  # override the recipe's LR resize (pil-bicubic, matlab-bicubic)
    train_data: tuple[str, ...] = ()
    data_root: str | None = None
    iters: int | None = None
    batch_size: int | None = None  # the global batch (split over distributed processes)
    seed: int | None = None
    save_every: int | None = None  # default 500
    keep: int | None = None  # default 2 (0: keep all)
    resume: bool | str = False  # True: the run in `out`; a path: that run or checkpoint folder
    init: str | None = None  # initial weights (eqbench safetensors or the method's official format)
    init_backbone: str | None = None  # a fixed-scale network's backbone (methods with load_fixed_scale_backbone)
    teachers: tuple[tuple[int, str], ...] | None = None  # knowledge transfer: (scale, checkpoint) pairs
    val_data: str | None = None
    val_scales: tuple[str, ...] | None = None  # default ("4",)
    val_every: int | None = None  # default: save_every
    val_protocol: str | None = None  # default "matlab"
    val_limit: int | None = None
    workers: int | None = None  # default 0
    device: str = "cpu"
    progress: bool = True
    log_every: int | None = None  # default 10
    extra: dict = field(default_factory=dict, compare=False)  # recorded in the metadata as given


@dataclass(frozen=True)
class Resolved:
    method: str
    size: str
    options: dict
    seed: int
    recipe_arg: str | None
    checkpoint: Path | None
    meta: dict | None
    teachers: dict

    def identity(self, recipe: Recipe) -> dict:
        return {"method": self.method, "size": self.size, "options": self.options,
                "recipe": json_normal(recipe.to_dict()), "seed": self.seed, "teachers": self.teachers}


def json_normal(obj):
    """Tuples -> lists etc., as the value reads back from meta.json."""
    return json.loads(json.dumps(obj))


def settled(cfg: TrainConfig, meta: dict | None) -> TrainConfig:
    """`cfg` with its unset settings taken from the resumed run, else from SETTINGS."""
    saved = (meta or {}).get("settings", {})
    values = {}
    for k, default in SETTINGS.items():
        v = getattr(cfg, k)
        values[k] = v if v is not None else saved.get(k, default)
    if values["val_scales"] is not None:
        values["val_scales"] = tuple(values["val_scales"])
    for k in ("save_every", "log_every"):
        if values[k] < 1:
            raise EqbenchError(f"--{k.replace('_', '-')} must be a positive number of iterations, got {values[k]}")
    return dataclasses.replace(cfg, **values)


def resolve(cfg: TrainConfig) -> Resolved:
    ckpt, meta = None, None
    if cfg.resume:
        ckpt = checkpoints.find_checkpoint(cfg.out if cfg.resume is True else cfg.resume)
        meta = checkpoints.read_meta(ckpt)
    elif cfg.method is None:
        raise EqbenchError("--method is required (or --resume a run)")
    m = meta or {}
    options = dict(cfg.options) if cfg.options is not None else m.get("options", {})
    return Resolved(
        method=cfg.method or m["method"],
        size=cfg.size or m.get("size", DEFAULT_SIZE),
        options=json_normal(options),
        seed=cfg.seed if cfg.seed is not None else m.get("seed", DEFAULT_SEED),
        recipe_arg=cfg.recipe, checkpoint=ckpt, meta=meta,
        teachers=({str(int(s)): str(p) for s, p in cfg.teachers} if cfg.teachers is not None
                  else m.get("teachers", {})),
    )


def build_recipe(cfg: TrainConfig, res: Resolved, query_modes: tuple[str, ...]) -> Recipe:
    overrides = dict(sampler=cfg.sampler, resize=cfg.resize, iters=cfg.iters, batch_size=cfg.batch_size,
                     train_data=tuple(cfg.train_data) or None)
    if res.meta is not None and res.recipe_arg is None and not any(v for v in overrides.values()):
        return recipe_from_dict(res.meta["recipe"], f"{res.checkpoint}/meta.json recipe")
    base = get_recipe(res.method, res.recipe_arg or DEFAULT_RECIPE, query_modes)
    return with_overrides(base, **overrides)
