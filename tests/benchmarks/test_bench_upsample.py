"""`upsample` speed per method on a 128x128 input at x2 and x4.

The default test run executes each case once (benchmarks disabled) with the tiny presets as a smoke
test. Timing: `EQBENCH_BENCH_SIZE=paper pytest tests/benchmarks/test_bench_upsample.py --benchmark-enable`.
"""

from __future__ import annotations

import os

import pytest
import torch

import eqbench

SIZE = os.environ.get("EQBENCH_BENCH_SIZE", "tiny")
CASES = [(m, s) for m in eqbench.list_methods() for s in (2, 4)]


@pytest.mark.parametrize("name,scale", CASES, ids=[f"{m}-x{s}" for m, s in CASES])
def test_bench_upsample(benchmark, name, scale):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = eqbench.create_method(name, size=SIZE).eval()
    lr = torch.rand(1, 3, 128, 128, dtype=model.eval_dtype)

    def run():
        with torch.inference_mode():
            return model.upsample(lr, (128 * scale, 128 * scale))

    out = benchmark.pedantic(run, rounds=3, warmup_rounds=1) if benchmark.enabled else benchmark(run)
    assert out.shape == (1, 3, 128 * scale, 128 * scale)
    benchmark.extra_info.update(size=SIZE, threads=torch.get_num_threads())
