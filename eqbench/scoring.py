"""Scoring one model output under a protocol: the scoring domain, PSNR-Y, SSIM-Y and PSNR-RGB.

Shared by the evaluation runner (eqbench/run/) and the analyses (EQ_S scores in the same domain).
"""

from __future__ import annotations

import torch

from .data.pairs import EvalPair, shave_for
from .metrics.color import to_single_channel
from .metrics.core import luma, psnr, psnr_, shave_border, ssim
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
    sr = to_scoring_domain(sr01, pair, protocol, inplace=overwrite)
    shave = shave_for(pair.scale, protocol)
    y_sr = shave_border(luma(sr, protocol.round_y), shave)
    y_hr = shave_border(luma(pair.hr, protocol.round_y), shave)
    out = {"psnr-y": psnr(y_sr, y_hr), "ssim-y": ssim(y_sr, y_hr)}
    # Last: sr is this function's own tensor (y_sr may be a view of it), so its PSNR differences it in place.
    out["psnr-rgb"] = psnr_(sr, pair.hr, shave=shave)
    return out
