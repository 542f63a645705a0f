"""Training batch builders (eqbench/data/batches.py): geometry, resize, augmentation, determinism.

The images encode their own pixel positions (R = row, G = column), so every target pixel tells
where in the image it was taken from: the tests check the crop/window/coordinate bookkeeping
exactly, not statistically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eqbench.data import batches
from eqbench.data.resize import imresize


@pytest.fixture(autouse=True)
def one_thread():
    # The builders run single-threaded in the trainer (train.data.single_threaded); tiny tensor ops with
    # intra-op threads on a loaded machine only add waiting.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def position_image(h: int = 240, w: int = 250) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([y, x, (3 * y + 5 * x) % 256], axis=-1).astype(np.uint8)


def textured(h: int = 240, w: int = 250, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return np.array(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def rows_cols(coord: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of the pixel-centre formula c = -1 + (2k + 1) / n."""
    k = (coord + 1) * n / 2 - 0.5
    return k[..., 0].round().long(), k[..., 1].round().long()


@pytest.mark.parametrize("seed", range(5))
def test_liif_targets_are_the_crop_pixels_at_their_coordinates(seed):
    img = position_image()
    s = batches.liif_sample(img, np.random.default_rng(seed), augment=False)
    assert s["lr"].shape == (3, 48, 48) and s["gt"].shape == (2304, 3)
    assert s["coord"].shape == s["cell"].shape == (2304, 2)
    n = int(s["hr_size"][0])
    assert 48 <= n <= 192 and int(s["hr_size"][1]) == n
    assert torch.all(s["cell"] == 2.0 / n)
    assert len(torch.unique(s["index"])) == 2304  # drawn without replacement
    r, c = rows_cols(s["coord"], n)
    assert torch.equal(r * n + c, s["index"])
    # image row/col = crop offset + row/col in crop; the offset must be one constant per sample
    gt = (s["gt"] * 255).round().long()
    dy, dx = gt[:, 0] - r, gt[:, 1] - c
    assert len(torch.unique(dy)) == 1 and len(torch.unique(dx)) == 1
    y0, x0 = int(dy[0]), int(dx[0])
    crop = img[y0:y0 + n, x0:x0 + n]
    assert torch.equal(s["lr"], batches.to_chw(batches.resize_uint8(crop, (48, 48), "pil-bicubic")))


@pytest.mark.parametrize("seed", range(5))
def test_eqsr_window_and_coordinates_in_the_crop_frame(seed):
    img = position_image()
    s = batches.eqsr_sample(img, np.random.default_rng(seed), augment=False)
    n = int(s["hr_size"][0])
    oy, ox = s["offset"].tolist()
    assert s["gt"].shape == (3, 48, 48) and s["coord"].shape == (48, 48, 2)
    assert 0 <= oy <= n - 48 and 0 <= ox <= n - 48
    assert torch.equal(s["coord"], batches.make_coord(n, n)[oy:oy + 48, ox:ox + 48])
    assert torch.all(s["cell"] == 2.0 / n)
    gt = (s["gt"] * 255).round().long()
    # window pixel (i, j) is crop pixel (oy + i, ox + j): constant image offset over the window
    r, c = rows_cols(s["coord"], n)
    assert torch.equal(r, torch.arange(oy, oy + 48)[:, None].expand(48, 48))
    y0 = gt[0] - r
    x0 = gt[1] - c
    assert len(torch.unique(y0)) == 1 and len(torch.unique(x0)) == 1
    crop = img[int(y0[0, 0]):int(y0[0, 0]) + n, int(x0[0, 0]):int(x0[0, 0]) + n]
    assert torch.equal(s["lr"], batches.to_chw(batches.resize_uint8(crop, (48, 48), "pil-bicubic")))


def test_scales_cover_the_range_per_sample():
    img = textured()
    rngs = (np.random.default_rng(i) for i in range(80))
    sizes = [int(batches.liif_sample(img, rng, sample_q=16)["hr_size"][0]) for rng in rngs]
    # s ~ U(1, 4): crops from 48 to 192; 80 draws all above 70 (or all below 170) has p ~ 2e-6
    assert min(sizes) < 70 and max(sizes) > 170
    assert min(sizes) >= 48 and max(sizes) <= 192


@pytest.mark.parametrize("scale", [(2.0, 2.0), (1.5, 3.0), (3.3, 3.3)])
def test_pairs_full_patch_and_lr_from_it(scale):
    img = textured()
    s = batches.pairs_sample(img, np.random.default_rng(1), scale, augment=False)
    H, W = round(50 * scale[0]), round(50 * scale[1])
    assert s["gt"].shape == (3, H, W) and s["lr"].shape == (3, 50, 50)
    crop = (s["gt"].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert torch.equal(s["lr"], batches.to_chw(batches.resize_uint8(crop, (50, 50), "matlab-bicubic")))


def test_pairs_never_transposes_asymmetric_patches():
    img = textured()
    for i in range(40):  # P(no transpose drawn in 40) = 2^-40
        s = batches.pairs_sample(img, np.random.default_rng(i), (1.5, 3.0))
        assert s["gt"].shape == (3, 75, 150)


def _orientation(s, n):
    """(transposed, rows flipped, cols flipped) read off a position-image sample."""
    r, c = rows_cols(s["coord"], n)
    gt = (s["gt"] * 255).round().long()
    for transposed, (a, b) in ((False, (r, c)), (True, (c, r))):
        for fa in (False, True):
            for fb in (False, True):
                ya = gt[:, 0] - ((n - 1 - a) if fa else a)
                xb = gt[:, 1] - ((n - 1 - b) if fb else b)
                if len(torch.unique(ya)) == 1 and len(torch.unique(xb)) == 1:
                    return transposed, fa, fb
    raise AssertionError("targets are not a flipped/transposed crop")


def test_augmentation_flips_and_transposes_targets():
    img = position_image()
    seen = {_orientation(s, int(s["hr_size"][0])) for s in
            (batches.liif_sample(img, np.random.default_rng(i), sample_q=64) for i in range(40))}
    assert len(seen) >= 6  # 8 equally likely orientations; 40 draws miss more than 2 with p < 1e-5


def test_augmentation_moves_lr_with_its_target():
    # Whole-crop sampling at a fixed scale: the target is the whole augmented crop, so the LR must be
    # the resize of that crop.
    img = textured()
    for i in range(12):
        s = batches.liif_sample(img, np.random.default_rng(i), lr_size=24, sample_q=48 * 48,
                                scale_range=(2, 2), resize="matlab-bicubic")
        hr = torch.empty(48 * 48, 3)
        hr[s["index"]] = s["gt"]
        crop = (hr.reshape(48, 48, 3) * 255).round().to(torch.uint8).numpy()
        lr = batches.to_chw(batches.resize_uint8(crop, (24, 24), "matlab-bicubic"))
        # MATLAB bicubic is mirror-symmetric, but a flipped input sums its taps in another order:
        # the 8-bit result may differ by one level.
        assert (lr - s["lr"]).abs().max() <= 1 / 255 + 1e-7


@pytest.mark.parametrize("n", [1, 48, 97, 191, 192])
def test_coordinates_are_the_official_make_coord_bit_for_bit(n):
    # liif:utils.py make_coord: r = (v1 - v0) / (2 n); seq = v0 + r + (2 r) * arange(n).float()
    v0, v1 = -1, 1
    r = (v1 - v0) / (2 * n)
    seq = v0 + r + (2 * r) * torch.arange(n).float()
    assert torch.equal(batches.make_coord(n, 5)[:, 0, 0], seq)
    idx = np.random.default_rng(n).permutation(n * n)[:50]
    assert torch.equal(batches.coord_of(idx, n, n), batches.make_coord(n, n).reshape(-1, 2)[idx])


def test_flip_order_matches_liif():
    # LIIF's wrapper on (C, H, W) tensors: flip(-2), then flip(-1), then transpose(-2, -1).
    x = torch.arange(24.0).reshape(3, 2, 4)
    hwc = x.permute(1, 2, 0).numpy()
    for flips, ref in [((True, False, False), x.flip(-2)), ((False, True, True), x.flip(-1).transpose(-2, -1)),
                       ((True, True, True), x.flip(-2).flip(-1).transpose(-2, -1))]:
        assert torch.equal(batches.to_float(batches.apply_flips(hwc, flips).transpose(2, 0, 1) * 255), ref)


def test_named_resizes():
    img = textured(96, 96)
    pil = batches.resize_uint8(img, (40, 40), "pil-bicubic")
    mat = batches.resize_uint8(img, (40, 40), "matlab-bicubic")
    assert pil.dtype == mat.dtype == np.uint8 and pil.shape == mat.shape == (40, 40, 3)
    ref = imresize(torch.from_numpy(img).permute(2, 0, 1).double(), size=(40, 40), uint8=True)
    assert np.array_equal(mat, ref.permute(1, 2, 0).numpy().astype(np.uint8))
    assert np.array_equal(pil, np.asarray(Image.fromarray(img).resize((40, 40), Image.BICUBIC)))
    # The two kernels differ (PIL's support and rounding are not MATLAB's): the choice matters.
    assert not np.array_equal(pil, mat)
    with pytest.raises(ValueError, match="unknown resize"):
        batches.resize_uint8(img, (40, 40), "lanczos")


def test_same_generator_state_same_sample():
    img = textured()
    for f in (batches.liif_sample, batches.eqsr_sample):
        a, b = f(img, np.random.default_rng([3, 1])), f(img, np.random.default_rng([3, 1]))
        c = f(img, np.random.default_rng([3, 2]))
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not torch.equal(a["gt"], c["gt"])


def test_largest_crop_and_collate():
    from eqbench.train.batch_kinds import batch_kind
    from eqbench.train.recipes import SamplerSpec

    assert batch_kind("points").largest_crop(SamplerSpec("points", lr_size=48, scale_max=4), ()) == (192, 192)
    assert batch_kind("liif") is batch_kind("points")  # the old name still reads
    pairs = SamplerSpec("pairs", lr_size=50)
    assert batch_kind("pairs").largest_crop(pairs, ((1.5, 4.0), (3.0, 2.0))) == (150, 200)
    img = textured()
    samples = [batches.pairs_sample(img, np.random.default_rng(i), (2.0, 2.0)) for i in range(3)]
    b = batches.collate(samples)
    assert b["lr"].shape == (3, 3, 50, 50) and b["gt"].shape == (3, 3, 100, 100)
    assert b["hr_size"].shape == (3, 2)


def test_too_small_image_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the crop"):
        batches.pairs_sample(textured(60, 60), np.random.default_rng(0), (2.0, 2.0))
