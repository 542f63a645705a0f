"""`bicubic`: MATLAB-compatible bicubic interpolation, the reference row of every SR table.

Computes in the input's dtype (evaluation passes float64, since the method has no parameters) with
the protocol core's `imresize`; the same kernel the protocol degrades with.

It behaves as MATLAB's `imresize` does on the LR image as the protocol stores it: on an 8-bit LR
(every value k/255) it rounds and clips after each 1-D pass like imresize on a uint8 image; on any
other LR it stays in floating point. That is how the published Bicubic rows were made: with the float
path instead, Set5 x2 under `matlab` is 33.6448 dB, 0.0044 dB above the reference 33.6404; the uint8
path gives 33.6396. Pass `uint8=True/False` to force either.
"""

from __future__ import annotations

import torch

from eqbench.data.resize import imresize
from eqbench.method import SRMethod, register_method


class Bicubic(SRMethod):
    feature_taps = ()
    fresh_output = True  # imresize always returns a new tensor

    def __init__(self, uint8: bool | None = None) -> None:
        super().__init__()
        self.uint8 = uint8

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        as_uint8 = self.uint8
        if as_uint8 is False:
            return imresize(lr, size=out_size)
        x255 = lr * 255.0
        if as_uint8 is None and not bool(torch.all((x255 - torch.round(x255)).abs() < 1e-6)):
            return imresize(lr, size=out_size)
        return imresize(torch.floor(x255 + 0.5), size=out_size, uint8=True) / 255.0


@register_method("bicubic", description="MATLAB-compatible bicubic interpolation (no parameters)", reference=True)
def make_bicubic(*, size: str = "paper", uint8: bool | None = None) -> Bicubic:
    return Bicubic(uint8=uint8)
