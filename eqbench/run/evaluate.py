"""Evaluate one method on one set of images at one scale under one protocol."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..data.io import EqbenchWarning
from ..data.pairs import EvalPair, TooSmall, make_pair, shave_for
from ..errors import EqbenchError
from ..metrics.color import to_single_channel
from ..metrics.core import luma, psnr, psnr_, shave_border, ssim
from ..protocol import EvalProtocol
from ..scales import Scale

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
    shave = shave_for(pair.scale)
    y_sr = shave_border(luma(sr, protocol.round_y), shave)
    y_hr = shave_border(luma(pair.hr, protocol.round_y), shave)
    out = {"psnr-y": psnr(y_sr, y_hr), "ssim-y": ssim(y_sr, y_hr)}
    # Last: sr is this function's own tensor (y_sr may be a view of it), so its PSNR differences it in place.
    out["psnr-rgb"] = psnr_(sr, pair.hr, shave=shave)
    return out


@dataclass
class CellResult:
    """Per-image metric values of one (method, dataset, scale) cell."""

    scale: Scale
    per_image: dict[str, dict[str, float]]
    skipped: list[str]

    def mean(self, metric: str) -> float:
        return float(np.mean([v[metric] for v in self.per_image.values()]))


def evaluate_images(method, images: Iterable[tuple[str, np.ndarray]], scale: Scale, protocol: EvalProtocol,
                    *, device: torch.device | str = "cpu", **upsample_kwargs) -> CellResult:
    per_image: dict[str, dict[str, float]] = {}
    skipped: list[str] = []
    dtype = method.eval_dtype
    for name, img in images:
        # Inference mode for the whole image, scoring included: no autograd bookkeeping on its ~500 tensor ops.
        with torch.inference_mode():
            try:
                pair = make_pair(name, img, scale, protocol)
            except TooSmall as e:
                warnings.warn(f"skipping {e}", EqbenchWarning, stacklevel=2)
                skipped.append(name)
                continue
            lr = pair.lr.unsqueeze(0).to(device=device, dtype=dtype)
            sr = method.upsample(lr, pair.out_size, **upsample_kwargs)[0].to("cpu")
            # sr is a fresh tensor (upsample clamps into a new one) only this loop holds: scoring may overwrite it.
            per_image[name] = score(sr, pair, protocol, overwrite=True)
    if not per_image:
        raise EqbenchError(f"no image is large enough for scale {scale.label()}: all {len(skipped)} were skipped")
    return CellResult(scale, per_image, skipped)
