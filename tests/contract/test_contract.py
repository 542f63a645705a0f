"""The method contract, for every registered method (tiny presets, CPU)."""

from __future__ import annotations

import math

import pytest
import torch

import eqbench
from eqbench.errors import EqbenchError

METHODS = eqbench.list_methods()


@pytest.fixture(scope="module", params=METHODS)
def method(request):
    torch.manual_seed(0)
    return eqbench.create_method(request.param, size="tiny").eval()


@pytest.mark.parametrize("scale", [1.0, 1.5, 2.0, 3.7, (1.5, 4.0)], ids=str)
def test_output_size_and_range(method, scale):
    sh, sw = (scale, scale) if isinstance(scale, float) else scale
    lr = torch.rand(2, 3, 10, 14, dtype=method.eval_dtype)
    out_size = (round(10 * sh), round(14 * sw))
    with torch.no_grad():
        sr = method.upsample(lr, out_size)
    assert sr.shape == (2, 3, *out_size)
    assert sr.dtype == lr.dtype and float(sr.min()) >= 0 and float(sr.max()) <= 1
    assert torch.isfinite(sr).all()


def test_deterministic(method):
    lr = torch.rand(1, 3, 12, 9, dtype=method.eval_dtype)
    with torch.no_grad():
        assert torch.equal(method.upsample(lr, (29, 20)), method.upsample(lr, (29, 20)))


def test_batch_independent(method):
    lr = torch.rand(2, 3, 8, 8, dtype=method.eval_dtype)
    with torch.no_grad():
        both = method.upsample(lr, (16, 16))
        one = method.upsample(lr[1:], (16, 16))
    assert torch.allclose(both[1:], one, atol=1e-5)  # batched vs single: only float summation order differs


def test_feature_taps_resolve(method):
    assert isinstance(method.feature_taps, tuple)
    for path in method.feature_taps:
        method.get_submodule(path)
    if sum(p.numel() for p in method.parameters()) > 0:
        assert len(method.feature_taps) >= 3


def test_runs_on_cpu(method):
    assert method.device.type == "cpu"


@pytest.mark.parametrize("bad,match", [
    ((8, 8), "smaller than the input"), ((0, 20), "positive"), ((-4, 20), "positive"),
    ((math.nan, 20), "finite"), ((20.5, 20), "integers"), ((20,), "pair"), ("20x20", "pair"),
])
def test_bad_out_size(method, bad, match):
    lr = torch.rand(1, 3, 10, 10, dtype=method.eval_dtype)
    with pytest.raises(EqbenchError, match=match):
        method.upsample(lr, bad)


@pytest.mark.parametrize("lr,match", [
    (torch.rand(3, 10, 10), "shape"), (torch.rand(1, 1, 10, 10), "shape"),
    (torch.randint(0, 255, (1, 3, 10, 10), dtype=torch.uint8), "float"), (None, "torch.Tensor"),
])
def test_bad_input_tensor(method, lr, match):
    with pytest.raises(EqbenchError, match=match):
        method.upsample(lr, (20, 20))


def test_unknown_method_suggests():
    with pytest.raises(EqbenchError, match="did you mean 'liif'"):
        eqbench.create_method("liff")
