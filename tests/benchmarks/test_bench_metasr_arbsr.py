"""Speed of `upsample` for MetaSR and ArbSR at x2 and x4 on a 128x128 input, and their peak memory.

The default test run (--benchmark-disable) executes each case once as a smoke test, on the tiny presets.
Paper presets (minutes on 2 CPU cores):
    EQBENCH_BENCH_SIZE=paper python -m pytest tests/benchmarks/test_bench_metasr_arbsr.py --benchmark-enable
Peak memory of the paper presets for a 100x100 input at x4 (the ArbSR paper's Table 3 case), each in a
fresh subprocess, as the peak-RSS increase over the RSS after building the model (CPU):
    python tests/benchmarks/test_bench_metasr_arbsr.py memory
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import eqbench

SIZE = os.environ.get("EQBENCH_BENCH_SIZE", "tiny")
CASES = [("metasr", {}), ("metasr", {"variant": "liif"}), ("arbsr", {}), ("arbsr", {"backbone": "edsr"})]


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name,options", CASES, ids=lambda v: v if isinstance(v, str) else
                         "-".join(str(x) for x in v.values()) or "default")
def test_upsample_128(benchmark, name, options, scale):
    model = eqbench.create_method(name, size=SIZE, **options).eval()
    lr = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    benchmark.extra_info.update(size=SIZE, threads=torch.get_num_threads())

    def run():
        with torch.inference_mode():
            return model.upsample(lr, (128 * scale, 128 * scale))

    sr = benchmark.pedantic(run, rounds=3 if SIZE == "paper" else 5, warmup_rounds=1)
    assert sr.shape == (1, 3, 128 * scale, 128 * scale)


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _measure_here(name: str, options: dict, size: str, hw: int, scale: int) -> dict:
    model = eqbench.create_method(name, size=size, **options).eval()
    lr = torch.rand(1, 3, hw, hw, generator=torch.Generator().manual_seed(0))
    before = _status_kb("VmRSS")
    with torch.inference_mode():
        model.upsample(lr, (hw * scale, hw * scale))
    delta_mb = (_status_kb("VmHWM") - before) / 1024
    return {"method": name, "options": options, "size": size, "peak_delta_mb": delta_mb}


def peak_rss_delta(name: str, options: dict, size: str = "paper", hw: int = 100, scale: int = 4) -> dict:
    """Run one upsample in a fresh interpreter (2 threads) and return its peak-RSS increase in MB."""
    arg = json.dumps([name, options, size, hw, scale])
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=path)
    r = subprocess.run([sys.executable, __file__, "measure", arg], capture_output=True, text=True, env=env,
                       check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        torch.set_num_threads(2)
        print(json.dumps(_measure_here(*json.loads(sys.argv[2]))))
    elif sys.argv[1:2] == ["memory"]:
        print(os.popen("uptime").read().strip())
        meta = peak_rss_delta("metasr", {})
        arb = peak_rss_delta("arbsr", {})
        print(json.dumps(meta), json.dumps(arb), sep="\n")
        ratio = arb["peak_delta_mb"] / meta["peak_delta_mb"]
        print(f"ArbRCAN / MetaRDN peak-RSS increase, 100x100 at x4: {ratio:.3f}")
