"""Y conversion, PSNR and SSIM against hand-computed values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from eqbench.metrics import psnr, psnr_rgb, psnr_y, rgb_to_y, shave_border, ssim, ssim_y
from eqbench.metrics.color import to_single_channel
from eqbench.metrics.core import psnr_


def test_y_extremes_and_rounding():
    rgb = torch.tensor([[[0.0]], [[0.0]], [[0.0]]]).expand(3, 1, 2) * 1
    assert rgb_to_y(rgb, rounded=True).flatten().tolist() == [16.0, 16.0]
    white = torch.full((3, 1, 1), 255.0)
    assert rgb_to_y(white, rounded=True).item() == 235.0
    assert rgb_to_y(white, rounded=False).item() == pytest.approx(235.0, abs=1e-12)
    # pure red: 16 + 65.481 = 81.481 -> 81 when rounded
    red = torch.tensor([255.0, 0.0, 0.0]).view(3, 1, 1)
    assert rgb_to_y(red, rounded=False).item() == pytest.approx(81.481, abs=1e-9)
    assert rgb_to_y(red, rounded=True).item() == 81.0


def test_y_rounds_exact_ties_half_away_from_zero():
    # Exact ties: 65481 r + 128553 g + 24966 b = 255000 k + 127500 (Y = 16 + k + 0.5 exactly).
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")
    num = 65481 * r + 128553 * g + 24966 * b
    tie = (num % 255000) == 127500
    n_ties = int(tie.sum())
    assert 150 < n_ties < 250  # protocol.md: about 1 in 86,000 of the 2**24 triples
    rgb = torch.from_numpy(np.stack([r[tie], g[tie], b[tie]]).astype(np.float64)).view(3, 1, -1)
    want = torch.from_numpy(16 + num[tie] // 255000 + 1).double().view(1, -1)
    assert torch.equal(rgb_to_y(rgb, rounded=True), want)


def test_psnr_hand_computed():
    a = torch.zeros(4, 4, dtype=torch.float64)
    b = a.clone()
    b[0, 0] = 16.0  # MSE = 256 / 16 = 16
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 16.0), abs=1e-12)
    assert psnr(a, a) == math.inf


def test_shave_per_axis():
    x = torch.arange(10 * 12, dtype=torch.float64).view(10, 12)
    assert shave_border(x, (2, 4)).shape == (6, 4)
    assert torch.equal(shave_border(x, (0, 0)), x)
    with pytest.raises(ValueError):
        shave_border(x, (5, 0))


@pytest.mark.parametrize("shape", [(32, 40), (11, 11), (50, 23)])
def test_ssim_matches_skimage(shape, rng):
    a = rng.integers(0, 256, shape).astype(np.float64)
    b = np.clip(a + rng.normal(0, 12, shape), 0, 255)
    want = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    got = ssim(torch.from_numpy(a), torch.from_numpy(b))
    # skimage filters with reflection and crops the 5-pixel border of the map: the same 'valid' mean.
    assert got == pytest.approx(want, abs=1e-10)


def test_ssim_identical_is_one(rng):
    a = torch.from_numpy(rng.random((20, 20)) * 255)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_y_metrics_on_rgb_and_greyscale(rng):
    hr = torch.from_numpy(rng.integers(0, 256, (3, 24, 24)).astype(np.float64))
    sr = (hr + torch.from_numpy(rng.integers(-3, 4, (3, 24, 24)).astype(np.float64))).clamp(0, 255)
    y_hr, y_sr = rgb_to_y(hr, rounded=True), rgb_to_y(sr, rounded=True)
    assert psnr_y(sr, hr, shave=(2, 2)) == psnr(y_sr[2:-2, 2:-2], y_hr[2:-2, 2:-2])
    assert ssim_y(sr, hr, shave=(2, 3)) == ssim(y_sr[2:-2, 3:-3], y_hr[2:-2, 3:-3])
    # a single channel is used as Y directly (protocol.md: greyscale HR images)
    g_hr, g_sr = hr[:1], sr[:1]
    assert psnr_y(g_sr, g_hr) == psnr(g_sr[0], g_hr[0])
    assert psnr_rgb(sr, hr) == psnr(sr, hr)


def test_single_channel_collapse_is_identity_on_grey():
    g = torch.rand(1, 5, 5, dtype=torch.float64)
    assert torch.allclose(to_single_channel(g.expand(3, 5, 5)), g[0], atol=1e-15)


@pytest.mark.parametrize("shave", [(0, 0), (2, 3), (4, 0), (0, 1)])
def test_inplace_psnr_matches_psnr_of_shaved_views(shave, rng):
    hr = torch.from_numpy(rng.integers(0, 256, (3, 20, 26)).astype(np.float64))
    sr = torch.from_numpy(rng.integers(0, 256, (3, 20, 26)).astype(np.float64))
    want = psnr(shave_border(sr, shave), shave_border(hr, shave))
    # Same squares, summed by one dot instead of a mean: equal to float64 summation order.
    assert psnr_(sr.clone(), hr, shave=shave) == pytest.approx(want, abs=1e-10)
    # A non-contiguous `a` takes the strided path.
    assert psnr_(sr.clone().transpose(1, 2), hr.transpose(1, 2), shave=shave[::-1]) == pytest.approx(want, abs=1e-10)


def test_score_overwrite_changes_nothing_but_its_input(rng):
    from eqbench.data.pairs import make_pair
    from eqbench.protocol import get_protocol
    from eqbench.scales import parse_scale
    from eqbench.scoring import score

    img = rng.integers(0, 256, (40, 44, 3)).astype(np.uint8)
    for name in ("basicsr", "matlab"):
        pair = make_pair("x", img, parse_scale(2), get_protocol(name))
        sr01 = torch.from_numpy(rng.random((3, 40, 44)))
        kept = sr01.clone()
        assert score(sr01, pair, get_protocol(name)) == score(sr01.clone(), pair, get_protocol(name), overwrite=True)
        assert torch.equal(sr01, kept)


def test_bicubic_clamps_its_own_output_in_place_only(rng):
    from eqbench.method import create_method

    lr = torch.from_numpy((rng.random((1, 3, 9, 10)) > 0.5).astype(np.float64))  # overshoots when upscaled
    kept = lr.clone()
    for uint8 in (False, None):
        with torch.inference_mode():
            sr = create_method("bicubic", uint8=uint8).upsample(lr, (18, 20))
        assert float(sr.min()) == 0.0 and float(sr.max()) == 1.0
        assert torch.equal(lr, kept)
