"""Training recipes: schedules as data, validated once, recorded in every checkpoint.

A recipe = a sampler (which batch builder, LR resize, patch sizes, scales), a batch size, an optimizer,
a loss and one or more phases (iterations, data, learning rate, MultiStep milestones, how the phase
starts). Two phases express EQSR's pretrain -> finetune (the finetune starts from the EMA weights) and
ArbSR's first epoch (x2/x3/x4 only, lr 5e-5). A method declares its recipes where it is registered
(`register_method(..., recipes=...)`; the built-in tables are baselines/recipes.py); a YAML file with the
same fields works wherever a recipe name does (`--recipe my.yaml`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.batches import RESIZES
from ..errors import EqbenchError, suggest
from ..scales import parse_scale
from .batch_kinds import ALIASES, KINDS, batch_kind, kind_for, kind_name

STARTS = ("continue", "ema")


@dataclass(frozen=True)
class SamplerSpec:
    kind: str  # a batch kind (batch_kinds.py): points, window or pairs
    resize: str = "pil-bicubic"
    lr_size: int = 48
    scale_min: float = 1.0
    scale_max: float = 4.0
    sample_q: int = 2304
    window: int = 48
    scales: tuple[tuple[float, float], ...] = ()
    augment: bool = True


@dataclass(frozen=True)
class Phase:
    name: str
    iters: int
    lr: float
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    data: tuple[str, ...] = ()
    scales: tuple[tuple[float, float], ...] = ()  # pairs: this phase's scale set (empty: the sampler's)
    start: str = "continue"  # "ema": the phase starts from the EMA weights with a fresh optimizer

    def lr_at(self, it: int) -> float:
        """MultiStepLR as a pure function of the iteration inside the phase (nothing to checkpoint)."""
        return self.lr * self.gamma ** sum(1 for m in self.milestones if it >= m)


@dataclass(frozen=True)
class Recipe:
    method: str
    name: str
    sampler: SamplerSpec
    batch_size: int
    phases: tuple[Phase, ...]
    source: str = ""
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    loss: str = "l1"
    # The official losses are taken on other value ranges: LIIF/LTE on (x - 0.5) / 0.5 (weight 2),
    # MetaSR/ArbSR on [0, 255] (weight 255). eqbench computes L1 in [0, 1] and multiplies.
    loss_weight: float = 1.0
    ema: float | None = None
    knowledge_transfer: float = 0.0  # ArbSR: weight of the scale-aware knowledge-transfer L1
    notes: str = field(default="", compare=False)

    @property
    def total_iters(self) -> int:
        return sum(p.iters for p in self.phases)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _scales(items, where: str) -> tuple[tuple[float, float], ...]:
    out = []
    for it in items or ():
        try:
            s = parse_scale(it)
        except EqbenchError as e:
            raise EqbenchError(f"{where}: {e}") from None
        out.append((s.h, s.w))
    return tuple(out)


def _take(d: dict, allowed: set[str], where: str) -> dict:
    if not isinstance(d, dict):
        raise EqbenchError(f"{where}: expected a mapping, got {type(d).__name__}")
    extra = sorted(set(d) - allowed)
    if extra:
        raise EqbenchError(f"{where}: unknown field {extra[0]!r}{suggest(extra[0], allowed)}; "
                           f"allowed: {', '.join(sorted(allowed))}")
    return d


def sampler_from_dict(d: dict, where: str) -> SamplerSpec:
    names = {f.name for f in dataclasses.fields(SamplerSpec)}
    d = dict(_take(d, names, where))
    if d.get("kind") not in (*KINDS, *ALIASES):
        raise EqbenchError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {d.get('kind')!r}")
    d["kind"] = kind_name(d["kind"])  # the old names (liif, eqsr) read as the new ones
    if d.get("resize", "pil-bicubic") not in RESIZES:
        raise EqbenchError(f"{where}.resize: must be one of {', '.join(RESIZES)}, got {d['resize']!r}")
    d["scales"] = _scales(d.get("scales"), f"{where}.scales")
    s = SamplerSpec(**d)
    if not (1.0 <= s.scale_min <= s.scale_max):
        raise EqbenchError(f"{where}: need 1 <= scale_min <= scale_max, got {s.scale_min}, {s.scale_max}")
    batch_kind(s.kind).check(s, where)
    return s


def phase_from_dict(d: dict, where: str) -> Phase:
    names = {f.name for f in dataclasses.fields(Phase)}
    d = dict(_take(d, names, where))
    d["milestones"] = tuple(int(m) for m in d.get("milestones", ()))
    d["data"] = tuple(d.get("data", ()))
    d["scales"] = _scales(d.get("scales"), f"{where}.scales")
    d["lr"] = float(d.get("lr", 0))
    p = Phase(**d)
    if not isinstance(p.iters, int) or p.iters < 1:
        raise EqbenchError(f"{where}.iters: must be a positive integer, got {p.iters!r}")
    if not (p.lr > 0 and math.isfinite(p.lr)):
        raise EqbenchError(f"{where}.lr: must be positive, got {p.lr!r}")
    if p.start not in STARTS:
        raise EqbenchError(f"{where}.start: must be one of {', '.join(STARTS)}, got {p.start!r}")
    return p


def recipe_from_dict(d: dict, where: str = "recipe") -> Recipe:
    names = {f.name for f in dataclasses.fields(Recipe)}
    d = dict(_take(d, names, where))
    for k in ("method", "name", "sampler", "batch_size", "phases"):
        if k not in d:
            raise EqbenchError(f"{where}: missing field {k!r}")
    d["sampler"] = sampler_from_dict(d["sampler"], f"{where}.sampler")
    if not isinstance(d["phases"], (list, tuple)) or not d["phases"]:
        raise EqbenchError(f"{where}.phases: must be a non-empty list")
    d["phases"] = tuple(phase_from_dict(p, f"{where}.phases[{i}]") for i, p in enumerate(d["phases"]))
    d["betas"] = tuple(float(b) for b in d.get("betas", (0.9, 0.999)))
    for k in ("eps", "weight_decay", "loss_weight", "knowledge_transfer"):
        if k in d:
            d[k] = float(d[k])
    r = Recipe(**d)
    if not isinstance(r.batch_size, int) or r.batch_size < 1:
        raise EqbenchError(f"{where}.batch_size: must be a positive integer, got {r.batch_size!r}")
    if r.optimizer != "adam" or r.loss != "l1":
        raise EqbenchError(f"{where}: only optimizer 'adam' and loss 'l1' are implemented "
                           f"(got {r.optimizer!r}, {r.loss!r})")
    if r.ema is not None and not (0.0 < float(r.ema) < 1.0):
        raise EqbenchError(f"{where}.ema: a decay in (0, 1) or null, got {r.ema!r}")
    if r.phases[0].start == "ema":
        raise EqbenchError(f"{where}.phases[0].start: the first phase cannot start from EMA weights")
    if any(p.start == "ema" for p in r.phases) and r.ema is None:
        raise EqbenchError(f"{where}: a phase starts from EMA weights but the recipe has no ema decay")
    return r


def load_recipe_file(path: Path) -> Recipe:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EqbenchError(f"cannot read recipe {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise EqbenchError(f"recipe {path}: malformed YAML ({e})") from None
    return recipe_from_dict(doc, str(path))


def recipes_for(method: str, query_modes: tuple[str, ...] = ()) -> dict[str, dict]:
    """The recipes `method` declares, else the generic ones for the batch kind its query modes call for."""
    from baselines.recipes import GENERIC

    from ..method import method_entry

    return dict(method_entry(method).recipes) or GENERIC[kind_for(query_modes).name]


def recipe_names(method: str, query_modes: tuple[str, ...] = ()) -> list[str]:
    return sorted(recipes_for(method, query_modes))


def get_recipe(method: str, name: str, query_modes: tuple[str, ...] = ()) -> Recipe:
    """A built-in recipe of `method` by name, or a YAML recipe file (its `method` must match).

    Methods without their own recipes get the generic ones, chosen by what `query_modes` allows."""
    if name.endswith((".yaml", ".yml")):
        r = load_recipe_file(Path(name))
        if r.method not in (method, "*"):
            raise EqbenchError(f"recipe {name} is for method {r.method!r}, not {method!r}")
        return dataclasses.replace(r, method=method)
    table = recipes_for(method, query_modes)
    if name not in table:
        raise EqbenchError(f"method {method!r} has no recipe {name!r}{suggest(name, table)}; "
                           f"recipes: {', '.join(sorted(table))} (or a YAML recipe file)")
    return recipe_from_dict({**table[name], "method": method, "name": name}, f"recipe {method}/{name}")


def _rescale(phases: tuple[Phase, ...], iters: int) -> tuple[Phase, ...]:
    """Shrink or stretch every phase (and its milestones) so the recipe runs `iters` iterations."""
    total = sum(p.iters for p in phases)
    if iters < len(phases):
        raise EqbenchError(f"--iters {iters} is fewer than the recipe's {len(phases)} phases")
    out, used = [], 0
    for i, p in enumerate(phases):
        n = iters - used if i == len(phases) - 1 else max(1, round(p.iters * iters / total))
        n = max(1, min(n, iters - used - (len(phases) - 1 - i)))
        used += n
        ms = tuple(sorted({round(m * n / p.iters) for m in p.milestones}))
        out.append(dataclasses.replace(p, iters=n, milestones=ms))
    return tuple(out)


def with_overrides(r: Recipe, *, sampler: str | None = None, resize: str | None = None,
                   iters: int | None = None, batch_size: int | None = None,
                   train_data: tuple[str, ...] | None = None) -> Recipe:
    """The recipe as the command line changed it (the result is what the checkpoint records)."""
    s = r.sampler
    phases = r.phases
    if sampler is not None and kind_name(sampler) != s.kind:
        kind = batch_kind(sampler)
        s = sampler_from_dict({"kind": kind.name, "resize": s.resize, "augment": s.augment, **kind.defaults},
                              f"--sampler {sampler}")
        phases = tuple(dataclasses.replace(p, scales=()) for p in phases)
    if resize is not None:
        if resize not in RESIZES:
            raise EqbenchError(f"unknown resize {resize!r}{suggest(resize, RESIZES)}; "
                               f"known: {', '.join(RESIZES)}")
        s = dataclasses.replace(s, resize=resize)
    if iters is not None:
        if iters < 1:
            raise EqbenchError(f"--iters must be a positive number of iterations, got {iters}")
        phases = _rescale(phases, iters)
    if train_data:
        phases = tuple(dataclasses.replace(p, data=tuple(train_data)) for p in phases)
    if batch_size is not None and batch_size < 1:
        raise EqbenchError(f"--batch-size must be positive, got {batch_size}")
    return dataclasses.replace(r, sampler=s, phases=phases, batch_size=batch_size or r.batch_size)
