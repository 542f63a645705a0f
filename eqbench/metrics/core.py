"""PSNR and SSIM as pure functions on float64 tensors, plus `MetricInfo` for reports.

SSIM is Wang et al.'s `ssim_index`: 11x11 Gaussian window (sigma 1.5, normalised), K = (0.01, 0.03),
'valid' filtering, the mean of the SSIM map, and no automatic downsampling (the 2009 `ssim.m` with
downsampling gives Set5 x2 bicubic 0.9382 instead of the published 0.9299).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from .. import native
from .color import rgb_to_y


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    unit: str
    digits: int
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("psnr-y", True, "dB", 2, "PSNR on the Y channel (BT.601), peak 255"),
        MetricInfo("ssim-y", True, "", 4, "SSIM (Wang et al. ssim_index) on the Y channel"),
        MetricInfo("psnr-rgb", True, "dB", 2, "PSNR over the RGB channels, peak 255"),
        MetricInfo("eq-s", True, "dB", 2, "scale equivariance: PSNR between SR-then-downscale and "
                   "downscale-then-SR (10 log10(255^2/MSE))"),
    )
}


def shave_border(img: torch.Tensor, shave: tuple[int, int]) -> torch.Tensor:
    """A view of `img` (..., H, W) without `shave` = (rows, columns) pixels on each side.

    Example:
        >>> import torch
        >>> shave_border(torch.zeros(3, 6, 8), (1, 2)).shape
        torch.Size([3, 4, 4])
    """
    sh, sw = shave
    h, w = img.shape[-2], img.shape[-1]
    if 2 * sh >= h or 2 * sw >= w:
        raise ValueError(f"border shave {shave} leaves nothing of a {h}x{w} image")
    return img[..., sh : h - sh if sh else h, sw : w - sw if sw else w]


def psnr(a: torch.Tensor, b: torch.Tensor, *, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) over all elements, float64; inf for identical inputs.

    Example:
        >>> import torch
        >>> a = torch.zeros(3, 8, 8)
        >>> round(psnr(a, a + 1), 4)  # MSE 1 on [0, 255]: 20 log10(255)
        48.1308
        >>> psnr(a, a)
        inf
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = torch.sub(a.to(torch.float64), b.to(torch.float64)).reshape(-1)
    return psnr_of_mse(torch.dot(d, d).item() / max(d.numel(), 1), peak)


def psnr_(a: torch.Tensor, b: torch.Tensor, *, shave: tuple[int, int] = (0, 0), peak: float = 255.0) -> float:
    """psnr of the border-shaved (C, H, W) a and b, for a float64 `a` it may overwrite (with a - b).

    No copy of a large image is made: whole rows are differenced in place (one contiguous band), the
    shaved columns of the difference zeroed, and one BLAS dot sums the squares.
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = shave_border(a, (shave[0], 0))
    n = shave_border(d, (0, shave[1])).numel()
    if not d.is_contiguous():
        d = shave_border(a, shave)
        return psnr_of_mse(d.sub_(shave_border(b, shave)).square_().sum().item() / max(n, 1), peak)
    d.sub_(shave_border(b.to(torch.float64), (shave[0], 0)))
    if shave[1]:
        d[..., : shave[1]] = 0
        d[..., d.shape[-1] - shave[1] :] = 0
    d = d.view(-1)
    return psnr_of_mse(torch.dot(d, d).item() / max(n, 1), peak)


def psnr_of_mse(mse: float, peak: float = 255.0) -> float:
    """10 log10(peak^2 / mse); inf for mse 0."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


@lru_cache(maxsize=8)
def _window_list(size: int = 11, sigma: float = 1.5) -> tuple[float, ...]:
    return tuple(_gaussian_window(size, sigma).tolist())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(ax * ax) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(t: torch.Tensor, g: Sequence[float]) -> torch.Tensor:
    """Separable 'valid' correlation of the last two axes with the symmetric 1-D window g (float64).

    A sum of shifted slices accumulated in place (no temporaries), so it runs on any device.
    """
    k = len(g)
    r = k // 2
    h, wd = t.shape[-2] - k + 1, t.shape[-1] - k + 1
    rows = t[..., r : r + h, :] * g[r]
    for i in range(r):
        rows.add_(t[..., i : i + h, :], alpha=g[i]).add_(t[..., k - 1 - i : k - 1 - i + h, :], alpha=g[i])
    out = rows[..., :, r : r + wd] * g[r]
    for i in range(r):
        out.add_(rows[..., :, i : i + wd], alpha=g[i]).add_(rows[..., :, k - 1 - i : k - 1 - i + wd], alpha=g[i])
    return out


# Output rows per strip on CPU: a strip's four maps and temporaries (~1-2 MB for a 500-pixel-wide image)
# stay in the CPU cache, which makes the shifted-slice filter ~1.5x faster than on whole images.
_CPU_STRIP = 64


def _ssim_sum(x: torch.Tensor, y: torch.Tensor, g: Sequence[float], c1: float, c2: float) -> torch.Tensor:
    """Sum of the 'valid' SSIM map of x and y (n, h, w) per channel, shape (n,)."""
    # The SSIM formula needs the two variances only as their sum, so x^2 + y^2 is filtered as one map:
    # four filtered maps instead of five. 2x and 2xy are filtered instead of x and xy (doubling is exact
    # in floating point and commutes with the linear filter), which saves two doublings per output pixel.
    maps = torch.empty((4, *x.shape), dtype=x.dtype, device=x.device)
    torch.mul(x, 2.0, out=maps[0])
    maps[1] = y
    torch.mul(x, x, out=maps[2]).addcmul_(y, y)
    torch.mul(maps[0], y, out=maps[3])
    mu_x2, mu_y, sq, xy2 = _filter_valid(maps, g).unbind(0)
    mu_xy2 = mu_x2 * mu_y  # 2 mu_x mu_y
    mu_sq = torch.mul(mu_y, mu_y).addcmul_(mu_x2, mu_x2, value=0.25)  # mu_x^2 + mu_y^2
    cov = xy2.sub_(mu_xy2).add_(c2)  # 2 cov_xy + c2
    var = sq.sub_(mu_sq).add_(c2)  # var_x + var_y + c2
    num = mu_xy2.add_(c1).mul_(cov)
    den = mu_sq.add_(c1).mul_(var)
    return num.div_(den).sum(dim=(-2, -1))


def _ssim_native(kernels, x: torch.Tensor, y: torch.Tensor, g: Sequence[float], c1: float, c2: float) -> float:
    """Mean over channels of the SSIM-map sums of x and y (n, h, w) by the compiled kernel (eqbench.native)."""
    n, h, w = x.shape
    gw = _window_array(tuple(g))
    scratch = torch.empty(4 * (w + 8), dtype=torch.float64)
    sums = []
    for i in range(n):
        xi, yi = x[i], y[i]
        if xi.stride(-1) != 1:
            xi = xi.contiguous()
        if yi.stride(-1) != 1:
            yi = yi.contiguous()
        sums.append(kernels.eqb_ssim_sum(xi.data_ptr(), xi.stride(0), yi.data_ptr(), yi.stride(0), h, w,
                                         gw.data_ptr(), len(g), c1, c2, scratch.data_ptr()))
    return sum(sums) / n


@lru_cache(maxsize=8)
def _window_array(g: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(g, dtype=torch.float64)


def ssim(a: torch.Tensor, b: torch.Tensor, *, peak: float = 255.0) -> float:
    """Mean SSIM of two single-channel images (H, W) (or (C, H, W): mean of the per-channel means).

    Example:
        >>> import torch
        >>> hr = torch.arange(256.0).reshape(16, 16)
        >>> ssim(hr, hr)
        1.0
        >>> round(ssim(hr + 10, hr), 4)  # brighter: only the luminance term drops
        0.9967
        >>> round(ssim(hr.flip(0), hr), 4)  # the same pixels, rows reversed: anti-correlated structure
        -0.8197
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    x = a.to(torch.float64).reshape(-1, a.shape[-2], a.shape[-1])
    y = b.to(torch.float64).reshape(-1, a.shape[-2], a.shape[-1])
    if x.shape[-1] < 11 or x.shape[-2] < 11:
        raise ValueError(f"ssim needs at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    g = _window_list()
    k = len(g)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    ho, wo = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    if native.plain_cpu(x, y) and (kernels := native.lib()) is not None:
        return _ssim_native(kernels, x, y, g, c1, c2) / (ho * wo)
    strip = _CPU_STRIP if x.device.type == "cpu" else ho
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for r0 in range(0, ho, strip):
        r1 = min(ho, r0 + strip)
        total += _ssim_sum(x[:, r0 : r1 + k - 1], y[:, r0 : r1 + k - 1], g, c1, c2)
    return (total / (ho * wo)).mean().item()


def luma(img: torch.Tensor, rounded: bool) -> torch.Tensor:
    # (3, H, W) RGB in [0, 255] -> Y; (H, W) or (1, H, W) is already the luma of a greyscale image.
    if img.dim() == 3 and img.shape[0] == 3:
        return rgb_to_y(img, rounded=rounded)
    return img.reshape(img.shape[-2], img.shape[-1]).to(torch.float64)


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0), rounded_y: bool = True) -> float:
    """PSNR on Y of two images in [0, 255] ((3,H,W) RGB, or single-channel luma), border shaved.

    Example:
        >>> import torch
        >>> hr = torch.full((3, 16, 16), 128.0)
        >>> sr = hr.clone(); sr[:, 0, :] = 0.0  # the top row black: Y 16 instead of 126
        >>> round(psnr_y(sr, hr), 4)  # MSE 110^2 / 16 (one row of 16)
        19.3441
        >>> psnr_y(sr, hr, shave=(1, 1))  # the border shave removes the difference
        inf
    """
    return psnr(shave_border(luma(sr, rounded_y), shave), shave_border(luma(hr, rounded_y), shave))


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0), rounded_y: bool = True) -> float:
    """SSIM (ssim_index semantics) on Y of two images in [0, 255], border shaved.

    Example:
        >>> import torch
        >>> hr = torch.arange(3 * 16 * 16, dtype=torch.float64).reshape(3, 16, 16) % 256
        >>> ssim_y(hr, hr)
        1.0
        >>> ssim_y(hr.flip(-2), hr) < 0  # upside down: anti-correlated structure
        True
    """
    return ssim(shave_border(luma(sr, rounded_y), shave), shave_border(luma(hr, rounded_y), shave))


def psnr_rgb(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0)) -> float:
    """PSNR over all channels of two images in [0, 255], border shaved.

    Example:
        >>> import torch
        >>> hr = torch.full((3, 12, 12), 100.0)
        >>> sr = hr.clone(); sr[0] += 2  # the red channel 2 levels too bright: MSE 4 / 3
        >>> round(psnr_rgb(sr, hr), 4)
        46.8814
    """
    return psnr(shave_border(sr, shave), shave_border(hr, shave))
