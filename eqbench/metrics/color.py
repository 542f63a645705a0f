"""The BT.601 luma used by every SR paper, in MATLAB's two flavours."""

from __future__ import annotations

import torch

# MATLAB rgb2ycbcr (uint8 path) scales the coefficient row by 1/255 first, then imlincomb sums
# in double and casts to uint8; we keep that order of operations.
_COEF = (65.481, 128.553, 24.966)
# Greyscale HR images are scored on their single channel directly; a 3-channel model output for such
# an image is brought back to one channel with the same luma weights normalised to sum 1.
LUMA = (0.299, 0.587, 0.114)


def rgb_to_y(rgb255: torch.Tensor, *, rounded: bool) -> torch.Tensor:
    """Y in [16, 235] from RGB in [0, 255] (..., 3, H, W), float64.

    rounded=True: MATLAB `rgb2ycbcr` on uint8 input (round half away from zero), which the classic
    tables use. rounded=False: BasicSR's `to_y_channel` / the LIIF-style `diff * coef / 256` map.
    """
    rgb = rgb255.to(torch.float64)
    r, g, b = rgb.unbind(-3)
    if rounded:
        c = [(1.0 / 255.0) * k for k in _COEF]
        y = c[0] * r + c[1] * g + c[2] * b + 16.0
        return torch.floor(y + 0.5).clamp_(0, 255)
    return 16.0 + (_COEF[0] * r + _COEF[1] * g + _COEF[2] * b) / 255.0


def to_single_channel(img: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., H, W) by normalised luma weights (identity on identical channels)."""
    r, g, b = img.to(torch.float64).unbind(-3)
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
