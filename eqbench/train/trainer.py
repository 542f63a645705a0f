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
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..checkpoint import load_state_dict_strict, load_weights
from ..errors import EqbenchError
from ..lock import output_lock
from ..method import create_method
from ..provenance import git_state, now_iso
from . import checkpoints as ck
from . import distributed as dist
from .config import SETTINGS, TrainConfig, build_recipe, resolve, settled
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


def _initialise(method, cfg: TrainConfig) -> None:
    if cfg.init:
        load_weights(method, cfg.init)
    if cfg.init_backbone:
        if not callable(getattr(method, "load_fixed_scale_backbone", None)):
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
    res = resolve(cfg)
    cfg = settled(cfg, res.meta)
    err = None
    if world.main:
        try:
            _prepare_out(out, res.checkpoint is not None, held)
        except EqbenchError as e:
            err = str(e)
    err = dist.broadcast(world, err)
    if err:
        raise EqbenchError(err)

    _seed_all(res.seed)
    method = create_method(res.method, size=res.size, **res.options).to(world.device)
    recipe = build_recipe(cfg, res, tuple(getattr(method, "query_modes", ())))
    if res.meta is not None:
        ck.check_compatible(res.meta, res.identity(recipe), res.checkpoint)
    else:
        _initialise(method, cfg)
    if not any(p.requires_grad for p in method.parameters()):
        raise EqbenchError(f"method {res.method!r} has no trainable parameters: nothing to train")
    # The same global batch for any number of processes; ranks differ only in their dropout streams.
    torch.manual_seed(res.seed + world.rank)

    images, data_meta = {}, {}
    for p in recipe.phases:
        key = (p.data, min_image_size(recipe.sampler, p))
        if key not in images:
            images[key] = load_train_images(p.data, cfg.data_root, key[1], recipe.batch_size)
        data_meta[p.name] = images[key].describe()

    def new_optimizer():
        return torch.optim.Adam(method.parameters(), lr=recipe.phases[0].lr, betas=recipe.betas,
                                eps=recipe.eps, weight_decay=recipe.weight_decay)

    optimizer = new_optimizer()
    ema = EMA(method, recipe.ema) if recipe.ema else None
    step = 0
    if res.checkpoint is not None:
        weights, ema_sd, state = ck.load_checkpoint(res.checkpoint)
        load_state_dict_strict(method, weights, str(res.checkpoint / "weights.safetensors"))
        if ema is not None:
            if ema_sd is None:
                raise EqbenchError(f"cannot resume from {res.checkpoint}: the recipe keeps an EMA but the "
                                   "checkpoint has none")
            load_state_dict_strict(ema.model, ema_sd, str(res.checkpoint / "ema.safetensors"))
        optimizer.load_state_dict(state["optimizer"])
        rngs = state["rng"]
        _set_rng_state(rngs[world.rank] if world.rank < len(rngs) else rngs[0])
        step = int(state["step"])

    if res.teachers and not recipe.knowledge_transfer:
        raise EqbenchError("--teacher is only used by recipes with knowledge_transfer (e.g. arbsr paper-kt)")
    teachers = (make_teachers(method, {int(s): p for s, p in res.teachers.items()}, world.device)
                if recipe.knowledge_transfer else None)
    model = dist.wrap(TrainForward(method, recipe.sampler.kind, teachers), world)
    validator = Validator.create(cfg) if world.main and cfg.val_data else None
    log = TrainLog(out, total=recipe.total_iters, start=step, resumed=res.checkpoint is not None,
                   progress=cfg.progress and world.main) if world.main else None
    meta = _meta(res, recipe, data_meta, world, cfg)
    val_every = cfg.val_every or cfg.save_every

    def save(at: int) -> None:
        rng = dist.gather(world, _rng_state())
        if world.main:
            state = {"optimizer": optimizer.state_dict(), "rng": rng, "step": at}
            ck.save_checkpoint(out, at, weights=method.state_dict(), state=state, meta=meta, keep=cfg.keep,
                               ema=ema.model.state_dict() if ema is not None else None)
        dist.barrier(world)

    try:
        p_start = 0
        method.train()
        for pi, phase in enumerate(recipe.phases):
            p_end = p_start + phase.iters
            if step >= p_end:
                p_start = p_end
                continue
            if step == p_start and pi > 0 and phase.start == "ema":
                # EQSR: the finetune starts from the pretrain's EMA weights with a fresh optimizer.
                method.load_state_dict(ema.model.state_dict())
                optimizer = new_optimizer()
            key = (phase.data, min_image_size(recipe.sampler, phase))
            scales = (phase.scales or recipe.sampler.scales) if recipe.sampler.kind == "pairs" else ()
            plan = BatchPlan(seed=res.seed, phase_index=pi, phase_start=p_start, start=step, stop=p_end,
                             global_batch=recipe.batch_size, rank=world.rank, world=world.size,
                             n_images=len(images[key].images), scales=scales)
            loss_sum, n_loss = 0.0, 0
            loader = make_loader(images[key].images, recipe.sampler, plan, cfg.workers)
            for batch in (loader if cfg.workers else single_threaded(loader)):
                lr_now = phase.lr_at(step - p_start)
                # the global batch's loss (the mean over ranks), so that all ranks stop together
                loss = dist.mean(world, train_step(model, optimizer, to_device(batch, world.device), recipe,
                                                   lr_now))
                if not math.isfinite(loss):
                    raise EqbenchError(f"the loss became {loss} at iteration {step + 1}; lower the "
                                       "learning rate (the last checkpoint is intact)")
                if ema is not None:
                    ema.update(method)
                step += 1
                loss_sum, n_loss = loss_sum + loss, n_loss + 1
                at_log = step % cfg.log_every == 0 or step == p_end
                mean_loss = loss_sum / n_loss if at_log else None
                if at_log:
                    loss_sum, n_loss = 0.0, 0
                if log is not None:
                    log.step(step, phase.name, mean_loss, lr_now)
                if validator is not None and (step % val_every == 0 or step == recipe.total_iters):
                    validator.run(ema.model if ema is not None else method, step, log, world.device)
                    method.train()
                if step % cfg.save_every == 0 or step == p_end:
                    save(step)
            p_start = p_end
    finally:
        if log is not None:
            log.close()

    final = out / FINAL
    if world.main:
        sd = (ema.model if ema is not None else method).state_dict()
        info = {"method": res.method, "size": res.size, "options": str(res.options), "recipe": recipe.name,
                "seed": str(res.seed), "step": str(step), "weights": "ema" if ema is not None else "model"}
        ck.write_weights_atomic(final, sd, metadata={k: str(v) for k, v in info.items()})
    dist.barrier(world)
    return final


__all__ = ["TrainConfig", "train", "FINAL"]
