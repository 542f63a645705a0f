"""Protocol degradations: from an HR image to the (HR crop, LR input) pair a protocol defines.

Sizes per axis (protocol.md, 'Conventions'):
  * modcrop (integer s):  H <- H - H mod s,                         h = H / s
  * arbsr  (non-integer): step = min k in {1,2,5,10,20} with k*s integral (1 if none),
                          h = floor(H / step / s) * step,            H <- round(h * s)
  * liif:                 h = floor(H / s + 1e-9),                   H <- round(h * s)
The LR image is then made from the cropped HR by the protocol's `degrade` rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..metrics.color import rgb_to_y
from ..protocol import EvalProtocol
from ..scales import Scale
from .resize import imresize

_STEPS = (1, 2, 5, 10, 20)


def arbsr_step(s: float) -> int | None:
    for k in _STEPS:
        if abs(k * s - round(k * s)) < 1e-9:
            return k
    return None


def lr_length(length: int, s: float, rule: str) -> int:
    if rule == "modcrop":
        if not float(s).is_integer():
            raise ValueError(f"modcrop needs an integer scale, got {s}")
        return length // int(s)
    if rule == "arbsr":
        step = arbsr_step(s) or 1
        return int(math.floor(length / step / s)) * step
    if rule == "liif":
        return int(math.floor(length / s + 1e-9))
    raise ValueError(f"unknown crop rule {rule!r}")


def hr_length(lr_len: int, s: float, rule: str) -> int:
    return lr_len * int(s) if rule == "modcrop" else int(round(lr_len * s))


def crop_sizes(hw: tuple[int, int], scale: Scale, protocol: EvalProtocol) -> tuple[tuple[int, int], tuple[int, int]]:
    """((H, W) of the HR crop, (h, w) of the LR image) for an HR image of size hw."""
    rule = protocol.crop_for(scale)
    h = lr_length(hw[0], scale.h, rule)
    w = lr_length(hw[1], scale.w, rule)
    return (hr_length(h, scale.h, rule), hr_length(w, scale.w, rule)), (h, w)


def shave_for(scale: Scale, protocol: EvalProtocol | None = None) -> tuple[int, int]:
    """Border shave per axis: the protocol's rule (ceil(scale) when no protocol is given)."""
    if protocol is not None:
        return protocol.shave_for(scale)
    return int(math.ceil(scale.h)), int(math.ceil(scale.w))


@dataclass(frozen=True)
class EvalPair:
    """One test image under one protocol and scale.

    hr:  (C, H, W) float64 holding the 8-bit reference in [0, 255]; C = 3 (RGB) or 1 (a greyscale
         image, or the Y channel for Y-only protocols): the scoring domain.
    lr:  (3, h, w) float64 in [0, 1], the model input (a single channel is replicated).
    """

    name: str
    hr: torch.Tensor
    lr: torch.Tensor
    scale: Scale

    @property
    def single_channel(self) -> bool:
        return self.hr.shape[0] == 1

    @property
    def out_size(self) -> tuple[int, int]:
        return int(self.hr.shape[-2]), int(self.hr.shape[-1])


class TooSmall(ValueError):
    """The image is smaller than the scale needs (the caller skips it with a warning)."""


def make_pair(name: str, img: np.ndarray, scale: Scale, protocol: EvalProtocol) -> EvalPair:
    """Crop and degrade one uint8 HR image ((H, W, 3) colour or (H, W) greyscale) for `protocol`."""
    (H, W), (h, w) = crop_sizes(img.shape[:2], scale, protocol)
    if min(h, w) < 1 or min(H, W) < 1:
        raise TooSmall(f"{name}: {img.shape[1]}x{img.shape[0]} is too small for scale {scale.label()}")
    sh, sw = shave_for(scale)
    if H <= 2 * sh or W <= 2 * sw:
        raise TooSmall(f"{name}: {img.shape[1]}x{img.shape[0]} is too small for scale {scale.label()}: the "
                       f"protocol's {sw}-pixel border shave leaves nothing to score")
    img = img[:H, :W]
    u8 = torch.tensor(img)  # an 8-bit copy: the caller's array may be read-only or strided
    u8 = u8.permute(2, 0, 1) if u8.dim() == 3 else u8.unsqueeze(0)
    # Channel-first and contiguous: the resize gathers and the Y/PSNR/SSIM passes then read it row-wise.
    # copy_ into a new tensor converts and transposes in one pass (2x faster than .to(contiguous_format)).
    hr = torch.empty(u8.shape, dtype=torch.float64).copy_(u8)
    degrade = protocol.degrade_for(scale)
    if degrade == "matlab-y":
        if hr.shape[0] == 3:
            hr = rgb_to_y(hr, rounded=True).unsqueeze(0)
        lr = imresize(hr / 255.0, **_resize_args(scale, (h, w)))
    elif degrade == "matlab-rgb-uint8":
        lr = imresize(hr, **_resize_args(scale, (h, w)), uint8=True) / 255.0
    elif degrade == "matlab-rgb-float":
        lr = torch.floor(imresize(hr, **_resize_args(scale, (h, w))) + 0.5).clamp_(0, 255) / 255.0
    elif degrade == "pil-bicubic":
        lr = _pil_bicubic(img, (h, w))
    else:
        raise ValueError(f"unknown degradation {degrade!r}")
    if tuple(lr.shape[-2:]) != (h, w):
        raise AssertionError(f"LR size {tuple(lr.shape[-2:])} != expected {(h, w)}")
    if lr.shape[0] == 1:
        lr = lr.expand(3, -1, -1)
    return EvalPair(name=name, hr=hr, lr=lr.contiguous(), scale=scale)


def _resize_args(scale: Scale, lr_hw: tuple[int, int]) -> dict:
    # Integer scales: MATLAB's imresize(HR, 1/s) (kernel scale exactly 1/s); otherwise the target size.
    if scale.integer:
        return {"scale": 1.0 / scale.h}
    return {"size": lr_hw}


def _pil_bicubic(img: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
    # What LIIF/LTE/EQSR's torchvision Resize(BICUBIC) does on an 8-bit image: PIL's antialiased
    # bicubic (a = -0.5) with its own 8-bit rounding.
    out = np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.BICUBIC))
    t = torch.from_numpy(np.array(out, dtype=np.float64)) / 255.0
    return t.permute(2, 0, 1) if t.dim() == 3 else t.unsqueeze(0)
