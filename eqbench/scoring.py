"""Scoring one model output under a protocol: the scoring domain, PSNR-Y, SSIM-Y and PSNR-RGB.

Shared by the evaluation runner (eqbench/run/) and the analyses (EQ_S scores in the same domain).
"""

from __future__ import annotations

import torch

from . import native
from .data.pairs import EvalPair, shave_for
from .metrics.color import to_single_channel
from .metrics.core import luma, psnr, psnr_, psnr_of_mse, shave_border, ssim
from .protocol import EvalProtocol

EVAL_METRICS = ("psnr-y", "ssim-y", "psnr-rgb")


def to_scoring_domain(sr01: torch.Tensor, pair: EvalPair, protocol: EvalProtocol, *,
                      inplace: bool = False) -> torch.Tensor:
    """Model output (3, H, W) in [0, 1] -> the pair's scoring domain in [0, 255] (maybe quantised).

    inplace=True may overwrite a float64 sr01 (a large image: saves allocating and filling a copy).
    """
    x = sr01.to(torch.float64)
    x = x.clamp_(0, 1) if inplace else x.clamp(0, 1)
    if pair.single_channel:
        x = to_single_channel(x).unsqueeze(0)
    x.mul_(255.0)
    if protocol.quantize_sr:
        # MATLAB uint8(): round half away from zero; x is in [0, 255] already, so no saturation is needed.
        x.add_(0.5).floor_()
    return x


def score(sr01: torch.Tensor, pair: EvalPair, protocol: EvalProtocol, *, overwrite: bool = False) -> dict[str, float]:
    """PSNR-Y, SSIM-Y and PSNR-RGB of one model output; overwrite=True may reuse sr01 as scratch."""
    fused = _score_native(sr01, pair, protocol)
    if fused is not None:
        return fused
    sr = to_scoring_domain(sr01, pair, protocol, inplace=overwrite)
    shave = shave_for(pair.scale, protocol)
    y_sr = shave_border(luma(sr, protocol.round_y), shave)
    y_hr = shave_border(luma(pair.hr, protocol.round_y), shave)
    out = {"psnr-y": psnr(y_sr, y_hr), "ssim-y": ssim(y_sr, y_hr)}
    # Last: sr is this function's own tensor (y_sr may be a view of it), so its PSNR differences it in place.
    out["psnr-rgb"] = psnr_(sr, pair.hr, shave=shave)
    return out


def _score_native(sr01: torch.Tensor, pair: EvalPair, protocol: EvalProtocol) -> dict[str, float] | None:
    """`score` by the compiled kernel (eqbench.native.eqb_score_rgb, then the SSIM kernel on the two Y
    images) for an RGB output of an RGB reference on the CPU; None where that does not apply."""
    hr = pair.hr
    if (not native.plain_cpu(sr01, hr) or hr.shape[0] != 3 or sr01.dim() != 3 or sr01.shape != hr.shape
            or sr01.dtype not in (torch.float32, torch.float64) or (protocol.round_y and not protocol.quantize_sr)
            or (kernels := native.lib()) is None):
        return None
    sr = sr01.contiguous()
    hr = hr.contiguous()
    _, h, w = hr.shape
    sh, sw = shave_for(pair.scale, protocol)
    ys = torch.empty(shave_border(hr[0], (sh, sw)).shape, dtype=torch.float64)  # (its check: shave < size)
    yh = torch.empty_like(ys)
    sums = torch.zeros(2, dtype=torch.float64)
    rowbuf = torch.empty(3 * w, dtype=torch.float64)
    f64 = sr.dtype == torch.float64
    kernels.eqb_score_rgb(sr.data_ptr() if f64 else None, None if f64 else sr.data_ptr(), hr.data_ptr(), h, w, sh, sw,
                          int(protocol.quantize_sr), int(protocol.round_y), ys.data_ptr(), yh.data_ptr(),
                          sums.data_ptr(), rowbuf.data_ptr())
    sq_rgb, sq_y = sums.tolist()
    return {"psnr-y": psnr_of_mse(sq_y / ys.numel()), "ssim-y": ssim(ys, yh),
            "psnr-rgb": psnr_of_mse(sq_rgb / (3 * ys.numel()))}
