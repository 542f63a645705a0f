"""Evaluation protocols: frozen, named, versioned descriptions of how a number is made.

Why: published ASISR tables mix conventions, and a convention changes PSNR by 0.02-0.1 dB, as much as
the gaps between methods (see ../shared/spec/protocol.md). Every result row names `name@version`.

A protocol fixes four things:
  * crop    - how the HR image is cropped so LR and HR sizes agree;
  * degrade - how the LR input is made from the cropped HR;
  * output  - whether SR is quantised to 8 bits before scoring;
  * score   - the Y conversion (rounded to uint8 like MATLAB, or not) and the border shave.

Most protocols use one degradation at every scale and shave ceil(scale) pixels. `eqsr` follows the EQSR
paper's test files instead: pre-made MATLAB LR (the EDSR benchmark package) at x2/x3/x4 only, LIIF-style
PIL LR at every other scale (`degrade_other`, `crop_noninteger`), and BasicSR's fixed crop_border
(`shave="eqsr"`: EQSR_BORDER).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from .errors import unknown_name

Crop = Literal["modcrop", "arbsr", "liif"]
Degrade = Literal["matlab-y", "matlab-rgb-uint8", "matlab-rgb-float", "pil-bicubic"]
Shave = Literal["ceil-scale", "eqsr"]

# BasicSR crop_border in EQSR's test option files (../shared/spec/methods.md 1.8): testx234.yml 4 (x2, x3,
# x4), testx6.yml 6, testx8.yml 10, test_scale.yml 4 (its arbitrary-scale file, x5.75). A scale without a
# file of its own is scored as test_scale.yml scores it: border 4.
EQSR_BORDER = {6.0: 6, 8.0: 10}
EQSR_DEFAULT_BORDER = 4


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
    shave: Shave
    description: str
    # Integer scales at which `crop_integer` + `degrade` apply; empty = every integer scale. Elsewhere
    # the protocol uses `crop_noninteger` + `degrade_other` (eqsr: pre-made LR at x2/x3/x4 only).
    premade_scales: tuple[float, ...] = ()
    degrade_other: Degrade | None = None

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def premade(self, scale) -> bool:
        """True where the protocol's integer-scale rules apply (`scale`: a Scale, or a bool 'integer')."""
        if isinstance(scale, bool):
            return scale
        return bool(scale.integer) and (not self.premade_scales or float(scale.h) in self.premade_scales)

    def crop_for(self, scale) -> Crop:
        """The HR crop rule at `scale` (a Scale; a bool 'integer scale' for protocols without premade_scales)."""
        return self.crop_integer if self.premade(scale) else self.crop_noninteger

    def degrade_for(self, scale) -> Degrade:
        return self.degrade if self.premade(scale) or self.degrade_other is None else self.degrade_other

    def shave_for(self, scale) -> tuple[int, int]:
        """Border pixels removed per axis (rows, columns) before PSNR/SSIM."""
        if self.shave == "eqsr":
            return tuple(EQSR_BORDER.get(float(v), EQSR_DEFAULT_BORDER) for v in (scale.h, scale.w))
        return int(math.ceil(scale.h)), int(math.ceil(scale.w))

    def to_dict(self) -> dict:
        return asdict(self)

    def in_words(self) -> str:
        y = "rounded to uint8 (MATLAB rgb2ycbcr)" if self.round_y else "unrounded (BasicSR to_y_channel)"
        q = "quantised to 8 bits" if self.quantize_sr else "scored as float (not quantised)"
        at = (f"x{', x'.join(f'{v:g}' for v in self.premade_scales)}" if self.premade_scales
              else "integer scales")
        lr = (f"LR by {self.degrade}" if self.degrade_other is None
              else f"LR by {self.degrade} at {at}, by {self.degrade_other} otherwise")
        shave = ("border shave ceil(scale) pixels per axis" if self.shave == "ceil-scale" else
                 "border shave as EQSR's BasicSR test files: 6 at x6, 10 at x8, 4 at every other scale")
        return (
            f"{self.id}: {self.description} HR crop: {self.crop_integer} for {at}, "
            f"{self.crop_noninteger} otherwise; {lr}; SR {q}; Y {y}; "
            f"{shave}; PSNR = 10 log10(255^2/MSE) per image, mean over "
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
        EvalProtocol(
            name="eqsr",
            version=1,
            crop_integer="modcrop",
            crop_noninteger="liif",
            degrade="matlab-rgb-uint8",
            degrade_other="pil-bicubic",
            premade_scales=(2.0, 3.0, 4.0),
            quantize_sr=True,
            round_y=False,
            shave="eqsr",
            description="the EQSR paper's own scoring (BasicSR calculate_psnr/ssim on uint8 images, "
            "test_y_channel): EDSR benchmark LR at x2/x3/x4, LIIF-style on-the-fly LR (h = floor(H/s), "
            "PIL bicubic) at other scales; quantised SR; unrounded Y; BasicSR's fixed crop_border.",
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
