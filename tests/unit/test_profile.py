"""Profiles: closed-form parameters and FLOPs, the extra FLOP formulas, latency and memory records."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from eqbench.analysis import profile as prof
from eqbench.analysis.flops import UNIT, count_flops
from eqbench.analysis.memory import cpu_peak_subprocess, cuda_peak_bytes
from eqbench.costs import declare_flops, involution_flops
from eqbench.method import METHODS, MethodEntry, SRMethod
from eqbench.protocol import get_protocol
from eqbench.scales import Scale


class ConvNet(SRMethod):
    """Three convs at LR size, then a nearest resize (a gather: 0 FLOPs)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 3, 1)

    def _upsample(self, lr, out_size):
        return F.interpolate(self.c3(torch.relu(self.c2(torch.relu(self.c1(lr))))), size=out_size, mode="nearest")


def test_parameters_equal_the_closed_form():
    # weights c_in * c_out * k^2 plus one bias per output channel, per conv
    want = (3 * 8 * 9 + 8) + (8 * 8 * 9 + 8) + (8 * 3 * 1 + 3)
    assert prof.count_parameters(ConvNet()) == {"total": want, "trainable": want}
    m = ConvNet()
    m.c1.weight.requires_grad_(False)
    assert prof.count_parameters(m) == {"total": want, "trainable": want - 3 * 8 * 9}


def test_conv_flops_equal_the_closed_form():
    h, w = 10, 12
    # FlopCounterMode: 2 FLOPs per multiply-accumulate, c_in * c_out * k^2 MACs per output pixel, no bias
    want = 2 * h * w * (3 * 8 * 9 + 8 * 8 * 9 + 8 * 3 * 1)
    fc = count_flops(ConvNet(), (h, w), (20, 24))
    assert fc.total == want
    assert set(fc.by_op) == {"aten.convolution"}
    assert fc.unit == UNIT and "2 FLOPs" in UNIT


class GridNet(SRMethod):
    """Samples LR features at HR positions with grid_sample (as LTE/ArbSR do)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 1)
        self.dec = nn.Conv2d(4, 3, 1)
        self.mode = mode

    def _upsample(self, lr, out_size):
        n = lr.shape[0]
        ys = torch.linspace(-1, 1, out_size[0], dtype=lr.dtype)
        xs = torch.linspace(-1, 1, out_size[1], dtype=lr.dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(n, -1, -1, -1)
        f = F.grid_sample(self.enc(lr), grid, mode=self.mode, align_corners=False)
        return self.dec(f)


@pytest.mark.parametrize("mode, taps", [("bilinear", 4), ("bicubic", 16), ("nearest", 0)])
def test_grid_sample_formula(mode, taps):
    (h, w), (H, W) = (6, 7), (15, 14)
    convs = 2 * h * w * 3 * 4 + 2 * H * W * 4 * 3
    fc = count_flops(GridNet(mode), (h, w), (H, W))
    assert fc.by_op.get("aten.grid_sampler_2d", 0) == 2 * taps * 4 * H * W  # 2 per tap, C = 4 channels
    assert fc.total == convs + 2 * taps * 4 * H * W
    # plain FlopCounterMode counts grid_sample as zero: the formula is what adds it
    plain = FlopCounterMode(display=False)
    with torch.no_grad(), plain:
        GridNet(mode).upsample(torch.rand(1, 3, h, w), (H, W))
    assert plain.get_total_flops() == convs


class Involution(nn.Module):
    """Unfold-style involution, written as product and sum (FlopCounterMode sees no FLOPs in it)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.kernel = nn.Conv2d(channels, 9, 1)

    def forward(self, u):
        n, c, h, w = u.shape
        k = self.kernel(u).view(n, 1, 9, h, w)
        return (F.unfold(u, 3, padding=1).view(n, c, 9, h, w) * k).sum(2)


class DeclaredInvolution(Involution):
    def extra_flops(self, inputs, output):
        return involution_flops(output.shape, 9)


class InvNet(SRMethod):
    def __init__(self, block: type[nn.Module]) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 1)
        self.inv = block(4)
        self.dec = nn.Conv2d(4, 3, 1)

    def _upsample(self, lr, out_size):
        return self.dec(F.interpolate(self.inv(self.enc(lr)), size=out_size, mode="nearest"))


def test_unfold_involution_is_counted_through_its_declared_formula():
    (h, w), (H, W) = (5, 6), (10, 12)
    convs = 2 * h * w * (3 * 4 + 4 * 9) + 2 * H * W * 4 * 3
    assert count_flops(InvNet(Involution), (h, w), (H, W)).total == convs  # missed without the formula
    fc = count_flops(InvNet(DeclaredInvolution), (h, w), (H, W))
    assert fc.by_module_formula == {"inv": 2 * 9 * 4 * h * w}  # one MAC per tap per output element
    assert fc.total == convs + 2 * 9 * 4 * h * w


def test_latency_record():
    r = prof.measure_latency(ConvNet().eval(), torch.rand(1, 3, 8, 8), (16, 16), min_run_time=0.02)
    assert r["median_s"] > 0 and r["iqr_s"] >= 0 and r["n_measurements"] >= 3  # min_measurements default
    assert r["threads"] == torch.get_num_threads() and r["device"] == "cpu"


def test_cpu_peak_memory_in_a_fresh_process():
    r = cpu_peak_subprocess("bicubic", "paper", {}, (40, 40), (160, 160))
    # bicubic computes in float64: the output alone is 160*160*3*8 bytes, a lower bound for the peak
    assert r["delta_bytes"] >= 160 * 160 * 3 * 8
    assert r["rss_method"].startswith("VmHWM") or "ru_maxrss" in r["rss_method"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_memory():
    x = torch.zeros(1, device="cuda")
    assert cuda_peak_bytes(lambda: torch.empty(1 << 20, device="cuda", dtype=torch.uint8), x.device) >= 1 << 20


@pytest.fixture
def toy_registered(monkeypatch):
    """`toy-conv` in the method registry for this test only; remembers every model it builds."""
    built: list[weakref.ref] = []

    def factory(*, size: str = "paper") -> ConvNet:
        m = ConvNet()
        built.append(weakref.ref(m))
        return m

    monkeypatch.setitem(METHODS._items, "toy-conv", MethodEntry("toy-conv", factory, "test only"))
    return built


def test_profile_holds_one_model_at_a_time(toy_registered, monkeypatch):
    alive_at_memory_start, events = [], []

    class FakeJob:
        def result(self):
            events.append("memory result")
            return {"delta_bytes": 123, "baseline_bytes": 1, "peak_bytes": 124, "rss_method": "fake"}

        def cancel(self):
            events.append("cancel")

    def fake_start(method, size, options, lr_hw, out_hw, **kw):
        gc.collect()
        alive_at_memory_start.append(sum(r() is not None for r in toy_registered))
        events.append("memory start")
        return FakeJob()

    real_latency = prof.dataset_latency

    def latency(model, cfg):
        events.append("latency")
        return real_latency(model, cfg)

    monkeypatch.setattr(prof, "start_cpu_peak", fake_start)
    monkeypatch.setattr(prof, "dataset_latency", latency)
    img = np.random.default_rng(0).integers(0, 256, (24, 28, 3), dtype=np.uint8)
    cfg = prof.ProfileConfig(
        "toy-conv",
        size="tiny",
        flop_inputs=((10, 12), (100, 100)),
        flop_scales=(Scale(2.0, 2.0), Scale(4.0, 4.0)),
        timing_images=(("a", img),),
        timing_dataset="toy",
        protocol=get_protocol("matlab"),
        min_run_time=0.01,
    )
    doc = prof.profile_method(cfg)
    # built once, and not yet while the memory worker starts; the worker has finished before the timings
    assert len(toy_registered) == 1 and alive_at_memory_start == [0]
    assert events == ["memory start", "memory result", "latency"]
    assert doc["params"]["total"] == 835
    assert doc["flops"][0]["flops"] == 2 * 10 * 12 * 816 and doc["flops"][0]["scale"] == [2.0, 2.0]
    assert doc["latency"]["n_images"] == 1 and doc["memory"]["peak_bytes"] == 123
    table = prof.table3([doc, {**doc, "method": "other"}])
    lines = table.splitlines()
    # the FLOPs row is at the memory configuration (100x100, x4 by default): 2 * 100 * 100 * 816
    assert "FLOPs (100x100, x4)" in table and "16.3M" in table
    assert lines[0].split() == ["toy-conv", "(tiny)", "other", "(tiny)"]
    assert [ln.split()[0] for ln in lines[1:5]] == ["params", "memory", "time", "FLOPs"]


def test_cli_profile(toy_registered, monkeypatch, tmp_path):
    from eqbench.cli import main

    class FakeJob:
        def result(self):
            return {"delta_bytes": 5, "baseline_bytes": 1, "peak_bytes": 6, "rss_method": "fake"}

    monkeypatch.setattr(prof, "start_cpu_peak", lambda *a, **k: FakeJob())
    out = tmp_path / "p"
    assert (
        main(
            [
                "analyze",
                "profile",
                "--methods",
                "toy-conv",
                "--size",
                "tiny",
                "--input-sizes",
                "10",
                "20",
                "--scales",
                "2",
                "3",
                "--no-timing",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "results.json").read_text())
    p = doc["analyses"]["profile_details"]["toy-conv@tiny"]
    assert [(f["lr"], f["scale"]) for f in p["flops"]] == [
        ([10, 10], [2.0, 2.0]),
        ([10, 10], [3.0, 3.0]),
        ([20, 20], [2.0, 2.0]),
        ([20, 20], [3.0, 3.0]),
    ]
    assert p["flops"][2]["flops"] == 2 * 400 * 816 and "profile_table" in doc["analyses"]
    assert doc["analyses"]["profile"] == [  # numbers; the report formats them
        {"method": "toy-conv", "size": "tiny", "params": 835, "memory_bytes": 5, "memory_input": [100, 100],
         "memory_scale": [4.0, 4.0], "time_s": None, "time_dataset": None, "time_scale": None,
         "flops": 2 * 100 * 816, "flops_input": [10, 10], "flops_scale": [2.0, 2.0], "device": "cpu",
         "threads": torch.get_num_threads()}
    ]  # fmt: skip
    assert main(["report", str(out / "results.json")]) == 0  # the HTML report renders the Table 3 rows
    html = (out / "report.html").read_text()
    assert "Model profiles" in html and "toy-conv [tiny]" in html and "163K" in html


@declare_flops(lambda u, kernel, out: involution_flops(out.shape, 9))
def involution_fn(u, kernel):
    """EQSR-style: a plain function, sum over 9 shifted views times the kernel (no unfold tensor)."""
    n, c, h, w = u.shape
    up = F.pad(u, (1, 1, 1, 1))
    return sum(kernel[:, i : i + 1] * up[:, :, i // 3 : i // 3 + h, i % 3 : i % 3 + w] for i in range(9))


class FnInvNet(SRMethod):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 1)
        self.kernel = nn.Conv2d(4, 9, 1)
        self.dec = nn.Conv2d(4, 3, 1)

    def _upsample(self, lr, out_size):
        u = self.enc(lr)
        return self.dec(F.interpolate(involution_fn(u, self.kernel(u)), size=out_size, mode="nearest"))


def test_declared_function_formula_is_counted_only_inside_count_flops():
    (h, w), (H, W) = (5, 6), (10, 12)
    convs = 2 * h * w * (3 * 4 + 4 * 9) + 2 * H * W * 4 * 3
    fc = count_flops(FnInvNet(), (h, w), (H, W))
    assert fc.by_module_formula == {"involution_fn": 2 * 9 * 4 * h * w}
    assert fc.total == convs + 2 * 9 * 4 * h * w
    # outside count_flops the decorator only calls the function
    u = torch.rand(1, 4, h, w)
    assert torch.equal(involution_fn(u, torch.ones(1, 9, h, w)), involution_fn.__wrapped__(u, torch.ones(1, 9, h, w)))
