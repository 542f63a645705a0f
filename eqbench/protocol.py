"""Evaluation protocols: frozen, named, versioned descriptions of how a number is made.

Why: published ASISR tables mix conventions, and a convention changes PSNR by 0.02-0.1 dB, as much as
the gaps between methods (see ../shared/spec/protocol.md). Every result row names `name@version`.

A protocol fixes four things:
  * crop    - how the HR image is cropped so LR and HR sizes agree;
  * degrade - how the LR input is made from the cropped HR;
  * output  - whether SR is quantised to 8 bits before scoring;
  * score   - the Y conversion (rounded to uint8 like MATLAB, or not) and the border shave.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from .errors import unknown_name

Crop = Literal["modcrop", "arbsr", "liif"]
Degrade = Literal["matlab-y", "matlab-rgb-uint8", "matlab-rgb-float", "pil-bicubic"]


@dataclass(frozen=True)
class EvalProtocol:
    name: str
    version: int
    # Integer scales: HR cut to a multiple of the scale ('modcrop'); non-integer and asymmetric scales
    # use `crop_noninteger` ('arbsr' step rule or 'liif' floor rule), since a modcrop does not exist.
    crop_integer: Crop
    crop_noninteger: Crop
    degrade: Degrade
    quantize_sr: bool
    round_y: bool
    shave: Literal["ceil-scale"]
    description: str

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def crop_for(self, integer_scale: bool) -> Crop:
        return self.crop_integer if integer_scale else self.crop_noninteger

    def to_dict(self) -> dict:
        return asdict(self)

    def in_words(self) -> str:
        y = "rounded to uint8 (MATLAB rgb2ycbcr)" if self.round_y else "unrounded (BasicSR to_y_channel)"
        q = "quantised to 8 bits" if self.quantize_sr else "scored as float (not quantised)"
        return (
            f"{self.id}: {self.description} HR crop: {self.crop_integer} for integer scales, "
            f"{self.crop_noninteger} otherwise; LR by {self.degrade}; SR {q}; Y {y}; "
            f"border shave ceil(scale) pixels per axis; PSNR = 10 log10(255^2/MSE) per image, mean over "
            f"the set; SSIM = Wang et al. ssim_index (11x11 Gaussian, sigma 1.5, valid, no downsampling)."
        )


PROTOCOLS: dict[str, EvalProtocol] = {
    p.name: p
    for p in (
        EvalProtocol(
            name="matlab",
            version=1,
            crop_integer="modcrop",
            crop_noninteger="arbsr",
            degrade="matlab-rgb-uint8",
            quantize_sr=True,
            round_y=True,
            shave="ceil-scale",
            description="EDSR/RCAN benchmark LR (MATLAB imresize on uint8 RGB, per-pass rounding); "
            "ArbSR crop rule for non-integer scales; the default for benchmarks.",
        ),
        EvalProtocol(
            name="classic-y",
            version=1,
            crop_integer="modcrop",
            crop_noninteger="arbsr",
            degrade="matlab-y",
            quantize_sr=True,
            round_y=True,
            shave="ceil-scale",
            description="SRCNN/VDSR: degradation of the rounded Y channel only, in double; reproduces the "
            "published Bicubic rows of Set5/Set14/Urban100.",
        ),
        EvalProtocol(
            name="arbsr",
            version=1,
            crop_integer="modcrop",
            crop_noninteger="arbsr",
            degrade="matlab-rgb-uint8",
            quantize_sr=True,
            round_y=False,
            shave="ceil-scale",
            description="ArbSR/MetaSR test code: MATLAB uint8 LR, quantised SR, unrounded Y.",
        ),
        EvalProtocol(
            name="basicsr",
            version=1,
            crop_integer="modcrop",
            crop_noninteger="arbsr",
            degrade="matlab-rgb-float",
            quantize_sr=True,
            round_y=False,
            shave="ceil-scale",
            description="Python-made LR as BasicSR/HAT scripts write it (MATLAB bicubic in float, saved "
            "as 8 bits once); quantised SR; unrounded Y (BasicSR calculate_psnr/ssim).",
        ),
        EvalProtocol(
            name="liif",
            version=1,
            crop_integer="liif",
            crop_noninteger="liif",
            degrade="pil-bicubic",
            quantize_sr=False,
            round_y=False,
            shave="ceil-scale",
            description="LIIF/LTE/EQSR on-the-fly LR: h_lr = floor(H/s), HR cropped to round(h_lr*s), "
            "PIL antialiased bicubic LR; float SR, unrounded Y.",
        ),
    )
}

DEFAULT_PROTOCOL = "matlab"


def get_protocol(name: str | EvalProtocol) -> EvalProtocol:
    if isinstance(name, EvalProtocol):
        return name
    base = name.split("@", 1)[0]
    if base not in PROTOCOLS:
        raise unknown_name("protocol", name, PROTOCOLS)
    p = PROTOCOLS[base]
    if "@" in name and name != p.id:
        from .errors import EqbenchError

        raise EqbenchError(f"protocol {name!r} is not available; this eqbench provides {p.id}")
    return p
