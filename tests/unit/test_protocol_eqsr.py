"""The `eqsr` protocol: EQSR's test files (BasicSR on uint8, unrounded Y, fixed crop_border).

The scoring is checked against an independent numpy transcription of BasicSR's calculate_psnr
(uint8 images, `16 + (65.481 R + 128.553 G + 24.966 B) / 255`, crop_border, float64 MSE), not against
numbers this code produced.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eqbench.data.pairs import crop_sizes, make_pair
from eqbench.method import create_method
from eqbench.protocol import get_protocol
from eqbench.run.evaluate import evaluate_images
from eqbench.scales import Scale, parse_scale


def _basicsr_psnr_y(sr_u8: np.ndarray, hr_u8: np.ndarray, border: int) -> float:
    def y(a):
        a = a.astype(np.float64)
        return 16.0 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0

    d = (y(sr_u8) - y(hr_u8))[border:-border, border:-border]
    return float(10 * np.log10(255.0**2 / np.mean(d**2)))


@pytest.mark.parametrize("scale,border,crop,degrade", [
    ("2", 4, "modcrop", "matlab-rgb-uint8"), ("3", 4, "modcrop", "matlab-rgb-uint8"),
    ("4", 4, "modcrop", "matlab-rgb-uint8"), ("6", 6, "liif", "pil-bicubic"), ("8", 10, "liif", "pil-bicubic"),
    ("5.75", 4, "liif", "pil-bicubic"), ("2.75", 4, "liif", "pil-bicubic"),
])
def test_eqsr_rules_per_scale(scale, border, crop, degrade):
    p, s = get_protocol("eqsr"), parse_scale(scale)
    assert p.id == "eqsr@1"
    assert p.shave_for(s) == (border, border)
    assert (p.crop_for(s), p.degrade_for(s)) == (crop, degrade)
    assert "EQSR" in p.in_words() and "10 at x8" in p.in_words()


def test_other_protocols_keep_ceil_scale_shave():
    for name in ("matlab", "classic-y", "arbsr", "basicsr", "liif"):
        p = get_protocol(name)
        assert p.shave_for(Scale(2.5, 2.5)) == (3, 3) and p.shave_for(Scale(1.5, 4)) == (2, 4)
        assert p.degrade_for(Scale(6, 6)) == p.degrade and p.crop_for(Scale(6, 6)) == p.crop_integer


@pytest.mark.parametrize("scale,border", [("2", 4), ("3", 4), ("4", 4), ("6", 6)])
def test_eqsr_score_matches_basicsr_transcription(scale, border):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (13, 11, 3)).astype(np.uint8)
    img = np.asarray(torch.nn.functional.interpolate(torch.tensor(base).permute(2, 0, 1)[None].double(),
                                                     size=(101, 97), mode="bilinear")[0].permute(1, 2, 0)
                     .round().clamp(0, 255).to(torch.uint8))
    p, s = get_protocol("eqsr"), parse_scale(scale)
    bic = create_method("bicubic")
    got = evaluate_images(bic, [("a", img)], s, p).per_image["a"]["psnr-y"]
    pair = make_pair("a", img, s, p)
    sr = bic.upsample(pair.lr.unsqueeze(0).to(bic.eval_dtype), pair.out_size)[0].double().clamp(0, 1)
    sr_u8 = torch.floor(sr * 255 + 0.5).permute(1, 2, 0).numpy().astype(np.uint8)
    (H, W), _ = crop_sizes(img.shape[:2], s, p)
    assert abs(got - _basicsr_psnr_y(sr_u8, img[:H, :W], border)) < 1e-9


def test_eqsr_x4_equals_arbsr_and_x6_lr_is_liif():
    # x4: the same LR, quantisation and Y as `arbsr`, and border 4 == ceil(4): identical scores.
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (64, 72, 3)).astype(np.uint8)
    bic = create_method("bicubic")
    a = evaluate_images(bic, [("a", img)], Scale(4, 4), get_protocol("arbsr")).per_image["a"]
    e = evaluate_images(bic, [("a", img)], Scale(4, 4), get_protocol("eqsr")).per_image["a"]
    assert a == e
    # x6: EQSR's DSF_val_downsample_Dataset, i.e. the LIIF-style LR.
    lr_e = make_pair("a", img, Scale(6, 6), get_protocol("eqsr")).lr
    lr_l = make_pair("a", img, Scale(6, 6), get_protocol("liif")).lr
    assert torch.equal(lr_e, lr_l)
