"""The compiled kernels (eqbench/native.py) against the torch code they replace, and their fallbacks."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from eqbench import native
from eqbench.data.resize import imresize
from eqbench.errors import NonFiniteOutput, check_finite
from eqbench.metrics import ssim


@pytest.fixture
def torch_path(monkeypatch):
    """Run the body with the kernels switched off (EQBENCH_NATIVE=0), then restore them."""

    def off():
        monkeypatch.setenv("EQBENCH_NATIVE", "0")
        native.lib.cache_clear()

    yield off
    monkeypatch.delenv("EQBENCH_NATIVE", raising=False)
    native.lib.cache_clear()


needs_native = pytest.mark.skipif(not native.available(), reason="no working C compiler: the torch path is used")


def test_switch_off_and_broken_compiler_fall_back(monkeypatch, tmp_path):
    monkeypatch.setenv("EQBENCH_NATIVE", "0")
    native.lib.cache_clear()
    assert native.lib() is None
    monkeypatch.delenv("EQBENCH_NATIVE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing built yet there
    for cc in ("false", str(tmp_path / "no-such-compiler")):
        monkeypatch.setenv("CC", cc)
        native.lib.cache_clear()
        assert native.lib() is None  # no exception: callers use the torch code
    assert not any(tmp_path.rglob("*.so"))
    native.lib.cache_clear()


@needs_native
@pytest.mark.parametrize("shape", [(11, 11), (12, 19), (37, 64), (3, 61, 83), (2, 200, 131)])
def test_ssim_kernel_equals_torch_path(shape, rng, torch_path):
    a = torch.from_numpy(rng.integers(0, 256, shape).astype(np.float64))
    b = (a + torch.from_numpy(rng.normal(0, 9, shape))).clamp(0, 255)
    views = [(a, b)]
    if min(shape[-2:]) > 12:  # strided rows, odd offsets: the shaved views the scorer passes
        views.append((a[..., 1:-1, 2:-1], b[..., 1:-1, 2:-1]))
    fast = [ssim(x, y) for x, y in views]
    torch_path()
    slow = [ssim(x, y) for x, y in views]
    for f, s in zip(fast, slow):
        assert f == pytest.approx(s, abs=1e-13)
    if len(shape) == 2:
        want = structural_similarity(a.numpy(), b.numpy(), data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
        assert fast[0] == pytest.approx(want, abs=1e-10)


@needs_native
@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 2, 3, 4, 2.7, (0.5, 0.37), (1.5, 4), (4, 1.5)])
def test_resize_kernel_equals_torch_path(scale, rng, torch_path):
    x = torch.from_numpy(rng.integers(0, 256, (3, 57, 71)).astype(np.float64))
    fast = [imresize(x, scale), imresize(x, scale, uint8=True), imresize(x[1], scale)]
    torch_path()
    slow = [imresize(x, scale), imresize(x, scale, uint8=True), imresize(x[1], scale)]
    for f, s in zip(fast, slow):
        assert f.shape == s.shape and f.dtype == s.dtype
    assert (fast[0] - slow[0]).abs().max().item() < 1e-9
    assert (fast[2] - slow[2]).abs().max().item() < 1e-9
    # 8-bit: equal but for exact .5 ties that float noise may round either way (none expected here)
    d = (fast[1] - slow[1]).abs()
    assert d.max().item() <= 1 and (d > 0).float().mean().item() < 1e-3


@needs_native
def test_kernels_read_views_and_leave_inputs_alone(rng):
    x = torch.from_numpy(rng.random((3, 40, 50)) * 255)
    keep = x.clone()
    view = x.transpose(-1, -2)  # not contiguous: copied for the kernel
    got = imresize(view, 0.5)
    assert torch.equal(x, keep)
    assert torch.allclose(got, imresize(view.contiguous(), 0.5), atol=0, rtol=0)


def test_check_finite_catches_nan_and_inf_but_not_overflowing_sums():
    check_finite(torch.full((4, 4), 1e308, dtype=torch.float64), "big")  # the sum overflows; values finite
    check_finite(torch.zeros(3, dtype=torch.float32), "zeros")
    for bad, kind in ((math.nan, "NaN"), (math.inf, "Inf"), (-math.inf, "Inf")):
        t = torch.ones(3, 8, 8)
        t[1, 2, 3] = bad
        with pytest.raises(NonFiniteOutput, match=kind):
            check_finite(t, "x")


@needs_native
@pytest.mark.parametrize("protocol", ["matlab", "basicsr", "liif", "arbsr", "eqsr"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_score_equals_torch_path(protocol, dtype, rng, torch_path):
    from eqbench.data.pairs import make_pair
    from eqbench.method import create_method
    from eqbench.protocol import get_protocol
    from eqbench.scales import parse_scale
    from eqbench.scoring import score

    proto = get_protocol(protocol)
    img = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    cases = []
    for s in ("2", "3", "2.5", "1.5x4"):
        try:
            pair = make_pair("rand", img, parse_scale(s), proto)
        except ValueError:  # a crop rule that needs an integer scale
            continue
        sr = create_method("bicubic").upsample(pair.lr.unsqueeze(0).to(dtype), pair.out_size)[0]
        sr = sr + torch.from_numpy(rng.normal(0, 0.02, sr.shape)).to(dtype)  # values outside [0, 1] too
        cases.append((pair, sr))
    assert cases
    fast = [score(sr.clone(), pair, proto) for pair, sr in cases]
    torch_path()
    slow = [score(sr.clone(), pair, proto) for pair, sr in cases]
    for f, s in zip(fast, slow):
        assert f.keys() == s.keys()
        for k in f:
            assert f[k] == pytest.approx(s[k], abs=1e-12), k


@needs_native
@pytest.mark.parametrize("shape", [(1, 64, 8, 37, 53), (2, 16, 2, 5, 7), (1, 8, 1, 3, 4)])
def test_involution_kernel_is_bit_identical_to_torch_path(shape, torch_path):
    from baselines.eqsr_kriging import involution

    b, c, g, h, w = shape
    gen = torch.Generator().manual_seed(0)
    u, k = torch.randn(b, c, h, w, generator=gen), torch.randn(b, g, 3, 3, h, w, generator=gen)
    d = torch.rand(b, 1, 3, 3, h, w, generator=gen)
    with torch.inference_mode():
        fast = [involution(u, k, d), involution(u, k)]
    torch_path()
    with torch.inference_mode():
        slow = [involution(u, k, d), involution(u, k)]
    # bit-identical where torch's addcmul_ is a fused multiply-add (x86-64 with FMA, the CI machine)
    for f, s in zip(fast, slow):
        assert torch.allclose(f, s, rtol=0, atol=1e-5)
    if "fma" in native._cpu_flags().split():
        assert all(torch.equal(f, s) for f, s in zip(fast, slow))


def test_kernels_never_get_fake_or_meta_tensors():
    # A FakeTensor (FLOP counting, tracing) reports device "cpu" but has no memory: handing its address to
    # C would crash the process. The callers must take the torch code for it.
    from torch._subclasses.fake_tensor import FakeTensorMode

    from baselines.eqsr_kriging import involution

    assert native.plain_cpu(torch.zeros(1), None) and not native.plain_cpu(torch.zeros(1, device="meta"))
    with FakeTensorMode():
        u, k, d = torch.rand(1, 16, 5, 6), torch.rand(1, 2, 3, 3, 5, 6), torch.rand(1, 1, 3, 3, 5, 6)
        assert not native.plain_cpu(u)
        out = involution(u, k, d)
    assert type(out).__name__ == "FakeTensor" and out.shape == (1, 16, 5, 6)


def test_fused_linear_gelu_equals_two_steps_and_keeps_its_flops():
    from torch import nn

    from baselines.eqsr_kriging import _fused_linear_ok, linear_gelu_nhwc, linear_nhwc
    from eqbench.costs import _ACTIVE

    conv = nn.Conv2d(48, 96, 1)
    x = torch.randn(2, 9, 11, 48, generator=torch.Generator().manual_seed(0)) * 3
    with torch.inference_mode():
        got = linear_gelu_nhwc(x, conv)
        want = torch.nn.functional.gelu(linear_nhwc(x, conv))
    assert torch.allclose(got, want, rtol=0, atol=1e-6)
    if _fused_linear_ok(x, conv):  # oneDNN present: the fused op ran; its FLOPs are declared
        assert torch.equal(got, want)
        _ACTIVE.append(Counter())
        try:
            with torch.inference_mode():
                linear_gelu_nhwc(x, conv)
            assert sum(_ACTIVE[-1].values()) == 2 * 2 * 9 * 11 * 96 * 48
        finally:
            _ACTIVE.pop()
    x.requires_grad_(True)  # training: the differentiable two-step path
    linear_gelu_nhwc(x, conv).sum().backward()
    assert x.grad is not None
