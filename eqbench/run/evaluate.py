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
from ..metrics.core import luma, psnr, psnr_rgb, shave_border, ssim
from ..protocol import EvalProtocol
from ..scales import Scale

EVAL_METRICS = ("psnr-y", "ssim-y", "psnr-rgb")


def to_scoring_domain(sr01: torch.Tensor, pair: EvalPair, protocol: EvalProtocol) -> torch.Tensor:
    """Model output (3, H, W) in [0, 1] -> the pair's scoring domain in [0, 255] (maybe quantised)."""
    x = sr01.to(torch.float64).clamp(0, 1)
    if pair.single_channel:
        x = to_single_channel(x).unsqueeze(0)
    x.mul_(255.0)
    if protocol.quantize_sr:
        # MATLAB uint8(): round half away from zero; x is in [0, 255] already, so no saturation is needed.
        x.add_(0.5).floor_()
    return x


def score(sr01: torch.Tensor, pair: EvalPair, protocol: EvalProtocol) -> dict[str, float]:
    sr = to_scoring_domain(sr01, pair, protocol)
    shave = shave_for(pair.scale)
    y_sr = shave_border(luma(sr, protocol.round_y), shave)
    y_hr = shave_border(luma(pair.hr, protocol.round_y), shave)
    return {
        "psnr-y": psnr(y_sr, y_hr),
        "ssim-y": ssim(y_sr, y_hr),
        "psnr-rgb": psnr_rgb(sr, pair.hr, shave=shave),
    }


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
        try:
            pair = make_pair(name, img, scale, protocol)
        except TooSmall as e:
            warnings.warn(f"skipping {e}", EqbenchWarning, stacklevel=2)
            skipped.append(name)
            continue
        with torch.inference_mode():
            lr = pair.lr.unsqueeze(0).to(device=device, dtype=dtype)
            sr = method.upsample(lr, pair.out_size, **upsample_kwargs)[0].to("cpu")
        per_image[name] = score(sr, pair, protocol)
    if not per_image:
        raise EqbenchError(f"no image is large enough for scale {scale.label()}: all {len(skipped)} were skipped")
    return CellResult(scale, per_image, skipped)
