"""NearestLookup (baselines/implicit.py) is grid_sample's nearest sampling, bit for bit, with and without autograd."""

from __future__ import annotations

import itertools

import pytest
import torch

import baselines.liif
import eqbench
from baselines.implicit import NearestLookup, coord_seq, lr_centres, sample_nearest


def _coords(B: int, h: int, w: int, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    rand = torch.rand(B, 500, 2, generator=g, dtype=dtype) * 2.4 - 1.2  # some outside the image (zero padding)
    # exactly on pixel borders and centres, and LIIF's clamped extremes: where rounding decides the pixel
    rows = torch.cat([coord_seq(2 * h).to(dtype), torch.tensor([-1 + 1e-6, 1 - 1e-6, -1.0, 1.0], dtype=dtype)])
    cols = torch.cat([coord_seq(2 * w).to(dtype), torch.tensor([1 - 1e-6, -1 + 1e-6, 1.0, -1.0], dtype=dtype)])
    edge = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).view(1, -1, 2).expand(B, -1, 2)
    return torch.cat([rand, edge], dim=1)


@pytest.mark.parametrize("dtype,grad,spare", [(torch.float32, False, 0), (torch.float32, False, 4),
                                              (torch.float64, False, 3), (torch.float32, True, 3)])
def test_equals_grid_sample_nearest(dtype, grad, spare):
    B, C, h, w = 2, 5, 7, 9
    values = torch.randn(B, C, h, w, dtype=dtype, requires_grad=grad)
    coord = _coords(B, h, w, dtype)
    extra = [torch.randn(B, coord.shape[1], k, dtype=dtype) for k in ((1, 2) if spare == 3 else (spare,))]
    with torch.set_grad_enabled(grad):
        lookup = NearestLookup(values, spare=spare)
        handle, centres = lookup.pick(coord)
        plain = lookup.gather(handle).clone()  # without autograd the next gather reuses the buffer
        got = lookup.gather(handle, *extra)
        want = sample_nearest(values, coord)
    assert torch.equal(plain, want)
    assert torch.equal(got, torch.cat([want, *extra], dim=-1))
    assert torch.equal(centres, sample_nearest(lr_centres(h, w, B, None, dtype), coord))
    if grad:
        (g_fast,) = torch.autograd.grad((got[..., :C] * 1.7).sum(), values)
        (g_ref,) = torch.autograd.grad((want * 1.7).sum(), values)
        # the same per-pixel sums of 1.7s, possibly added in another order: float32 rounding only
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-6, atol=1e-5)


class _GridSampleLookup(NearestLookup):
    """The reference path: grid_sample of the whole feature map (what the official code does)."""

    def __init__(self, values, spare=0):
        super().__init__(values, spare)
        B, C, h, w = values.shape
        self.exact, self.values = False, values
        self.centres = lr_centres(h, w, B, values.device, values.dtype)


@pytest.mark.parametrize("opts", [dict(zip(("local_ensemble", "feat_unfold", "cell_decode"), v))
                                  for v in itertools.product([True, False], repeat=3)])
def test_liif_variants_equal_the_grid_sample_path(monkeypatch, opts):
    torch.manual_seed(0)
    model = eqbench.create_method("liif", size="tiny", **opts).eval()
    lr = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        fast = model.upsample(lr, (40, 61), chunk=500)
        monkeypatch.setattr(baselines.liif, "NearestLookup", _GridSampleLookup)
        ref = model.upsample(lr, (40, 61), chunk=500)
    assert torch.equal(fast, ref)


def test_training_forward_equals_the_grid_sample_path(monkeypatch):
    torch.manual_seed(0)
    model = eqbench.create_method("liif", size="tiny")
    lr, coord = torch.rand(2, 3, 10, 12), torch.rand(2, 300, 2) * 2 - 1
    cell = torch.full_like(coord, 0.05)
    fast = model.query_points(lr, coord, cell)
    monkeypatch.setattr(baselines.liif, "NearestLookup", _GridSampleLookup)
    assert torch.equal(fast, model.query_points(lr, coord, cell))
