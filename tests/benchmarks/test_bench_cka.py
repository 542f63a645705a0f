"""Speed of CKA across scales: 10 layers x 3 scales x 64 crops of a tiny model.

The default run (--benchmark-disable) executes it once as a smoke test; timing numbers come from
`python -m pytest tests/benchmarks/test_bench_cka.py --benchmark-enable`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eqbench.analysis.cka import GramStore
from eqbench.analysis.taps import collect_grams, scale_cka
from eqbench.method import SRMethod


class TenTapSR(SRMethod):
    """Six residual 16-channel convs at LR size, a bicubic feature resize, four 1x1 convs at output size."""

    feature_taps = tuple(f"enc.{i}" for i in range(6)) + tuple(f"dec.{i}" for i in range(4))

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Conv2d(3, 16, 3, padding=1)
        self.enc = nn.ModuleList(nn.Conv2d(16, 16, 3, padding=1) for _ in range(6))
        self.dec = nn.ModuleList(nn.Conv2d(16, 16 if i < 3 else 3, 1) for i in range(4))

    def _upsample(self, lr, out_size):
        f = self.inp(lr)
        for conv in self.enc:
            f = f + torch.relu(conv(f))
        f = F.interpolate(f, size=out_size, mode="bicubic", align_corners=False)
        for conv in self.dec:
            f = conv(f)
        return f


@pytest.mark.benchmark(group="cka")
def test_cka_10_layers_3_scales_64_crops(benchmark):
    model = TenTapSR().eval()
    crops = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def run():
        store = GramStore()
        taps = collect_grams(store, "tiny", model, crops, [2, 3, 4], batch_size=16)
        return scale_cka(store, "tiny", taps, [2, 3, 4], 64)

    res = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    assert len(res.taps) == 10 and len(res.per_layer) == 3
    # encoder taps see the same LR at every scale: CKA 1 up to float64 rounding
    assert res.per_layer["2-4"][:6] == pytest.approx([1.0] * 6, abs=1e-9)
    assert all(v < 1.0 - 1e-6 for v in res.per_layer["2-4"][6:])  # decoder features depend on the scale
