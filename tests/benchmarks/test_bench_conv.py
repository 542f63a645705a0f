"""Winograd F(4x4, 3x3) (eqbench/fastconv.py) against oneDNN's direct convolution, one 3x3 convolution of a
channels-last map: 64 -> 64 channels (EDSR/RCAN) and 512 -> 64 (RDN's widest dense layer), 128x128.

The default test run (--benchmark-disable) executes each case once as a smoke test. Timings:
    python -m pytest tests/benchmarks/test_bench_conv.py --benchmark-enable
(compare the `winograd` and `direct` rows of a case; same input, weights and thread count).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eqbench import fastconv


@pytest.mark.parametrize("algorithm", ["winograd", "direct"])
@pytest.mark.parametrize("cin,cout", [(64, 64), (512, 64)])
def test_conv3x3_128(benchmark, monkeypatch, algorithm, cin, cout):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, cin, 128, 128, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
    b = torch.randn(cout, generator=g)
    if algorithm == "direct":
        monkeypatch.setenv("EQBENCH_CONV", "direct")
    benchmark.extra_info.update(threads=torch.get_num_threads(), algorithm=fastconv.algorithm())

    def run():
        with torch.inference_mode():
            return fastconv.conv3x3(x, w, b)

    y = benchmark.pedantic(run, rounds=20, warmup_rounds=2)
    ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    assert (y.double() - ref).abs().max().item() <= 2e-5 * ref.abs().max().item()
