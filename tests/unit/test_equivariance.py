"""EQ_S: exact-size crops, toy operators with known values, an independent bicubic path, Set5."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eqbench import create_method
from eqbench.analysis.equivariance import EQ_S_MAX_DB, eq_crop, eq_s, eq_s_details
from eqbench.data.resize import imresize
from eqbench.errors import EqbenchError, EqbenchWarning
from eqbench.method import SRMethod
from eqbench.protocol import get_protocol
from eqbench.run.evaluate import evaluate_images
from eqbench.scales import Scale, parse_scale

MATLAB = get_protocol("matlab")


def _image(h: int, w: int, seed: int, grey: bool = False) -> np.ndarray:
    # Smooth random content (upsampled noise), so bicubic values are in a realistic range.
    g = np.random.default_rng(seed).integers(0, 256, size=(h // 4 + 2, w // 4 + 2, 1 if grey else 3))
    img = Image.fromarray(g.astype(np.uint8).squeeze()).resize((w, h), Image.BILINEAR)
    return np.asarray(img)


IMAGES = [("a", _image(60, 72, 0)), ("b", _image(64, 50, 1)), ("c", _image(70, 70, 2))]


class ConstantGrey(SRMethod):
    """Ignores its input: an exactly equivariant (and useless) operator."""

    def _upsample(self, lr, out_size):
        return torch.full((lr.shape[0], 3, *out_size), 128 / 255, dtype=lr.dtype, device=lr.device)


class SizeDependentGrey(SRMethod):
    """Grey level 100 for inputs shorter than 50 pixels, 110 otherwise: breaks equivariance by a known
    amount, since phi(f(x)) sees the small input and f(phi(x)) the large one."""

    def _upsample(self, lr, out_size):
        level = 100 if lr.shape[-2] < 50 else 110
        return torch.full((lr.shape[0], 3, *out_size), level / 255, dtype=lr.dtype, device=lr.device)


def _y_rounded(v: float) -> float:
    # MATLAB rgb2ycbcr of a grey uint8 triple (protocol.md): 16 + (65.481 + 128.553 + 24.966) v / 255, rounded
    return math.floor(16.0 + (65.481 + 128.553 + 24.966) * v / 255.0 + 0.5)


@pytest.mark.parametrize(
    "hw, s, crop, up",
    [
        ((61, 75), 2, (60, 74), (120, 148)),  # integer: modcrop
        ((288, 300), 2.5, (280, 300), (700, 750)),  # ArbSR step 2: H/2.5 and 2.5 H integral -> multiple of 10
        ((300, 300), 2.75, (220, 220), (605, 605)),  # step 20 for 2.75 -> multiples of 220
        ((100, 100), "2x3", (100, 99), (200, 297)),  # asymmetric: per axis
    ],
)
def test_crop_makes_both_sides_exactly_scale_r(hw, s, crop, up):
    scale = parse_scale(s)
    assert eq_crop(hw, scale, MATLAB) == (crop, up)
    for H, U, r in ((crop[0], up[0], scale.h), (crop[1], up[1], scale.w)):
        assert H / r == round(H / r) and H * r == U


def test_exactly_equivariant_operator_gets_the_cap_and_a_poor_psnr():
    res = eq_s_details(ConstantGrey(), IMAGES, 2)
    assert [v["eq-s"] for v in res.per_image.values()] == [EQ_S_MAX_DB] * 3
    assert res.eq_s == EQ_S_MAX_DB
    assert res.psnr_y < 25  # the degenerate case: "perfectly equivariant", useless as SR


@pytest.mark.parametrize("scale", [2, 3, 2.5])
def test_known_equivariance_break_gives_the_expected_value(scale):
    # left side: level 100 everywhere; right side: f(constant 110) = 110 exactly (normalised weights,
    # 8-bit rounding of an integer). Y differs by a constant, so PSNR = 20 log10(255 / |dY|).
    want = 20 * math.log10(255.0 / abs(_y_rounded(110) - _y_rounded(100)))
    res = eq_s_details(SizeDependentGrey(), IMAGES, scale)
    assert len(res.per_image) == 3
    for v in res.per_image.values():
        assert v["eq-s"] == pytest.approx(want, abs=1e-9)  # float64 rounding in the PSNR only


@pytest.mark.parametrize("s", [2, 2.5])
def test_bicubic_matches_an_independent_two_path_computation(s):
    name, img = IMAGES[2]
    scale = parse_scale(s)
    (H, W), (UH, UW) = eq_crop(img.shape[:2], scale, MATLAB)
    x = torch.from_numpy(img[:H, :W].astype(np.float64)).permute(2, 0, 1)
    down = {"scale": 1 / s} if scale.integer else {"size": (round(H / s), round(W / s))}
    left = imresize(imresize(x, **down, uint8=True), size=(H, W), uint8=True)  # phi(f(x))
    up = imresize(x, size=(UH, UW), uint8=True)
    right = imresize(up, **({"scale": 1 / s} if scale.integer else {"size": (H, W)}), uint8=True)  # f(phi(x))

    def y(t):
        c = [k / 255.0 for k in (65.481, 128.553, 24.966)]
        v = torch.floor(c[0] * t[0] + c[1] * t[1] + c[2] * t[2] + 16.0 + 0.5)
        b = math.ceil(s)
        return v[b:-b, b:-b]

    mse = torch.mean((y(left) - y(right)) ** 2).item()
    want = 10 * math.log10(255.0**2 / mse)
    got = eq_s_details(create_method("bicubic"), [(name, img)], s).per_image[name]["eq-s"]
    assert got == pytest.approx(want, abs=1e-9)  # same arithmetic, different wiring: float64 noise only


@pytest.mark.parametrize("protocol", ["matlab", "classic-y"])
def test_psnr_y_equals_the_evaluation_at_integer_scales(protocol):
    bic, p = create_method("bicubic"), get_protocol(protocol)
    imgs = [*IMAGES, ("grey", _image(48, 52, 3, grey=True))]
    res = eq_s_details(bic, imgs, 3, protocol=p)
    cell = evaluate_images(bic, imgs, Scale(3.0, 3.0), p)
    for name in cell.per_image:
        # the EQ_S crop for integer r is the modcrop: the same pair, the same score, bit for bit
        assert res.per_image[name]["psnr-y"] == cell.per_image[name]["psnr-y"]
        assert 10 < res.per_image[name]["eq-s"] < EQ_S_MAX_DB


def test_api_mean_and_input_checks():
    bic = create_method("bicubic")
    arrays = [img for _, img in IMAGES]
    res = eq_s_details(bic, arrays, 2)
    assert eq_s(bic, arrays, 2) == pytest.approx(np.mean([v["eq-s"] for v in res.per_image.values()]), abs=0)
    with pytest.raises(EqbenchError, match="uint8"):
        eq_s(bic, [arrays[0].astype(np.float32)], 2)
    with pytest.raises(EqbenchError, match="no side up to 4096"):
        eq_s(bic, arrays, 2.37)


def test_too_small_images_are_skipped_with_a_warning():
    imgs = [*IMAGES, ("tiny", _image(30, 30, 4))]
    with pytest.warns(EqbenchWarning, match="tiny"):
        res = eq_s_details(create_method("bicubic"), imgs, 1.6)  # needs multiples of 40
    assert res.skipped == ["tiny"] and len(res.per_image) == 3


def _make_set5(root: Path) -> None:
    (root / "Set5").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(_image(48 + 4 * i, 56, 10 + i)).save(root / "Set5" / f"img{i}.png")


def test_cli_writes_rows_next_to_an_evaluation(tmp_path):
    from eqbench.cli import main

    _make_set5(tmp_path / "data")
    out = tmp_path / "out"
    common = ["--datasets", "Set5", "--data-root", str(tmp_path / "data"), "--out", str(out)]
    assert main(["run", "--methods", "bicubic", "--scales", "2", *common]) == 0
    assert main(["analyze", "equivariance", "--methods", "bicubic", "--scales", "2", "2.5", *common]) == 0
    doc = json.loads((out / "results.json").read_text())
    kinds = {(r["kind"], r["metric"], r["scale"][0]) for r in doc["rows"]}
    assert {
        ("equivariance", "eq-s", 2.0),
        ("equivariance-ref", "psnr-y", 2.0),
        ("equivariance", "eq-s", 2.5),
    } <= kinds
    ev = next(r for r in doc["rows"] if r["kind"] == "eval" and r["metric"] == "psnr-y")
    ref = next(r for r in doc["rows"] if r["kind"] == "equivariance-ref" and r["scale"][0] == 2.0)
    assert ref["images"] == ev["images"]  # the EQ_S reference PSNR-Y is the evaluation's number
    assert (out / "figures/eq_s_Set5.png").is_file() and (out / "figures/eq_s_Set5.svg").is_file()
    # running again replaces the rows instead of duplicating them
    assert main(["analyze", "equivariance", "--methods", "bicubic", "--scales", "2", *common]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert sum(r["kind"] == "equivariance" and r["scale"][0] == 2.0 for r in doc["rows"]) == 1


def test_eq_crop_takes_the_centre(tmp_path, capsys):
    from eqbench.cli import main
    from eqbench.run.analyses import centre_crop

    img = np.arange(7 * 10).reshape(7, 10)
    assert np.array_equal(centre_crop(img, 4), img[1:5, 3:7])
    assert np.array_equal(centre_crop(img, 8), img[:, 1:9]) and centre_crop(img, None) is img
    _make_set5(tmp_path / "data")
    common = ["--datasets", "Set5", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    args = ["analyze", "equivariance", "--methods", "bicubic", "--scales", "2"]
    assert main([*args, "--eq-crop", "20", *common]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    rows = [r for r in doc["rows"] if r["kind"] == "equivariance"]
    assert rows and all(max(c) <= 20 for r in rows for c in r["crops"].values())
    assert main(["analyze", "equivariance", "--methods", "bicubic", "--eq-crop", "0", *common]) == 2
    assert "--eq-crop must be at least 8" in capsys.readouterr().err


def test_cli_unknown_method_is_one_line_error(tmp_path, capsys):
    from eqbench.cli import main

    assert main(["analyze", "equivariance", "--methods", "bicubc", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'bicubic'" in err[0]


@pytest.mark.reference
@pytest.mark.slow  # ~25 s CPU: phi(x) at x4 makes 2048x2048 images from Set5's 512x512
def test_bicubic_set5_x2_x3_x4(load_set):
    imgs = load_set("Set5")  # conftest: skips with a reason when the benchmark images are absent
    bic = create_method("bicubic")
    # protocol.md's MATLAB RGB bicubic reference (uint8 path, matched within its 0.002 dB): shows the
    # EQ_S crop equals the evaluation crop, so EQ_S sits next to the published PSNR-Y.
    for s, psnr_ref in ((2, 33.6404), (3, 30.3850), (4, 28.4164)):
        res = eq_s_details(bic, imgs, s)
        assert len(res.per_image) == 5
        assert res.psnr_y == pytest.approx(psnr_ref, abs=0.002)
        assert all(math.isfinite(v["eq-s"]) and v["eq-s"] < EQ_S_MAX_DB for v in res.per_image.values())
        print(f"Set5 x{s}: EQ_S {res.eq_s:.4f} dB, PSNR-Y {res.psnr_y:.4f} dB")
