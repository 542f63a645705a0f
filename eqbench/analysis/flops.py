"""FLOP counting: torch's FlopCounterMode plus formulas for the operations it counts as zero.

Unit: FLOPs, with one multiply-accumulate = 2 FLOPs. That is FlopCounterMode's convention for
matmul and convolution (a k x k conv from C_in to C_out on an H x W output counts 2 C_in C_out k^2 H W,
the bias not included); divide by 2 for the MACs many SR papers print.

FlopCounterMode counts matrix products, convolutions and attention; it returns zero for other ops.
Added here, at the same unit:
  * interpolation, 2 FLOPs per tap per output element (the tap weights themselves are not counted):
    grid_sample and upsample bilinear 4 taps, bicubic 16, trilinear 8, nearest 0 (a gather);
  * declared formulas, for code FlopCounterMode sees as elementwise work: a module may define
    `extra_flops(inputs, output) -> int`, and a plain function may be decorated with
    `@declare_flops(formula)` (formula(*args, out=result, **kwargs) -> int); both are summed while
    `count_flops` runs and cost nothing otherwise. An unfold-style involution (EQSR's upsampler,
    out[b, c, p] = sum_k unfold(u)[b, c, k, p] * K[b, g(c), k, p], written as products and sums)
    declares `involution_flops(out.shape, taps)`; one written with einsum/matmul is already counted
    and must not declare it again.
Elementwise ops (activations, additions, positional encodings) are not counted, as is usual.
"""

from __future__ import annotations

import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..costs import _ACTIVE
from ..errors import EqbenchError

aten = torch.ops.aten
UNIT = "FLOPs (1 multiply-accumulate = 2 FLOPs)"

# interpolation_mode of aten.grid_sampler_*: 0 bilinear, 1 nearest, 2 bicubic.
_GRID_TAPS_2D = {0: 4, 1: 0, 2: 16}
_GRID_TAPS_3D = {0: 8, 1: 0}


def grid_sample_flops(input_shape, grid_shape, interpolation_mode: int, *args, out_shape=None, **kwargs) -> int:
    """2 * taps * N * C * H_out * W_out for aten.grid_sampler_2d (bilinear 4 taps, bicubic 16, nearest 0)."""
    n, c = input_shape[0], input_shape[1]
    return 2 * _GRID_TAPS_2D[int(interpolation_mode)] * n * c * math.prod(grid_shape[1:-1])


def grid_sample_3d_flops(input_shape, grid_shape, interpolation_mode: int, *args, out_shape=None, **kwargs) -> int:
    n, c = input_shape[0], input_shape[1]
    return 2 * _GRID_TAPS_3D[int(interpolation_mode)] * n * c * math.prod(grid_shape[1:-1])


def _interp(taps: int):
    def formula(*args, out_shape=None, **kwargs) -> int:
        return 2 * taps * math.prod(out_shape)

    formula.__doc__ = f"2 * {taps} taps * output elements"
    return formula


EXTRA_FORMULAS = {
    aten.grid_sampler_2d: grid_sample_flops,
    aten.grid_sampler_3d: grid_sample_3d_flops,
    aten.upsample_bilinear2d: _interp(4),
    aten.upsample_bicubic2d: _interp(16),
    aten.upsample_trilinear3d: _interp(8),
    aten.upsample_nearest2d: _interp(0),
}


@contextmanager
def module_formulas(model: torch.nn.Module):
    """Sum `extra_flops(inputs, output)` of every module that defines it and the `declare_flops` functions
    called, over the next forward(s); keys are module paths and function names."""
    counts: Counter = Counter()
    _ACTIVE.append(counts)

    def hook_for(name: str):
        def hook(module, inputs, output):
            counts[name] += int(module.extra_flops(inputs, output))

        return hook

    handles = [
        m.register_forward_hook(hook_for(n))
        for n, m in model.named_modules()
        if callable(getattr(m, "extra_flops", None))
    ]
    try:
        yield counts
    finally:
        _ACTIVE.remove(counts)
        for h in handles:
            h.remove()


@dataclass
class FlopCount:
    total: int
    by_op: dict[str, int]
    by_module_formula: dict[str, int]  # declared formulas: module path or function name -> FLOPs
    lr_size: tuple[int, int]
    out_size: tuple[int, int]
    unit: str = UNIT

    def to_dict(self) -> dict:
        return {
            "flops": self.total,
            "unit": self.unit,
            "lr": list(self.lr_size),
            "out": list(self.out_size),
            "by_op": self.by_op,
            "by_module_formula": self.by_module_formula,
        }


def count_flops(model, lr_size, out_size, *, batch: int = 1) -> FlopCount:
    """FLOPs of one `model.upsample` call on a (batch, 3, h, w) input to out_size (random input).

    Example: nearest upsampling (no FLOPs) then a 3x3 convolution on the output, 2 FLOPs per
    multiply-add: 2 * (3 * 9) * 3 * 8 * 8.
        >>> import torch.nn.functional as F
        >>> from torch import nn
        >>> from eqbench.method import SRMethod
        >>> class Conv(SRMethod):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        ...     def _upsample(self, lr, out_size):
        ...         return self.conv(F.interpolate(lr, size=out_size, mode="nearest"))
        >>> count_flops(Conv(), (4, 4), (8, 8)).total
        10368
    """
    h, w = int(lr_size[0]), int(lr_size[1])
    out = (int(out_size[0]), int(out_size[1]))
    if h < 1 or w < 1:
        raise EqbenchError(f"input size must be positive, got {lr_size}")
    dtype = getattr(model, "eval_dtype", torch.float32)
    device = getattr(model, "device", torch.device("cpu"))
    lr = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lr = lr.to(device=device, dtype=dtype)
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
    with torch.no_grad(), module_formulas(model) as extra, counter:
        model.upsample(lr, out)
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items() if v}
    total = sum(by_op.values()) + sum(extra.values())
    return FlopCount(total, by_op, {k: int(v) for k, v in extra.items()}, (h, w), out)
