"""Evaluate one method on one set of images at one scale under one protocol."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..data.pairs import TooSmall, make_pair
from ..errors import EqbenchError, EqbenchWarning
from ..protocol import EvalProtocol
from ..scales import Scale
from ..scoring import score


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
            if not torch.isfinite(sr).all():
                raise EqbenchError(f"method {method.method_name!r} returned NaN/Inf for image {name!r} at "
                                   f"x{scale.label()}; nothing of this cell was scored")
            # sr is a fresh tensor (upsample clamps into a new one) only this loop holds: scoring may overwrite it.
            per_image[name] = score(sr, pair, protocol, overwrite=True)
    if not per_image:
        raise EqbenchError(f"no image is large enough for scale {scale.label()}: all {len(skipped)} were skipped")
    return CellResult(scale, per_image, skipped)
