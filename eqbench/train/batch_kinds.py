"""The kinds of training batch: one strategy each, in one table, named for what the batch holds.

  * `points` (LIIF's pipeline; was `liif`): 2304 HR pixels of a crop. Supervised with
    `method.query_points(lr, coord, cell)` if "points" in `query_modes`; otherwise the method upsamples
    each sample's whole crop densely and the sampled pixels are picked.
  * `window` (EQSR's pipeline; was `eqsr`): a 48 x 48 window of the crop. `query_points` on the
    window's coordinates ("grid": as a (N, 48, 48, 2) window; "points": flattened); or, for a
    `WindowDecoder` (EQSR), `forward_windows(lr, frames, windows)`: only the window is decoded, its
    edges are grid borders, as the official training; otherwise a dense upsample cut to the window.
  * `pairs` (MetaSR/ArbSR; one scale per batch, the whole HR patch): a dense upsample of the batch.

Dense outputs come from `_upsample`, the contract's unclamped core: `upsample` clamps to [0, 1], which
would zero the gradient of every pixel outside that range. Recipes and checkpoints written with the old
names (`liif`, `eqsr`) are read as the new ones (`batch_kind`, `ALIASES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import batches
from ..errors import EqbenchError, suggest
from ..method import WindowDecoder, check_input

ALIASES = {"liif": "points", "eqsr": "window"}


def _dense(method, lr: torch.Tensor, size) -> torch.Tensor:
    out_size = (int(size[0]), int(size[1]))
    check_input(lr, out_size)
    return method._upsample(lr, out_size)


# ---- points ----
def _points_sample(image: np.ndarray, rng: np.random.Generator, s, scale) -> dict[str, torch.Tensor]:
    return batches.liif_sample(image, rng, lr_size=s.lr_size, sample_q=s.sample_q,
                               scale_range=(s.scale_min, s.scale_max), resize=s.resize, augment=s.augment)


def _points_check(s, where: str) -> None:
    if round(s.lr_size * s.scale_min) ** 2 < s.sample_q:
        raise EqbenchError(f"{where}: sample_q {s.sample_q} exceeds the pixels of the smallest crop")


def _points_predict(method, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    lr = batch["lr"]
    if "points" in method.query_modes:
        return method.query_points(lr, batch["coord"], batch["cell"])
    preds = []
    for i in range(lr.shape[0]):
        full = _dense(method, lr[i:i + 1], batch["hr_size"][i].tolist())  # (1, 3, H, W)
        preds.append(full.flatten(2)[0].t()[batch["index"][i]])
    return torch.stack(preds)


# ---- window ----
def _window_sample(image: np.ndarray, rng: np.random.Generator, s, scale) -> dict[str, torch.Tensor]:
    return batches.eqsr_sample(image, rng, lr_size=s.lr_size, window=s.window,
                               scale_range=(s.scale_min, s.scale_max), resize=s.resize, augment=s.augment)


def _window_check(s, where: str) -> None:
    if round(s.lr_size * s.scale_min) < s.window:
        raise EqbenchError(f"{where}: the target window {s.window} exceeds the smallest crop")


def _window_predict(method, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    lr, modes = batch["lr"], method.query_modes
    n, (h, w) = lr.shape[0], batch["gt"].shape[-2:]
    if "grid" in modes:
        return method.query_points(lr, batch["coord"], batch["cell"]).permute(0, 3, 1, 2)
    if "points" in modes:
        pred = method.query_points(lr, batch["coord"].view(n, h * w, 2), batch["cell"].view(n, h * w, 2))
        return pred.view(n, h, w, 3).permute(0, 3, 1, 2)
    if isinstance(method, WindowDecoder):  # EQSR: only the target window is decoded (official)
        sizes = [tuple(int(v) for v in hw) for hw in batch["hr_size"].tolist()]
        for size in sizes:
            check_input(lr[:1], size)
        return method.forward_windows(lr, sizes, [(oy, ox, h, w) for oy, ox in batch["offset"].tolist()])
    preds = []
    for i in range(lr.shape[0]):
        oy, ox = batch["offset"][i].tolist()
        full = _dense(method, lr[i:i + 1], batch["hr_size"][i].tolist())
        preds.append(full[0, :, oy:oy + h, ox:ox + w])
    return torch.stack(preds)


def _square_crop(s, scales) -> tuple[int, int]:
    # round() of U(1, s_max) * lr_size can reach the rounding of the maximum, never above it.
    c = batches.crop_size(s.lr_size, s.scale_max)
    return c, c


# ---- pairs ----
def _pairs_sample(image: np.ndarray, rng: np.random.Generator, s, scale) -> dict[str, torch.Tensor]:
    return batches.pairs_sample(image, rng, scale, lr_patch=s.lr_size, resize=s.resize, augment=s.augment)


def _pairs_check(s, where: str) -> None:
    if not s.scales:
        raise EqbenchError(f"{where}: a pairs sampler needs a list of scales")


def _pairs_predict(method, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return _dense(method, batch["lr"], batch["hr_size"][0].tolist())


def _pairs_crop(s, scales) -> tuple[int, int]:
    sizes = [batches.pairs_hr_size(sc, s.lr_size) for sc in scales]
    return max(h for h, _ in sizes), max(w for _, w in sizes)


@dataclass(frozen=True)
class BatchKind:
    """One kind of training batch. `sample(image, rng, sampler, scale)` builds one sample (`scale` is the
    batch's, for kinds with `per_batch_scale`); `largest_crop(sampler, scales)` is the largest HR crop it
    can ask for (smaller images are skipped); `check(sampler, where)` validates a sampler of this kind;
    `predict(method, batch)` is the method's prediction matching batch['gt'], unclamped."""

    name: str
    sample: Callable[..., dict[str, torch.Tensor]]
    largest_crop: Callable[..., tuple[int, int]]
    check: Callable[..., None]
    predict: Callable[..., torch.Tensor]
    serves: tuple[str, ...] = ()  # the query modes for which this kind is the generic recipes' choice
    per_batch_scale: bool = False  # one scale per batch, drawn by the trainer (knowledge transfer needs it)
    defaults: dict = field(default_factory=dict)  # sampler fields when --sampler switches a recipe to it


KINDS: dict[str, BatchKind] = {k.name: k for k in (
    BatchKind("points", _points_sample, _square_crop, _points_check, _points_predict, serves=("points",),
              defaults={"lr_size": 48, "scale_min": 1.0, "scale_max": 4.0, "sample_q": 2304}),
    BatchKind("window", _window_sample, _square_crop, _window_check, _window_predict, serves=("grid",),
              defaults={"lr_size": 48, "scale_min": 1.0, "scale_max": 4.0, "window": 48}),
    BatchKind("pairs", _pairs_sample, _pairs_crop, _pairs_check, _pairs_predict, per_batch_scale=True,
              defaults={"lr_size": 50, "scales": tuple(f"{v / 10:g}" for v in range(11, 41))}),
)}  # fmt: skip


def kind_name(name: object) -> str:
    """The current name of a batch kind given by its current or old name; unknown names are errors."""
    name = ALIASES.get(str(name), str(name))
    if name not in KINDS:
        raise EqbenchError(f"unknown batch kind {name!r}{suggest(name, [*KINDS, *ALIASES])}; known: {', '.join(KINDS)}")
    return name


def batch_kind(name: str) -> BatchKind:
    return KINDS[kind_name(name)]


def kind_for(query_modes: tuple[str, ...]) -> BatchKind:
    """The batch kind the generic recipes use for a method that answers `query_modes` (pairs: dense only)."""
    return next((k for k in KINDS.values() if set(k.serves) & set(query_modes)), KINDS["pairs"])
