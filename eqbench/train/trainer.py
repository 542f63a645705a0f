"""The trainer: any registered method, any recipe, resumable bit for bit, one or many processes.

    from eqbench.train import TrainConfig, train
    train(TrainConfig(out=Path("runs/liif-tiny"), method="liif", size="tiny",
                      train_data=("BSD68", "SunHays80"), data_root="../shared/datasets", iters=2000))

Determinism: the weights are initialised under `seed`, every sample is keyed by (seed, step, slot)
(data.py), the learning rate is a pure function of the step (recipes.Phase.lr_at), and a checkpoint
holds everything else that evolves (weights, EMA, optimizer moments, RNG states). A run killed at
any moment and resumed from its last checkpoint therefore ends with the same weights, bit for bit
on CPU, as one that never stopped.
"""

from __future__ import annotations

import math
import random
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..checkpoint import load_state_dict_strict, load_weights
from ..errors import EqbenchError
from ..lock import output_lock
from ..method import BackboneInit, create_method
from ..provenance import git_state, now_iso
from . import checkpoints as ck
from . import distributed as dist
from .batch_kinds import BatchKind, batch_kind
from .config import SETTINGS, Resolved, TrainConfig, build_recipe, resolve, settled
from .data import BatchPlan, load_train_images, make_loader, min_image_size, single_threaded
from .logs import TrainLog
from .recipes import Recipe
from .step import EMA, TrainForward, to_device, train_step
from .transfer import make_teachers
from .validate import Validator

FINAL = "final.safetensors"


def _prepare_out(out: Path, resuming: bool, held: ExitStack) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        # One trainer per folder: a second one into the same --out waits briefly, then refuses.
        held.enter_context(output_lock(out, "train", what="eqbench train"))
        probe = out / f".write-test-{random.getrandbits(32):08x}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise EqbenchError(f"cannot write to the output folder {out}: {e.strerror or e}; fix its "
                           "permissions, free disk space or choose another --out") from None
    done = ck.list_checkpoints(ck.ckpt_root(out))
    if not resuming and (done or (out / FINAL).exists()):
        last = f"checkpoints up to iteration {int(done[-1].name)}" if done else FINAL
        raise EqbenchError(f"{out} already holds a training run ({last}); pass --resume to continue it or "
                           "choose another --out")
    ck.remove_partial(out)


def _remove_if_only_lock(out: Path) -> None:
    from ..lock import lock_path

    lock = lock_path(out, "train")
    if out.is_dir() and [p.name for p in out.iterdir()] == [lock.name]:
        lock.unlink()
        out.rmdir()


def _initialise(method, cfg: TrainConfig) -> None:
    if cfg.init:
        load_weights(method, cfg.init)
    if cfg.init_backbone:
        if not isinstance(method, BackboneInit):
            raise EqbenchError(f"method {method.method_name!r} cannot start from a fixed-scale backbone "
                               "(no load_fixed_scale_backbone); use --init with its own weights")
        method.load_fixed_scale_backbone(cfg.init_backbone)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    random.setstate(s["python"])
    name, keys, *rest = s["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _meta(res, recipe: Recipe, data: dict, world, cfg: TrainConfig) -> dict:
    return {**res.identity(recipe), "sampler": recipe.sampler.kind, "resize": recipe.sampler.resize,
            "batch_size": recipe.batch_size, "total_iters": recipe.total_iters, "data": data,
            "world_size": world.size, "device": str(world.device), "init": cfg.init,
            "init_backbone": cfg.init_backbone, "git": git_state(),
            "settings": {k: getattr(cfg, k) for k in SETTINGS},
            "eqbench_version": __version__, "torch": torch.__version__, "saved": now_iso(), **cfg.extra}


def train(cfg: TrainConfig) -> Path:
    """Run (or continue) training; returns the path of the final weights, OUT/final.safetensors."""
    world = dist.setup(cfg.device)
    try:
        return _train(cfg, world)
    finally:
        dist.teardown(world)


def _train(cfg: TrainConfig, world) -> Path:
    with ExitStack() as held:  # the main process's lock on --out, released when training ends
        return _train_held(cfg, world, held)


def _train_held(cfg: TrainConfig, world, held: ExitStack) -> Path:
    out = Path(cfg.out)
    fresh = not out.exists()
    try:
        plan = prepare(cfg, world, held)
    except EqbenchError:
        if fresh and world.main:  # a run that never started leaves no folder behind (runs before the unlock)
            held.callback(_remove_if_only_lock, out)
        raise
    state = restore(plan)
    try:
        p_start = 0
        plan.method.train()
        for pi, phase in enumerate(plan.recipe.phases):
            run_phase(plan, state, pi, phase, p_start)
            p_start += phase.iters
    finally:
        if state.log is not None:
            state.log.close()
    return finish(plan, state)


@dataclass(frozen=True)
class TrainPlan:
    """Everything a run is, settled before the first step: the three config passes end here."""

    cfg: TrainConfig  # with its settings resolved (`settled`)
    res: Resolved
    world: object
    out: Path
    method: torch.nn.Module
    recipe: Recipe
    kind: BatchKind
    images: dict  # (data names, min image size) -> TrainImages
    meta: dict  # what every checkpoint records


@dataclass
class TrainState:
    """What evolves during a run (and is restored on --resume)."""

    step: int
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    model: torch.nn.Module  # TrainForward, maybe DDP-wrapped
    validator: Validator | None
    log: TrainLog | None


def _checked_out(out: Path, resuming: bool, world, held: ExitStack) -> None:
    err = None
    if world.main:
        try:
            _prepare_out(out, resuming, held)
        except EqbenchError as e:
            err = str(e)
    err = dist.broadcast(world, err)
    if err:
        raise EqbenchError(err)


def _load_phase_images(recipe: Recipe, cfg: TrainConfig) -> tuple[dict, dict]:
    images, data_meta = {}, {}
    for p in recipe.phases:
        key = (p.data, min_image_size(recipe.sampler, p))
        if key not in images:
            images[key] = load_train_images(p.data, cfg.data_root, key[1], recipe.batch_size)
        data_meta[p.name] = images[key].describe()
    return images, data_meta


def prepare(cfg: TrainConfig, world, held: ExitStack) -> TrainPlan:
    """Resolve the config, check and lock the output folder (held until `held` closes), build and
    initialise the method, load the images."""
    out = Path(cfg.out)
    res = resolve(cfg)
    cfg = settled(cfg, res.meta)
    _checked_out(out, res.checkpoint is not None, world, held)
    _seed_all(res.seed)
    method = create_method(res.method, size=res.size, **res.options).to(world.device)
    recipe = build_recipe(cfg, res, method.query_modes)
    if res.meta is not None:
        ck.check_compatible(res.meta, res.identity(recipe), res.checkpoint)
    else:
        _initialise(method, cfg)
    if not any(p.requires_grad for p in method.parameters()):
        raise EqbenchError(f"method {res.method!r} has no trainable parameters: nothing to train")
    # The same global batch for any number of processes; ranks differ only in their dropout streams.
    torch.manual_seed(res.seed + world.rank)
    images, data_meta = _load_phase_images(recipe, cfg)
    return TrainPlan(cfg, res, world, out, method, recipe, batch_kind(recipe.sampler.kind), images,
                     _meta(res, recipe, data_meta, world, cfg))


def _new_optimizer(plan: TrainPlan) -> torch.optim.Optimizer:
    r = plan.recipe
    return torch.optim.Adam(plan.method.parameters(), lr=r.phases[0].lr, betas=r.betas, eps=r.eps,
                            weight_decay=r.weight_decay)


def _restore_checkpoint(plan: TrainPlan, optimizer, ema: EMA | None) -> int:
    """Weights, EMA, optimizer moments and this rank's RNG states of the resumed checkpoint; its step."""
    ckpt, world = plan.res.checkpoint, plan.world
    weights, ema_sd, state = ck.load_checkpoint(ckpt)
    load_state_dict_strict(plan.method, weights, str(ckpt / "weights.safetensors"))
    if ema is not None:
        if ema_sd is None:
            raise EqbenchError(f"cannot resume from {ckpt}: the recipe keeps an EMA but the checkpoint has none")
        load_state_dict_strict(ema.model, ema_sd, str(ckpt / "ema.safetensors"))
    optimizer.load_state_dict(state["optimizer"])
    rngs = state["rng"]
    _set_rng_state(rngs[world.rank] if world.rank < len(rngs) else rngs[0])
    return int(state["step"])


def restore(plan: TrainPlan) -> TrainState:
    """The optimizer, EMA, teachers, DDP wrap, validator and log; on --resume, the checkpoint's state."""
    cfg, res, recipe, world = plan.cfg, plan.res, plan.recipe, plan.world
    optimizer = _new_optimizer(plan)
    ema = EMA(plan.method, recipe.ema) if recipe.ema else None
    step = _restore_checkpoint(plan, optimizer, ema) if res.checkpoint is not None else 0
    if res.teachers and not recipe.knowledge_transfer:
        raise EqbenchError("--teacher is only used by recipes with knowledge_transfer (e.g. arbsr paper-kt)")
    teachers = (make_teachers(plan.method, {int(s): p for s, p in res.teachers.items()}, world.device)
                if recipe.knowledge_transfer else None)
    model = dist.wrap(TrainForward(plan.method, plan.kind.name, teachers), world)
    validator = Validator.create(cfg) if world.main and cfg.val_data else None
    log = TrainLog(plan.out, total=recipe.total_iters, start=step, resumed=res.checkpoint is not None,
                   progress=cfg.progress and world.main) if world.main else None
    return TrainState(step, optimizer, ema, model, validator, log)


def save(plan: TrainPlan, state: TrainState, at: int) -> None:
    rng = dist.gather(plan.world, _rng_state())
    if plan.world.main:
        ema = state.ema.model.state_dict() if state.ema is not None else None
        ck.save_checkpoint(plan.out, at, weights=plan.method.state_dict(), meta=plan.meta, keep=plan.cfg.keep,
                           state={"optimizer": state.optimizer.state_dict(), "rng": rng, "step": at}, ema=ema)
    dist.barrier(plan.world)


def _loader(plan: TrainPlan, state: TrainState, pi: int, phase, p_start: int):
    recipe, world = plan.recipe, plan.world
    key = (phase.data, min_image_size(recipe.sampler, phase))
    scales = (phase.scales or recipe.sampler.scales) if plan.kind.per_batch_scale else ()
    bp = BatchPlan(seed=plan.res.seed, phase_index=pi, phase_start=p_start, start=state.step,
                   stop=p_start + phase.iters, global_batch=recipe.batch_size, rank=world.rank, world=world.size,
                   n_images=len(plan.images[key].images), scales=scales)
    loader = make_loader(plan.images[key].images, recipe.sampler, bp, plan.cfg.workers)
    return loader if plan.cfg.workers else single_threaded(loader)


def run_phase(plan: TrainPlan, state: TrainState, pi: int, phase, p_start: int) -> None:
    """The iterations of one phase that are still to do (none when the resumed step is past it)."""
    cfg, world, p_end = plan.cfg, plan.world, p_start + phase.iters
    if state.step >= p_end:
        return
    if state.step == p_start and pi > 0 and phase.start == "ema":
        # EQSR: the finetune starts from the pretrain's EMA weights with a fresh optimizer.
        plan.method.load_state_dict(state.ema.model.state_dict())
        state.optimizer = _new_optimizer(plan)
    val_every = cfg.val_every or cfg.save_every
    loss_sum, n_loss = 0.0, 0
    for batch in _loader(plan, state, pi, phase, p_start):
        lr_now = phase.lr_at(state.step - p_start)
        # the global batch's loss (the mean over ranks), so that all ranks stop together
        loss = dist.mean(world, train_step(state.model, state.optimizer, to_device(batch, world.device),
                                           plan.recipe, lr_now))
        if not math.isfinite(loss):
            raise EqbenchError(f"the loss became {loss} at iteration {state.step + 1}; lower the "
                               "learning rate (the last checkpoint is intact)")
        if state.ema is not None:
            state.ema.update(plan.method)
        state.step += 1
        step = state.step
        loss_sum, n_loss = loss_sum + loss, n_loss + 1
        at_log = step % cfg.log_every == 0 or step == p_end
        mean_loss = loss_sum / n_loss if at_log else None
        if at_log:
            loss_sum, n_loss = 0.0, 0
        if state.log is not None:
            state.log.step(step, phase.name, mean_loss, lr_now)
        if state.validator is not None and (step % val_every == 0 or step == plan.recipe.total_iters):
            state.validator.run(state.ema.model if state.ema is not None else plan.method, step, state.log,
                                world.device)
            plan.method.train()
        if step % cfg.save_every == 0 or step == p_end:
            save(plan, state, step)


def finish(plan: TrainPlan, state: TrainState) -> Path:
    """Write OUT/final.safetensors (the EMA weights when the recipe keeps an EMA); all ranks wait for it."""
    final, res = plan.out / FINAL, plan.res
    if plan.world.main:
        sd = (state.ema.model if state.ema is not None else plan.method).state_dict()
        info = {"method": res.method, "size": res.size, "options": str(res.options), "recipe": plan.recipe.name,
                "seed": str(res.seed), "step": str(state.step), "weights": "ema" if state.ema is not None else "model"}
        ck.write_weights_atomic(final, sd, metadata={k: str(v) for k, v in info.items()})
    dist.barrier(plan.world)
    return final


__all__ = ["TrainConfig", "train", "FINAL"]
