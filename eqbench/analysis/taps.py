"""Layer similarity across scales: Gram matrices at a method's `feature_taps`, then minibatch CKA.

The same LR crops go through a method at several scales (the EQSR paper's Fig. 2(a) compares, per
layer, the features of one input upsampled x2, x3, x4). Forward hooks turn each tap's output into its
n x n Gram matrix on the spot, so no feature map is kept: memory stays flat however large the decoder
features are. A tap's output is flattened per example (reshape(n, -1)); it must therefore be
batch-major, either (n, ...) or (n * q, ...) as an MLP applied to `x.view(-1, d)` of (n, q, d) sees
it. A module that runs several times in one forward (LIIF's four local-ensemble shifts, chunked
queries) contributes the concatenation of its outputs, whose Gram is the sum of the parts' Grams.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EqbenchError, check_finite
from ..scales import Scale, parse_scale
from .cka import GramStore, gram_linear


def _first_tensor(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, torch.Tensor):
                return o
    return None


def resolve_taps(model: torch.nn.Module, taps: Sequence[str] | None = None) -> tuple[str, ...]:
    name = getattr(model, "method_name", "") or type(model).__name__
    taps = tuple(getattr(model, "feature_taps", ()) if taps is None else taps)
    if not taps:
        raise EqbenchError(
            f"method {name!r} declares no feature_taps, so there are no layers to compare; "
            "CKA needs a learned method with layers to tap (bicubic has none; a model from eqbench.wrap "
            "names them with taps=('module.path', ...))"
        )
    known = dict(model.named_modules())
    for t in taps:
        if t not in known:
            raise EqbenchError(
                f"method {name!r}: feature tap {t!r} is not a submodule; known: "
                f"{', '.join(n for n in list(known)[1:12] if n)} ..."
            )
    return taps


@contextmanager
def capture_grams(model: torch.nn.Module, taps: Sequence[str], n: int):
    """Yields a dict tap -> Gram (n, n) float64 filled by the next forward pass(es)."""
    grams: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def hook_for(tap: str) -> Callable:
        def hook(_module, _inputs, output):
            t = _first_tensor(output)
            if t is None:
                raise EqbenchError(f"feature tap {tap!r} returned {type(output).__name__}, not a tensor")
            if t.numel() % n:
                raise EqbenchError(
                    f"feature tap {tap!r} output {tuple(t.shape)} is not batch-major for a "
                    f"batch of {n}: its size is not a multiple of n"
                )
            g = gram_linear(t.detach().reshape(n, -1))
            grams[tap] = grams[tap] + g if tap in grams else g

        return hook

    handles = [modules[t].register_forward_hook(hook_for(t)) for t in taps]
    try:
        yield grams
    finally:
        for h in handles:
            h.remove()


def sample_crops(images: Iterable[np.ndarray], n: int, size: int, *, seed: int = 0) -> torch.Tensor:
    """n square crops (n, 3, size, size) float64 in [0, 1], cycling over the images at seeded positions.

    Example:
        >>> import numpy as np
        >>> images = [np.full((20, 30, 3), 255, np.uint8), np.zeros((10, 10), np.uint8)]  # RGB and grey
        >>> crops = sample_crops(images, 3, 8)
        >>> tuple(crops.shape), crops.flatten(1).mean(1).tolist()  # crops alternate between the images
        ((3, 3, 8, 8), [1.0, 0.0, 1.0])
    """
    imgs = [im if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2) for im in images]
    imgs = [im for im in imgs if im.shape[0] >= size and im.shape[1] >= size]
    if not imgs:
        raise EqbenchError(f"no image is at least {size}x{size} pixels; use a smaller --crop-size")
    if n < 1:
        raise EqbenchError(f"need at least one crop, got {n}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        im = imgs[i % len(imgs)]
        y = int(rng.integers(0, im.shape[0] - size + 1))
        x = int(rng.integers(0, im.shape[1] - size + 1))
        out[i] = im[y : y + size, x : x + size, :3]
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(torch.float64) / 255.0


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Contiguous batches; a remainder below 4 (too few for the unbiased HSIC) joins the last batch.

    Example:
        >>> batch_slices(10, 4)  # 4 + 6: a batch of 2 would be too small
        [slice(0, 4, None), slice(4, 10, None)]
        >>> batch_slices(12, 4)
        [slice(0, 4, None), slice(4, 8, None), slice(8, 12, None)]
    """
    if n < 4:
        raise EqbenchError(f"CKA needs at least 4 crops, got {n}")
    if batch_size < 4:
        raise EqbenchError(f"--batch-size must be at least 4 (the unbiased HSIC needs n >= 4), got {batch_size}")
    starts = list(range(0, n, batch_size))
    if n - starts[-1] < 4 and len(starts) > 1:
        starts.pop()
    return [slice(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


def collect_grams(
    store: GramStore,
    label: str,
    model,
    crops: torch.Tensor,
    scales: Sequence[Scale | float | str],
    *,
    batch_size: int = 16,
    taps: Sequence[str] | None = None,
    device="cpu",
) -> tuple[str, ...]:
    """Run `model` on the crops at each scale and add Grams under keys (label, scale label, tap)."""
    taps = resolve_taps(model, taps)
    scales = [parse_scale(s) for s in scales]
    h, w = crops.shape[-2:]
    dtype = getattr(model, "eval_dtype", torch.float32)
    for b, sl in enumerate(batch_slices(crops.shape[0], batch_size)):
        lr = crops[sl].to(device=device, dtype=dtype)
        for s in scales:
            out_size = (int(round(h * s.h)), int(round(w * s.w)))
            with torch.inference_mode(), capture_grams(model, taps, lr.shape[0]) as grams:
                model.upsample(lr, out_size)
            missing = [t for t in taps if t not in grams]
            if missing:
                raise EqbenchError(f"feature taps {missing} did not run during upsample at {s}")
            for t in taps:
                check_finite(grams[t], f"feature tap {t} at x{s.label()} (crops {sl.start}-{sl.stop - 1})")
                store.add((label, s.label(), t), b, grams[t])
    return taps


@dataclass
class ScaleCKA:
    """Per-layer CKA between scale pairs and the layer x layer matrices of one method."""

    method: str
    taps: tuple[str, ...]
    scales: tuple[str, ...]
    n_crops: int
    per_layer: dict[str, list[float]]  # "2-3" -> [CKA at each tap]
    matrices: dict[str, list[list[float]]]  # "2-3" -> rows: taps at the first scale, cols: at the second

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "taps": list(self.taps),
            "scales": list(self.scales),
            "n_crops": self.n_crops,
            "estimator": "minibatch linear CKA (unbiased HSIC_1)",
            "per_layer": self.per_layer,
            "matrices": self.matrices,
        }


def scale_cka(
    store: GramStore, label: str, taps: Sequence[str], scales: Sequence[Scale | float | str], n_crops: int
) -> ScaleCKA:
    """Read the per-layer across-scale CKA and the full layer x layer matrices out of a filled store."""
    labels = [parse_scale(s).label() for s in scales]
    keys = [(label, s, t) for s in labels for t in taps]
    c = store.cka(keys)
    L = len(taps)
    per_layer, matrices = {}, {}
    for i, j in itertools.combinations(range(len(labels)), 2):
        block = c[i * L : (i + 1) * L, j * L : (j + 1) * L]
        pair = f"{labels[i]}-{labels[j]}"
        per_layer[pair] = [float(v) for v in torch.diagonal(block)]
        matrices[pair] = block.tolist()
    return ScaleCKA(label, tuple(taps), tuple(labels), n_crops, per_layer, matrices)


def cross_matrix(
    store: GramStore,
    key_a: tuple[str, str],
    taps_a: Sequence[str],
    key_b: tuple[str, str],
    taps_b: Sequence[str],
) -> list[list[float]]:
    """Layer x layer CKA between two runs (method label, scale label): rows run a, columns run b."""
    ka = [(*key_a, t) for t in taps_a]
    kb = [(*key_b, t) for t in taps_b]
    c = store.cka(ka + kb)
    return c[: len(ka), len(ka) :].tolist()
