"""EQSR `upsample` speed (x2 / x4 of 64x64 and 128x128 inputs, tiny and paper presets) and the memory bound
of the default path (issue 20: paper preset x4 of 256x256 within 2 GiB of RSS growth, equal to the
whole-image decoding).

The default run (and .ci/run) executes only the tiny 64x64 cases, once, as smoke tests. The 128x128 tiny
cases (~10-50 s each on a loaded 2-core machine) and the paper-size speed cases (minutes each) are `slow`
and run when EQSR_BENCH=full. The memory tests are `slow` and run with the slow suite (`-m slow`; a few
minutes of 2 cores and < 3 GB each, in fresh processes):
    python -m pytest tests/benchmarks/test_bench_eqsr.py --benchmark-enable                        # tiny 64
    EQSR_BENCH=full python -m pytest tests/benchmarks/test_bench_eqsr.py -m "" --benchmark-enable  # all
    python -m pytest tests/benchmarks/test_bench_eqsr.py -m slow -k memory -s                      # memory
The memory probe alone (one fresh process): python tests/benchmarks/test_bench_eqsr.py LR SCALE OPTIONS_JSON [OUT.npy]
(OPTIONS_JSON: create_method options, plus "attn_chunk_elems" to set the attention chunk size).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import eqbench

CASES = [(size, h, s) for size in ("tiny", "paper") for h in (64, 128) for s in (2, 4)]
GIB = 1024 ** 3


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
    """Paper-size x`scale` upsample of an h x h input in this process: peak RSS growth during the call
    (VmHWM after clearing the peak mark, as eqbench/analysis/memory.py; ru_maxrss where that is missing)."""
    from eqbench.analysis.memory import _reset_peak, _status_kb

    options = dict(options)
    if "attn_chunk_elems" in options:
        import baselines.eqsr_attention as att

        att.ATTN_CHUNK_ELEMS = int(options.pop("attn_chunk_elems"))
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = eqbench.create_method("eqsr", size="paper", **options).eval()
    lr = torch.rand(1, 3, h, h, generator=torch.Generator().manual_seed(0))
    base = _status_kb("VmRSS")
    if not _reset_peak() or base is None:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()
    with torch.inference_mode():
        out = model.upsample(lr, (h * scale, h * scale))
    cpu = time.process_time() - t0
    peak = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    if out_path:
        np.save(out_path, out.numpy())
    return {"options": options, "baseline_mib": base / 1024, "peak_mib": peak / 1024,
            "extra_mib": (peak - base) / 1024, "cpu_s": round(cpu, 1), "threads": torch.get_num_threads(),
            "load": os.getloadavg()[0]}


def _run_probe(h: int, scale: int, options: dict, out: Path) -> dict:
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    res = subprocess.run([sys.executable, __file__, str(h), str(scale), json.dumps(options), str(out)],
                         capture_output=True, text=True, cwd=repo, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_default_x4_of_256(tmp_path, record_property):
    """Default settings, paper preset, x4 of 256x256: at most 2 GiB of RSS growth (was 9.3 GiB)."""
    res = _run_probe(256, 4, {}, tmp_path / "out.npy")
    record_property("default_256_x4", json.dumps(res))
    print(f"EQSR paper x4 of 256x256, default options: {res}")
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (1, 3, 1024, 1024) and np.isfinite(out).all()
    assert res["extra_mib"] * 2 ** 20 <= 2 * GIB


@pytest.mark.slow
def test_memory_default_equals_whole_image(tmp_path, record_property):
    """The default path (attention in chunks of windows, decoder in bands after the two ECA passes) equals
    the whole-image computation (all windows at once, one-shot decoder) on an input large enough for the
    default to band: LR 136 x4 = 544x544 x 256 latent channels > NeuralKriging.ONE_SHOT_ELEMS."""
    runs = {"default": {}, "whole": {"band_rows": 10 ** 6, "attn_chunk_elems": 2 ** 62}}
    res = {k: _run_probe(136, 4, opts, tmp_path / f"{k}.npy") for k, opts in runs.items()}
    diff = float(np.abs(np.load(tmp_path / "default.npy") - np.load(tmp_path / "whole.npy")).max())
    for k, v in res.items():
        record_property(k, json.dumps(v))
        print(f"EQSR paper x4 of 136x136 {k}: {v}")
    print(f"max |default - whole| = {diff:.3g}")
    assert diff <= 1e-5
    assert res["default"]["extra_mib"] < res["whole"]["extra_mib"]


if __name__ == "__main__":
    print(json.dumps(probe(int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]),
                           sys.argv[4] if len(sys.argv) > 4 else None)))
