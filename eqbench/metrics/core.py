"""PSNR and SSIM as pure functions on float64 tensors, plus `MetricInfo` for reports.

SSIM is Wang et al.'s `ssim_index`: 11x11 Gaussian window (sigma 1.5, normalised), K = (0.01, 0.03),
'valid' filtering, the mean of the SSIM map, and no automatic downsampling (the 2009 `ssim.m` with
downsampling gives Set5 x2 bicubic 0.9382 instead of the published 0.9299).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

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
    sh, sw = shave
    h, w = img.shape[-2], img.shape[-1]
    if 2 * sh >= h or 2 * sw >= w:
        raise ValueError(f"border shave {shave} leaves nothing of a {h}x{w} image")
    return img[..., sh : h - sh if sh else h, sw : w - sw if sw else w]


def psnr(a: torch.Tensor, b: torch.Tensor, *, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) over all elements, float64; inf for identical inputs."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = torch.mean((a.to(torch.float64) - b.to(torch.float64)) ** 2).item()
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(ax * ax) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(t: torch.Tensor, g: list[float]) -> torch.Tensor:
    """Separable 'valid' correlation of the last two axes with the symmetric 1-D window g.

    On CPU scipy's line filter (one cache-friendly pass per axis, float64); elsewhere a sum of shifted
    slices on the tensor's device. Both are exact float64 correlations (they differ by ~1e-13).
    """
    k = len(g)
    r = k // 2
    if t.device.type == "cpu":
        from scipy.ndimage import correlate1d

        w = np.asarray(g, dtype=np.float64)
        a = correlate1d(t.numpy(), w, axis=-2, mode="constant")[..., r:-r, :]
        a = correlate1d(np.ascontiguousarray(a), w, axis=-1, mode="constant")[..., r:-r]
        return torch.from_numpy(np.ascontiguousarray(a))
    h, wd = t.shape[-2] - k + 1, t.shape[-1] - k + 1
    rows = t[..., r : r + h, :] * g[r]
    for i in range(r):  # symmetric window: pair the taps i and k-1-i
        rows.add_(t[..., i : i + h, :] + t[..., k - 1 - i : k - 1 - i + h, :], alpha=g[i])
    out = rows[..., :, r : r + wd] * g[r]
    for i in range(r):
        out.add_(rows[..., :, i : i + wd] + rows[..., :, k - 1 - i : k - 1 - i + wd], alpha=g[i])
    return out


def ssim(a: torch.Tensor, b: torch.Tensor, *, peak: float = 255.0) -> float:
    """Mean SSIM of two single-channel images (H, W) (or (C, H, W): mean of the per-channel means)."""
    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    x = a.to(torch.float64).reshape(-1, a.shape[-2], a.shape[-1])
    y = b.to(torch.float64).reshape(-1, a.shape[-2], a.shape[-1])
    if x.shape[-1] < 11 or x.shape[-2] < 11:
        raise ValueError(f"ssim needs at least 11x11 pixels, got {tuple(a.shape[-2:])}")
    g = _gaussian_window().tolist()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y, xx, yy, xy = _filter_valid(torch.stack([x, y, x * x, y * y, x * y]), g).unbind(0)
    mu_x2, mu_y2, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    s_x, s_y, s_xy = xx - mu_x2, yy - mu_y2, xy - mu_xy
    m = ((2 * mu_xy + c1) * (2 * s_xy + c2)) / ((mu_x2 + mu_y2 + c1) * (s_x + s_y + c2))
    return m.mean(dim=(-2, -1)).mean().item()


def luma(img: torch.Tensor, rounded: bool) -> torch.Tensor:
    # (3, H, W) RGB in [0, 255] -> Y; (H, W) or (1, H, W) is already the luma of a greyscale image.
    if img.dim() == 3 and img.shape[0] == 3:
        return rgb_to_y(img, rounded=rounded)
    return img.reshape(img.shape[-2], img.shape[-1]).to(torch.float64)


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0), rounded_y: bool = True) -> float:
    """PSNR on Y of two images in [0, 255] ((3,H,W) RGB, or single-channel luma), border shaved."""
    return psnr(shave_border(luma(sr, rounded_y), shave), shave_border(luma(hr, rounded_y), shave))


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0), rounded_y: bool = True) -> float:
    """SSIM (ssim_index semantics) on Y of two images in [0, 255], border shaved."""
    return ssim(shave_border(luma(sr, rounded_y), shave), shave_border(luma(hr, rounded_y), shave))


def psnr_rgb(sr: torch.Tensor, hr: torch.Tensor, *, shave: tuple[int, int] = (0, 0)) -> float:
    """PSNR over all channels of two images in [0, 255], border shaved."""
    return psnr(shave_border(sr, shave), shave_border(hr, shave))
