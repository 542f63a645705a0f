"""Winograd F(4x4, 3x3) convolutions (eqbench/fastconv.py): values against a float64 convolution, when the
fast path applies and when it must not, the weight cache, FLOP counting, and whole networks on both paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import eqbench
from eqbench import fastconv, native
from eqbench.fastconv import Conv3x3, applies, conv3x3

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: the direct path only")


def _case(n, c, co, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    wt = torch.randn(co, c, 3, 3, generator=g) * (2 / (9 * c)) ** 0.5
    return x, wt, torch.randn(co, generator=g)


def _reference(x, wt, b, relu=False):
    y = F.conv2d(x.double(), wt.double(), None if b is None else b.double(), padding=1)
    return F.relu(y) if relu else y


@pytest.mark.parametrize("n,c,co,h,w", [(1, 64, 64, 32, 32), (2, 24, 17, 13, 9), (1, 16, 16, 1, 1),
                                        (1, 16, 40, 5, 4), (1, 200, 64, 7, 30), (1, 33, 31, 17, 3)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_float64_convolution(n, c, co, h, w, relu, bias):
    x, wt, b = _case(n, c, co, h, w)
    b = b if bias else None
    with torch.no_grad():
        assert applies(x, wt, b)
        y = conv3x3(x, wt, b, relu=relu)
    ref = _reference(x, wt, b, relu)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    # float32 Winograd: measured <= 7e-6 of the output's magnitude; a wrong tap or tile edge is O(1)
    assert (y.double() - ref).abs().max().item() <= 2e-5 * ref.abs().max().item()
    if relu:
        assert (y >= 0).all()


def test_bands_and_threads(monkeypatch):
    """Many bands of one tile row, transforms split over 2 threads: the same values as one band."""
    x, wt, b = _case(2, 32, 48, 23, 21)
    with torch.no_grad():
        whole = conv3x3(x, wt, b)
        monkeypatch.setattr(fastconv, "BAND_BYTES", 1)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            banded = conv3x3(x, wt, b)
        finally:
            torch.set_num_threads(threads)
    assert (banded - whole).abs().max().item() <= 1e-5 * whole.abs().max().item()
    assert (banded.double() - _reference(x, wt, b)).abs().max().item() <= 2e-5 * whole.abs().max().item()


def test_does_not_apply_where_it_must_not(monkeypatch):
    x, wt, b = _case(1, 32, 32, 8, 8)
    with torch.no_grad():
        assert applies(x, wt, b)
        assert not applies(x.contiguous(), wt, b)  # NCHW: the kernels read channels-last rows
        assert not applies(x.double(), wt.double(), b.double())
        assert not applies(x[:, :8].contiguous(memory_format=torch.channels_last), wt[:8, :8], b[:8])
        assert not applies(x, torch.randn(32, 32, 5, 5), b)
        assert not applies(x.to("meta"), wt.to("meta"), b.to("meta"))
        with FlopCounterMode(display=False):  # counts the direct convolution's FLOPs, as the papers do
            assert not applies(x, wt, b)
        monkeypatch.setenv("EQBENCH_CONV", "direct")
        assert not applies(x, wt, b) and fastconv.algorithm() == "direct"
        assert torch.equal(conv3x3(x, wt, b), F.conv2d(x, wt, b, padding=1))
    monkeypatch.delenv("EQBENCH_CONV")
    saved = torch.get_num_threads()
    torch.set_num_threads(fastconv.MAX_THREADS + 1)  # measured up to 2 threads only: direct above
    try:
        assert not applies(x, wt, b) and fastconv.algorithm() == "direct"
    finally:
        torch.set_num_threads(saved)
    wt.requires_grad_(True)
    assert not applies(x, wt, b)  # autograd needs the differentiable convolution
    with torch.no_grad():
        assert applies(x, wt, b)


def test_module_keeps_conv2d_contract():
    torch.manual_seed(0)
    conv, plain = Conv3x3(32, 24), torch.nn.Conv2d(32, 24, 3, padding=1)
    plain.load_state_dict(conv.state_dict())  # same parameter names and shapes
    assert set(conv.state_dict()) == {"weight", "bias"}
    x = _case(1, 32, 24, 9, 11)[0]
    y = conv(x)  # training: autograd's convolution, bit for bit
    assert torch.equal(y, plain(x)) and y.requires_grad
    y.sum().backward()
    assert conv.weight.grad is not None
    with torch.inference_mode():
        fast = conv(x, relu=True)
    assert (fast - F.relu(plain(x))).abs().max().item() <= 2e-5 * fast.abs().max().item()


def test_weight_cache_follows_in_place_updates():
    conv = Conv3x3(16, 16).eval()
    x = _case(1, 16, 16, 8, 8)[0]
    with torch.no_grad():
        for update in (lambda: None, lambda: conv.weight.mul_(-2),
                       lambda: conv.load_state_dict({"weight": torch.ones(16, 16, 3, 3), "bias": torch.ones(16)})):
            update()
            y = conv(x)  # the transformed weights of the previous step must not be reused
            ref = _reference(x, conv.weight, conv.bias)
            assert (y.double() - ref).abs().max().item() <= 2e-5 * ref.abs().max().item()


def test_flop_count_is_the_direct_convolutions():
    m = eqbench.create_method("arbsr", size="tiny").eval()
    from eqbench.analysis.flops import count_flops

    fast = count_flops(m, (16, 16), (32, 32)).total
    import os

    os.environ["EQBENCH_CONV"] = "direct"
    try:
        direct = count_flops(m, (16, 16), (32, 32)).total
    finally:
        del os.environ["EQBENCH_CONV"]
    assert fast == direct > 0


@pytest.mark.parametrize("name", ["arbsr", "metasr", "liif", "lte"])
def test_whole_network_on_both_paths(name, monkeypatch):
    """Tiny presets (32 channels) at 24x20 -> x2.5: the two paths agree to float32 round-off."""
    torch.manual_seed(0)
    m = eqbench.create_method(name, size="tiny").eval()
    lr = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(1))
    calls = []
    real = fastconv._winograd
    monkeypatch.setattr(fastconv, "_winograd", lambda *a, **k: calls.append(1) or real(*a, **k))
    with torch.inference_mode():
        fast = m.upsample(lr, (60, 50))
        monkeypatch.setenv("EQBENCH_CONV", "direct")
        n_fast = len(calls)
        direct = m.upsample(lr, (60, 50))
    assert n_fast > 0 and len(calls) == n_fast  # Winograd ran, then not at all
    assert (fast - direct).abs().max().item() <= 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_mean_and_out(threads):
    """conv3x3_mean's pooled channels (summed by the output transform) and out= into a channel slice."""
    x, wt, b = _case(2, 32, 24, 13, 18)
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            y, mean = fastconv.conv3x3_mean(x, wt, b, relu=True)
            buf = torch.zeros(2, 60, 13, 18).contiguous(memory_format=torch.channels_last)
            got = conv3x3(buf[:, :32].copy_(x), wt, b, relu=True, out=buf[:, 32:56])
    finally:
        torch.set_num_threads(saved)
    ref = _reference(x, wt, b, relu=True)
    assert mean.shape == (2, 24, 1, 1)
    assert (mean.double() - y.double().mean((2, 3), keepdim=True)).abs().max().item() <= 1e-6
    assert (mean.double() - ref.mean((2, 3), keepdim=True)).abs().max().item() <= 2e-5 * ref.abs().max().item()
    assert got.data_ptr() == buf[:, 32:56].data_ptr()
    assert torch.equal(buf[:, 32:56], y)  # written in place, same values as a fresh output
    assert torch.equal(buf[:, 56:], torch.zeros_like(buf[:, 56:]))  # nothing outside the slice


def test_mlp_fused_linear_equals_the_layer_stack():
    """LIIF/LTE's MLP in CPU inference (oneDNN linear with bias + ReLU epilogue) = the nn.Sequential, bit
    for bit; with first_done too; and the plain stack under autograd and FLOP counting."""
    from baselines.implicit import MLP

    torch.manual_seed(0)
    mlp = MLP(40, 3, [64, 64]).eval()
    x = torch.randn(1000, 40)
    with torch.inference_mode():
        assert fastconv.linear_relu_fused_ok(x, mlp.layers[0])
        assert torch.equal(mlp(x), mlp.layers(x))
        h = mlp.layers[0](x)
        assert torch.equal(mlp(h.clone(), first_done=True), mlp.layers[1:](h.clone()))
        with FlopCounterMode(display=False):
            assert not fastconv.linear_relu_fused_ok(x, mlp.layers[0])
    assert not fastconv.linear_relu_fused_ok(x, mlp.layers[0])  # parameters require grad
    assert not fastconv.linear_relu_fused_ok(x.double(), mlp.layers[0])


@pytest.mark.parametrize("block", ["resblock", "rcab", "rdb"])
def test_fused_blocks_keep_inner_hooks(block):
    """EDSR/RCAN/RDN blocks fuse around their Winograd convolutions only while nothing hooks their inner
    modules: a hook on an inner ReLU still fires, and both ways give the same values to float32 rounding."""
    from baselines.encoders import RDB, ResBlock
    from baselines.rcan import RCAB

    torch.manual_seed(0)
    m = {"resblock": lambda: ResBlock(32), "rcab": lambda: RCAB(32, 8), "rdb": lambda: RDB(32, 16, 3)}[block]()
    m.eval()
    relu = next(mod for mod in m.modules() if isinstance(mod, torch.nn.ReLU))
    x = _case(1, 32, 32, 19, 22)[0]
    seen = []
    with torch.inference_mode():
        fused = m(x)
        handle = relu.register_forward_hook(lambda mod, i, o: seen.append(o.shape))
        hooked = m(x)
        handle.remove()
    assert seen, "the inner ReLU's hook did not fire"
    assert (fused - hooked).abs().max().item() <= 1e-5 * hooked.abs().max().item()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates jit.trace; users still call it
def test_tracing_sees_the_direct_convolution():
    """torch.jit.trace and torch.export record torch ops only: there the Winograd kernels must not run."""
    conv = Conv3x3(16, 16).eval()
    x = _case(1, 16, 16, 8, 8)[0]
    with torch.no_grad():
        traced = torch.jit.trace(conv, x)
        assert torch.equal(traced(x), F.conv2d(x, conv.weight, conv.bias, padding=1))
    exported = torch.export.export(conv, (x,))
    assert any("conv2d" in str(n.target) or "convolution" in str(n.target) for n in exported.graph.nodes)


def test_inference_mode_then_no_grad():
    """The per-thread transform buffer made inside inference_mode serves later no_grad calls too (an
    inference tensor could not be written outside inference mode)."""
    import threading

    x, wt, b = _case(1, 16, 16, 9, 9)
    out = []

    def run():  # a fresh thread: its buffer is created here, inside inference_mode
        with torch.inference_mode():
            out.append(conv3x3(x, wt, b))
        with torch.no_grad():
            out.append(conv3x3(x, wt, b))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert len(out) == 2 and torch.equal(out[0], out[1])
