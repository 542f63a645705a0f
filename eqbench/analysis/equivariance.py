"""EQ_S: how scale-equivariant a method is, as a PSNR between two paths through it.

For a method phi, an HR image x and a scale r, with f the protocol's degradation (MATLAB bicubic
downscale by r on 8-bit images for the `matlab` protocol):

    EQ_S(phi, x, r) = PSNR( phi(f(x; r); r),  f(phi(x; r); r) )
                      downscale, then SR   SR, then downscale

PSNR = 10 log10(255^2 / MSE), so higher means more equivariant. The EQSR paper prints EQ_S as "10 log
of the squared difference"; that quantity is not a PSNR (it grows as equivariance gets worse), and
it is not what this module computes. Identical sides give MSE = 0; each image's value is capped at
EQ_S_MAX_DB = 100 dB (an MSE below 255^2 * 1e-10), so an exactly equivariant operator scores exactly
100 and a mean over images stays finite.

EQ_S alone is degenerate: an operator that ignores its input (a constant image) is perfectly
equivariant. Every result therefore carries the ordinary PSNR-Y of phi(f(x)) against x at the same
scale and crop, and `bicubic` belongs in every comparison.

Sizes. Both sides must be exactly (H, W), and both must really be scale r: f(x) has size H / r and
phi(x) has size H * r, so H / r and H * r must be integers per axis. The crop of x is the largest
top-left (H, W) for which the protocol's own crop rule (modcrop for integer r, the ArbSR step rule or
the LIIF floor rule otherwise; eqbench.data.pairs) maps H to an LR length h = H / r that it maps back
to H, and maps U = H * r to h' = H and back to U: the rule applied twice. For integer r this is the
usual modcrop (H a multiple of r), so PSNR-Y equals `eqbench run`'s; for r = 2.5 H is a multiple of
10, for r = 1.6 of 40, for r = 2.75 of 220 (the ArbSR step of 2.75 is 20). Images too small for such
a crop are skipped with a warning.

Scoring follows the protocol: both sides go through the protocol's SR output rule (8-bit
quantisation or not), Y (rounded or not), and a border shave of ceil(r) pixels per axis. phi(x) is
stored as an 8-bit image before f is applied, since f is defined on 8-bit images. Greyscale images
and Y-only protocols work in the single-channel domain: x is its luma, phi's output is mapped to one
channel before f.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.pairs import TooSmall, hr_length, lr_length, make_pair, shave_for
from ..errors import EqbenchError, EqbenchWarning, NoScorableImage, check_finite
from ..metrics.color import to_single_channel
from ..metrics.core import luma, psnr, shave_border
from ..protocol import EvalProtocol, get_protocol
from ..scales import Scale, parse_scale
from ..scoring import to_scoring_domain

EQ_S_MAX_DB = 100.0


@dataclass
class EqsResult:
    """EQ_S and the matching PSNR-Y of one method at one scale, per image and as means."""

    scale: Scale
    per_image: dict[str, dict[str, float]]
    skipped: list[str] = field(default_factory=list)
    crops: dict[str, tuple[int, int]] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        return float(np.mean([v[metric] for v in self.per_image.values()]))

    @property
    def eq_s(self) -> float:
        return self.mean("eq-s")

    @property
    def psnr_y(self) -> float:
        return self.mean("psnr-y")


def _exact(H: int, s: float, rule: str) -> tuple[int, int, int] | None:
    """(H, h, U) if the crop rule takes H to h = H/s and back, and U = H*s to H and back; else None."""
    h = lr_length(H, s, rule)
    if h < 1 or hr_length(h, s, rule) != H or abs(h * s - H) > 1e-6:
        return None
    U = int(round(H * s))
    if abs(H * s - U) > 1e-6 or lr_length(U, s, rule) != H or hr_length(H, s, rule) != U:
        return None
    return H, h, U


def _eq_length(length: int, s: float, rule: str) -> tuple[int, int, int] | None:
    """The largest exact (H, h, U) with H <= length."""
    for H in range(length, 0, -1):
        r = _exact(H, s, rule)
        if r is not None:
            return r
    return None


def eq_crop(hw: Sequence[int], scale: Scale, protocol: EvalProtocol) -> tuple[tuple[int, int], tuple[int, int]]:
    """((H, W) crop of x, (U_h, U_w) size of phi(x)); raises TooSmall if no crop fits.

    Example:
        >>> from eqbench.protocol import get_protocol
        >>> from eqbench.scales import parse_scale
        >>> eq_crop((45, 47), parse_scale("2.5"), get_protocol("matlab"))  # x2.5: sides multiples of 10
        ((40, 40), (100, 100))
    """
    rule = protocol.crop_for(scale)
    a, b = _eq_length(int(hw[0]), scale.h, rule), _eq_length(int(hw[1]), scale.w, rule)
    if a is None or b is None:
        raise TooSmall(f"{hw[1]}x{hw[0]} has no crop with exact sizes at scale {scale.label()} for EQ_S")
    return (a[0], b[0]), (a[2], b[2])


def smallest_eq_length(s: float, rule: str, limit: int = 4096) -> int | None:
    """The smallest side (up to `limit`) that EQ_S can use at scale `s` under a protocol crop rule.

    Example:
        >>> smallest_eq_length(3.0, "modcrop"), smallest_eq_length(2.5, "arbsr"), smallest_eq_length(2.75, "arbsr")
        (3, 10, 220)
    """
    return next((n for n in range(1, limit + 1) if _exact(n, s, rule)), None)


def _named(images) -> list[tuple[str, np.ndarray]]:
    out = []
    for i, item in enumerate(images):
        name, img = item if isinstance(item, tuple) else (f"image{i}", item)
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise EqbenchError(
                f"EQ_S needs 8-bit HR images as numpy uint8 arrays (H, W, 3) or (H, W); "
                f"{name} is {type(img).__name__} {getattr(img, 'dtype', '')}"
            )
        out.append((str(name), img))
    if not out:
        raise EqbenchError("EQ_S got no images")
    return out


def _to_uint8(img01: torch.Tensor) -> np.ndarray:
    # MATLAB uint8(): round half away from zero, then saturate (values are >= 0 here).
    q = torch.floor(img01.to(torch.float64) * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)
    return (q.permute(1, 2, 0) if q.dim() == 3 else q).cpu().numpy()


def _run(method, x01: torch.Tensor, out_size: tuple[int, int], device, dtype) -> torch.Tensor:
    with torch.inference_mode():
        return method.upsample(x01.unsqueeze(0).to(device=device, dtype=dtype), out_size)[0].to("cpu")


def eq_s_image(
    method, name: str, img: np.ndarray, scale: Scale, protocol: EvalProtocol, *, device=None
) -> tuple[dict[str, float], tuple[int, int]]:
    """{'eq-s': dB, 'psnr-y': dB} for one uint8 HR image, and the (H, W) crop used."""
    (H, W), up_size = eq_crop(img.shape[:2], scale, protocol)
    device = device if device is not None else getattr(method, "device", "cpu")
    dtype = getattr(method, "eval_dtype", torch.float32)
    pair = make_pair(name, np.ascontiguousarray(img[:H, :W]), scale, protocol)
    if pair.out_size != (H, W):
        raise AssertionError(f"{name}: protocol crop {pair.out_size} != EQ_S crop {(H, W)}")
    left = _run(method, pair.lr, (H, W), device, dtype)  # phi(f(x))
    check_finite(left, f"image {name} at x{scale.label()}")
    x01 = (pair.hr / 255.0).expand(3, -1, -1)  # the scoring-domain HR: RGB, or its single channel
    up = _run(method, x01, up_size, device, dtype)  # phi(x)
    check_finite(up, f"image {name} at x{scale.label()} (upsampling the HR image)")
    up8 = _to_uint8(to_single_channel(up) if pair.single_channel else up)
    right_pair = make_pair(name, up8, scale, protocol)  # f(phi(x))
    if right_pair.out_size != up_size or tuple(right_pair.lr.shape[-2:]) != (H, W):
        raise AssertionError(f"{name}: f(phi(x)) has size {tuple(right_pair.lr.shape[-2:])}, expected {(H, W)}")
    shave = shave_for(scale, protocol)

    def y(img01: torch.Tensor) -> torch.Tensor:
        return shave_border(luma(to_scoring_domain(img01, pair, protocol), protocol.round_y), shave)

    y_left = y(left)
    eq = min(psnr(y_left, y(right_pair.lr)), EQ_S_MAX_DB)
    ref = psnr(y_left, shave_border(luma(pair.hr, protocol.round_y), shave))
    return {"eq-s": eq, "psnr-y": ref}, (H, W)


def eq_s_details(method, hr_images, scale, *, protocol: str | EvalProtocol = "matlab", device=None) -> EqsResult:
    """EQ_S and PSNR-Y per image at one scale (images too small for an exact crop are skipped).

    Example:
        >>> import numpy as np
        >>> from eqbench.method import create_method, reference_method
        >>> noise = np.random.default_rng(0).integers(0, 256, (41, 40, 3), dtype=np.uint8)
        >>> r = eq_s_details(create_method(reference_method()), [("noise", noise)], 2)  # bicubic
        >>> r.crops["noise"], sorted(r.per_image["noise"])  # x2: the modcrop of 41 x 40
        ((40, 40), ['eq-s', 'psnr-y'])
        >>> r.per_image["noise"]["eq-s"] < 100.0  # bicubic is not exactly scale-equivariant
        True
    """
    scale, protocol = parse_scale(scale), get_protocol(protocol)
    images = _named(hr_images)
    rule = protocol.crop_for(scale)
    need = [smallest_eq_length(v, rule) for v in (scale.h, scale.w)]
    if None in need:
        raise EqbenchError(
            f"EQ_S at scale {scale.label()}: no side up to 4096 pixels has H/r and H*r both integral under "
            f"the {rule} crop rule; choose a scale such as 2.5 or 2.75"
        )
    res = EqsResult(scale, {})
    for name, img in images:
        try:
            res.per_image[name], res.crops[name] = eq_s_image(method, name, img, scale, protocol, device=device)
        except TooSmall as e:
            msg = str(e) if str(e).startswith(f"{name}:") else f"{name}: {e}"
            warnings.warn(f"skipping {msg}", EqbenchWarning, stacklevel=2)
            res.skipped.append(name)
    if not res.per_image:
        raise NoScorableImage(
            f"EQ_S at scale {scale.label()}: all {len(images)} images are too small for an exact crop "
            f"(it needs at least {need[0]}x{need[1]} pixels plus the {shave_for(scale)[1]}-pixel border shave)"
        )
    return res


def eq_s(method, hr_images, scale, *, protocol: str | EvalProtocol = "matlab") -> float:
    """Mean EQ_S (dB, capped at EQ_S_MAX_DB per image) of `method` over uint8 HR images at `scale`.

    Example: a method that ignores its input is exactly equivariant (the degenerate case the module
    docstring warns about; PSNR-Y is reported beside EQ_S for that reason).
        >>> import numpy as np, torch
        >>> from eqbench.method import SRMethod
        >>> class Grey(SRMethod):
        ...     def _upsample(self, lr, out_size):
        ...         return torch.full((lr.shape[0], 3, *out_size), 0.5, dtype=lr.dtype)
        >>> img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        >>> eq_s(Grey(), [img], 2)
        100.0
    """
    return eq_s_details(method, hr_images, scale, protocol=protocol).eq_s


def eq_s_curve(
    method, hr_images, scales: Iterable, *, protocol: str | EvalProtocol = "matlab", device=None
) -> list[EqsResult]:
    images = _named(hr_images)
    return [eq_s_details(method, images, s, protocol=protocol, device=device) for s in scales]
