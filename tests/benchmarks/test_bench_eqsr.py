"""EQSR `upsample` speed (x2 / x4 of 64x64 and 128x128 inputs, tiny and paper presets) and the peak
memory of the memory-bounded path (tiled backbone + banded decoder) against the one-shot path.

The default run (and .ci/run) executes only the tiny 64x64 cases, once, as smoke tests. The 128x128 tiny
cases (~10-50 s each on a loaded 2-core machine) and the paper-size cases (minutes each; LR 128 x4
needs ~3 GB) are `slow` and run when EQSR_BENCH=full; the memory comparison is `slow` and runs when
EQSR_MEMORY_LR is set (LR side; 128 takes ~15 min and 3 GB, 256 ~1 h and 11 GB for the untiled path):
    python -m pytest tests/benchmarks/test_bench_eqsr.py --benchmark-enable                        # tiny 64
    EQSR_BENCH=full python -m pytest tests/benchmarks/test_bench_eqsr.py -m "" --benchmark-enable  # all
    EQSR_MEMORY_LR=128 python -m pytest tests/benchmarks/test_bench_eqsr.py -m slow -k memory -s   # memory
The memory probe alone (one fresh process): python tests/benchmarks/test_bench_eqsr.py LR SCALE OPTIONS_JSON [OUT.npy]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqbench

CASES = [(size, h, s) for size in ("tiny", "paper") for h in (64, 128) for s in (2, 4)]
MEMORY_PATH = {"tile": 64, "tile_overlap": 16, "band_rows": 64}


FULL = os.environ.get("EQSR_BENCH") == "full"
_LONG = [pytest.mark.slow, pytest.mark.skipif(not FULL, reason="minutes on 2 CPU cores: set EQSR_BENCH=full")]


@pytest.mark.parametrize(
    "size,h,scale",
    [pytest.param(*c, marks=_LONG if c[0] == "paper" or c[1] == 128 else []) for c in CASES],
    ids=[f"{c[0]}-{c[1]}px-x{c[2]}" for c in CASES])
def test_bench_eqsr_upsample(benchmark, size, h, scale):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = eqbench.create_method("eqsr", size=size).eval()
    lr = torch.rand(1, 3, h, h)

    def run():
        with torch.inference_mode():
            return model.upsample(lr, (h * scale, h * scale))

    out = benchmark.pedantic(run, rounds=3, warmup_rounds=1) if benchmark.enabled else benchmark(run)
    assert out.shape == (1, 3, h * scale, h * scale)
    benchmark.extra_info.update(size=size, threads=torch.get_num_threads(), load=os.getloadavg()[0])


def probe(h: int, scale: int, options: dict, out_path: str | None = None) -> dict:
    """Paper-size x`scale` upsample of an h x h input in this process: peak RSS above the baseline."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = eqbench.create_method("eqsr", size="paper", **options).eval()
    lr = torch.rand(1, 3, h, h, generator=torch.Generator().manual_seed(0))
    # ru_maxrss is the process's high-water mark, which building the paper model (~3 GB) already sets: reset
    # the kernel's peak (VmHWM) first where Linux allows it, else small inputs would measure 0 extra.
    from eqbench.analysis.memory import _reset_peak, _status_kb

    reset = _reset_peak()
    base = _status_kb("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        out = model.upsample(lr, (h * scale, h * scale))
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    if out_path:
        np.save(out_path, out.numpy())
    return {"options": options, "baseline_mib": base / 1024, "peak_mib": peak / 1024,
            "extra_mib": (peak - base) / 1024}


def _run_probe(h: int, scale: int, options: dict, out: Path) -> dict:
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    res = subprocess.run([sys.executable, __file__, str(h), str(scale), json.dumps(options), str(out)],
                         capture_output=True, text=True, cwd=repo, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif("EQSR_MEMORY_LR" not in os.environ, reason="~15 min and 3 GB: set EQSR_MEMORY_LR=128")
def test_memory_tiled_vs_untiled(tmp_path, record_property):
    h, scale = int(os.environ["EQSR_MEMORY_LR"]), 4
    runs = {"untiled": {}, "banded": {"band_rows": 64}, "tiled": MEMORY_PATH}
    res = {k: _run_probe(h, scale, opts, tmp_path / f"{k}.npy") for k, opts in runs.items()}
    out = {k: np.load(tmp_path / f"{k}.npy") for k in runs}
    res["banded"]["max_abs_diff"] = float(np.abs(out["banded"] - out["untiled"]).max())
    res["tiled"]["max_abs_diff"] = float(np.abs(out["tiled"] - out["untiled"]).max())
    res["tiled"]["mean_abs_diff"] = float(np.abs(out["tiled"] - out["untiled"]).mean())
    for k, v in res.items():
        record_property(k, json.dumps(v))
        print(f"EQSR paper x{scale} of {h}x{h} {k}: {v}")
    assert res["tiled"]["extra_mib"] < res["untiled"]["extra_mib"]
    # the banded decoder differs from the one-shot one only in the float summation of the ECA means
    assert res["banded"]["max_abs_diff"] <= 1e-5


if __name__ == "__main__":
    print(json.dumps(probe(int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]),
                           sys.argv[4] if len(sys.argv) > 4 else None)))
