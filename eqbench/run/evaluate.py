"""Evaluate one method on one set of images at one scale under one protocol."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..data.pairs import EvalPair, TooSmall, make_pair, shave_for
from ..errors import EqbenchWarning, NoScorableImage, check_finite
from ..protocol import EvalProtocol
from ..scales import Scale
from ..scoring import score

SSIM_WINDOW = 11  # metrics.core.ssim's Gaussian window


@dataclass
class CellResult:
    """Per-image metric values of one (method, dataset, scale) cell."""

    scale: Scale
    per_image: dict[str, dict[str, float]]
    skipped: list[str]

    def mean(self, metric: str) -> float:
        return float(np.mean([v[metric] for v in self.per_image.values()]))


def _check_ssim_size(pair: EvalPair) -> None:
    sh, sw = shave_for(pair.scale)
    H, W = pair.out_size
    if H - 2 * sh < SSIM_WINDOW or W - 2 * sw < SSIM_WINDOW:
        raise TooSmall(f"{pair.name}: its {W}x{H} crop at scale {pair.scale.label()} is too small to score: SSIM "
                       f"needs {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the {sw}-pixel border shave")


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
                _check_ssim_size(pair)
            except TooSmall as e:
                warnings.warn(f"skipping {e}", EqbenchWarning, stacklevel=2)
                skipped.append(name)
                continue
            lr = pair.lr.unsqueeze(0).to(device=device, dtype=dtype)
            sr = method.upsample(lr, pair.out_size, **upsample_kwargs)[0].to("cpu")
            check_finite(sr, f"image {name} at x{scale.label()}")
            # sr is a fresh tensor (upsample clamps into a new one) only this loop holds: scoring may overwrite it.
            per_image[name] = score(sr, pair, protocol, overwrite=True)
    if not per_image:
        raise NoScorableImage(f"no image is large enough for scale {scale.label()}: all {len(skipped)} were "
                              "skipped (use larger images or a smaller scale)")
    return CellResult(scale, per_image, skipped)
