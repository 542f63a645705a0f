"""Speed of the whole bicubic evaluation of Set14 at x2/x3/x4 (LR generation, SR, PSNR-Y, SSIM-Y).

Compared with BasicSR's numpy/float32 imresize + calculate_psnr/ssim on the same images, run outside
the repository (tests/fixtures/basicsr/set14_bicubic.json holds its per-image numbers and its median
time on this machine: CPU time with 1 thread, and the older wall time with 2 threads). Both sides run
with one thread; on a shared machine compare CPU time, not wall time:
  pytest tests/benchmarks/test_bench_eval.py --benchmark-enable --benchmark-timer time.process_time
"""

from __future__ import annotations

import json

import pytest
import torch

from eqbench.method import create_method
from eqbench.protocol import get_protocol
from eqbench.run.evaluate import evaluate_images
from eqbench.scales import parse_scale
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def basicsr_ref():
    return json.loads((FIXTURES / "basicsr" / "set14_bicubic.json").read_text())


def _set14_as_basicsr_reads_it(load_set):
    # BasicSR reads bridge.png (greyscale) as 3 equal channels; do the same for this comparison.
    return [(n, a if a.ndim == 3 else a[..., None].repeat(3, axis=2)) for n, a in load_set("Set14")]


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_bench_set14_bicubic(benchmark, load_set, basicsr_ref, one_thread):
    images = _set14_as_basicsr_reads_it(load_set)
    # BasicSR's pipeline: LR = round(float imresize), SR = round(float imresize), unrounded Y.
    method = create_method("bicubic", uint8=False)
    protocol = get_protocol("basicsr")

    def evaluate_all():
        return {s: evaluate_images(method, images, parse_scale(s), protocol) for s in (2, 3, 4)}

    cells = benchmark(evaluate_all)
    for s, cell in cells.items():
        for name, v in cell.per_image.items():
            ref = basicsr_ref["per_image"][name][f"x{s}"]
            # BasicSR resizes in float32; rounding flips of the 8-bit LR/SR move single images by
            # up to ~1e-4 dB, the bound for 'equal results'. The SR has ~640 values that are
            # exact .5 ties in exact arithmetic (x2/x4 weights are dyadic); float32 and float64 noise
            # breaks them either way (~390 differ, whatever the float64 summation order), which moves
            # single SSIM values by up to 1.03e-6 (face x2) and PSNR by up to 2.4e-5 dB.
            assert v["psnr-y"] == pytest.approx(ref["psnr_y"], abs=1e-4), (name, s)
            assert v["ssim-y"] == pytest.approx(ref["ssim_y"], abs=2e-6), (name, s)
    if benchmark.enabled and benchmark.stats:
        median = benchmark.stats.stats.median
        ref_s = basicsr_ref["timing_cpu_1thread_s_median"]
        benchmark.extra_info["basicsr_cpu_1thread_median_s"] = ref_s
        benchmark.extra_info["speedup_vs_basicsr"] = ref_s / median
