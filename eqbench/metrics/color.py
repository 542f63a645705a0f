"""The BT.601 luma used by every SR paper, in MATLAB's two flavours."""

from __future__ import annotations

import torch

_COEF = (65.481, 128.553, 24.966)
# Rounded Y on 8-bit RGB is computed exactly in integers (coefficients x 1000), so a Y that is exactly
# k + 0.5 (about 1 RGB triple in 86,000) rounds up as MATLAB's uint8() rounds half away from zero,
# whatever the floating-point order of operations would have produced.
_ICOEF = (65481.0, 128553.0, 24966.0)
# Greyscale HR images are scored on their single channel directly; a 3-channel model output for such
# an image is brought back to one channel with the same luma weights normalised to sum 1.
LUMA = (0.299, 0.587, 0.114)
_SIXTEEN = torch.tensor(16.0, dtype=torch.float64)


def rgb_to_y(rgb255: torch.Tensor, *, rounded: bool) -> torch.Tensor:
    """Y in [16, 235] from RGB in [0, 255] (..., 3, H, W), float64.

    rounded=True: MATLAB `rgb2ycbcr` on uint8 input (round half away from zero), which the classic
    tables use. rounded=False: BasicSR's `to_y_channel` / the LIIF-style `diff * coef / 256` map.

    Example:
        >>> import torch
        >>> red = torch.tensor([[[255.0]], [[0.0]], [[0.0]]])  # one pure red pixel, (3, 1, 1)
        >>> rgb_to_y(red, rounded=True).item()  # 16 + 65.481, rounded as MATLAB's uint8()
        81.0
        >>> round(rgb_to_y(red, rounded=False).item(), 3)
        81.481
        >>> rgb_to_y(torch.full((3, 1, 2), 255.0), rounded=True).tolist()  # white is Y 235
        [[235.0, 235.0]]
    """
    rgb = rgb255.to(torch.float64)
    r, g, b = rgb.unbind(-3)
    if rounded:
        if bool(torch.all(rgb == torch.round(rgb))):
            num = _ICOEF[0] * r + _ICOEF[1] * g + _ICOEF[2] * b  # exact: integers below 2**26
            return torch.div(num + 127500.0, 255000.0, rounding_mode="floor") + 16.0
        y = 16.0 + (_COEF[0] * r + _COEF[1] * g + _COEF[2] * b) / 255.0
        return torch.floor(y + 0.5).clamp_(0, 255)
    # One contraction over the channel axis (reads the image once) instead of five elementwise passes;
    # it sums the three products in another order than the formula above (differences ~1e-14).
    coef = torch.tensor(_COEF, dtype=torch.float64, device=rgb.device)
    if rgb.dim() == 3 and rgb.is_contiguous():
        # 16 + (coef / 255) . rgb as a single addmm: one pass and one allocation for a whole image.
        y = torch.addmm(_SIXTEEN.to(rgb.device), (coef / 255.0).view(1, 3), rgb.view(3, -1))
        return y.view(rgb.shape[-2:])
    return torch.tensordot(coef, rgb, dims=([0], [-3])).div_(255.0).add_(16.0)


def to_single_channel(img: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., H, W) by normalised luma weights (identity on identical channels).

    Example:
        >>> import torch
        >>> to_single_channel(torch.full((3, 1, 2), 100.0)).tolist()
        [[100.0, 100.0]]
        >>> round(to_single_channel(torch.tensor([[[255.0]], [[0.0]], [[0.0]]])).item(), 3)  # 0.299 * 255
        76.245
    """
    r, g, b = img.to(torch.float64).unbind(-3)
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
