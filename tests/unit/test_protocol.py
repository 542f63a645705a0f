"""Protocol presets, crop rules, scale parsing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eqbench.data.pairs import arbsr_step, crop_sizes, make_pair, shave_for
from eqbench.errors import EqbenchError
from eqbench.protocol import PROTOCOLS, get_protocol
from eqbench.scales import Scale, parse_scale


def test_presets_are_frozen_and_versioned():
    p = get_protocol("matlab")
    assert p.id == "matlab@1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.round_y = False  # type: ignore[misc]
    assert set(PROTOCOLS) >= {"matlab", "classic-y", "arbsr", "liif"}
    assert get_protocol("liif@1").name == "liif"


def test_unknown_protocol_suggests():
    with pytest.raises(EqbenchError, match="did you mean 'matlab'"):
        get_protocol("matlb")
    with pytest.raises(EqbenchError, match="not available"):
        get_protocol("matlab@7")


@pytest.mark.parametrize("text,want", [("2", (2, 2)), ("2.75", (2.75, 2.75)), ("1.5x4", (1.5, 4.0)),
                                       ("x3", (3, 3)), ("1.5X4", (1.5, 4.0)), (3, (3, 3)), ((1.5, 4), (1.5, 4))])
def test_parse_scale(text, want):
    s = parse_scale(text)
    assert (s.h, s.w) == want


@pytest.mark.parametrize("bad", ["0", "-2", "0.5", "nan", "inf", "abc", "2x", "1x2x3", "", "0.9x2"])
def test_parse_scale_rejects(bad):
    with pytest.raises(EqbenchError):
        parse_scale(bad)


def test_arbsr_steps():
    assert arbsr_step(2.0) == 1
    assert arbsr_step(1.5) == 2
    assert arbsr_step(1.6) == 5
    assert arbsr_step(2.75) == 20
    assert arbsr_step(1.55) == 20
    assert arbsr_step(1.33) is None


def test_crop_rules():
    m, li = get_protocol("matlab"), get_protocol("liif")
    assert crop_sizes((511, 257), Scale(2, 2), m) == ((510, 256), (255, 128))
    # ArbSR rule: x1.6, step 5: h = floor(288/5/1.6)*5 = 180, H = round(180*1.6) = 288
    assert crop_sizes((288, 289), Scale(1.6, 1.6), m) == ((288, 288), (180, 180))
    # LIIF rule: h = floor(H/s + 1e-9), H <- round(h*s)
    assert crop_sizes((289, 289), Scale(1.6, 1.6), li) == ((288, 288), (180, 180))
    assert crop_sizes((100, 100), Scale(3, 3), li) == ((99, 99), (33, 33))


def test_asymmetric_pair_sizes_and_shave():
    img = np.random.default_rng(0).integers(0, 256, (101, 97, 3), dtype=np.uint8)
    pair = make_pair("x", img, parse_scale("1.5x4"), get_protocol("matlab"))
    (H, W), (h, w) = crop_sizes((101, 97), Scale(1.5, 4.0), get_protocol("matlab"))
    assert pair.out_size == (H, W) and tuple(pair.lr.shape[-2:]) == (h, w)
    assert H == round(h * 1.5) and W == w * 4
    assert shave_for(Scale(1.5, 4.0)) == (2, 4)
    assert shave_for(Scale(2.75, 2.75)) == (3, 3)


def test_greyscale_pairs_stay_single_channel():
    img = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    pair = make_pair("g", img, Scale(2, 2), get_protocol("matlab"))
    assert pair.single_channel and pair.hr.shape == (1, 40, 40)
    assert pair.lr.shape == (3, 20, 20) and bool((pair.lr[0] == pair.lr[1]).all())


def test_matlab_lr_is_8bit_and_liif_lr_is_pil():
    img = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    for name in ("matlab", "liif", "basicsr", "arbsr"):
        lr = make_pair("x", img, Scale(2, 2), get_protocol(name)).lr * 255
        assert float((lr - lr.round()).abs().max()) < 1e-9, name
    y = make_pair("x", img, Scale(3, 3), get_protocol("classic-y")).lr * 255
    assert float((y - y.round()).abs().max()) > 1e-3  # classic-y LR stays in double
