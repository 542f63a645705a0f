"""Validation during training: PSNR-Y on a named benchmark set, through the evaluation core."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.datasets import locate
from ..data.io import load_image
from ..errors import EqbenchError
from ..protocol import EvalProtocol, get_protocol
from ..run.evaluate import evaluate_images
from ..scales import Scale, parse_scale


@dataclass
class Validator:
    dataset: str
    images: list[tuple[str, np.ndarray]]
    scales: tuple[Scale, ...]
    protocol: EvalProtocol

    @classmethod
    def create(cls, cfg) -> Validator:
        st = locate(cfg.val_data, cfg.data_root)
        files = list(st.files)
        if cfg.val_limit is not None:
            if cfg.val_limit < 1:
                raise EqbenchError("--val-limit must be a positive number of images")
            files = files[:cfg.val_limit]
        images = [(p.stem, load_image(p)) for p in files]
        scales = tuple(parse_scale(s) for s in cfg.val_scales)
        return cls(cfg.val_data, images, scales, get_protocol(cfg.val_protocol))

    def run(self, model: torch.nn.Module, step: int, log, device: torch.device) -> dict[str, float]:
        model.eval()
        out = {}
        for scale in self.scales:
            cell = evaluate_images(model, self.images, scale, self.protocol, device=device)
            out[scale.label()] = v = cell.mean("psnr-y")
            if log is not None:
                log.validation(step, self.dataset, scale.label(), self.protocol.id, v, len(cell.per_image))
        return out
