"""Peak RSS of `eqbench train` does not grow with the number of training images (streamed from disk).

Runs `eqbench train --method liif --recipe cpu` as a child process on 100 and on 1,000 generated
320x320 images (the same number of iterations: 125 at batch 8, enough to draw 1,000 samples, so the
1,000-image run touches every image) and compares the children's peak RSS (ru_maxrss). Held in
memory, the 900 extra decoded images alone would add 900 x 320 x 320 x 3 B = 265 MiB.
Run:  pytest tests/benchmarks/test_bench_train_memory.py -m slow -s
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SIDE, ITERS = 320, 125


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        small = rng.integers(0, 256, (SIDE // 8, SIDE // 8, 3), dtype=np.uint8)  # smooth, so the PNGs stay small
        Image.fromarray(small).resize((SIDE, SIDE), Image.BICUBIC).save(folder / f"{i:04d}.png")


def peak_rss_mib(root: Path, n: int, tmp: Path) -> float:
    """Peak RSS (MiB) of one `eqbench train` child process on n images (a fresh decoded cache)."""
    code = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    env = {**os.environ, "EQBENCH_DATASETS_YAML": str(root / f"cat{n}.yaml"), "EQBENCH_DATA": str(root),
           "EQBENCH_DECODED_CACHE": str(tmp / f"decoded{n}"), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", code, sys.executable, "-m", "eqbench", "train", "--method", "liif", "--recipe",
            "cpu", "--train-data", f"gen{n}", "--iters", str(ITERS), "--save-every", str(ITERS),
            "--out", str(tmp / f"run{n}"), "--no-progress"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    rc, kib = out.stdout.split()[-2:]
    assert rc == "0", out.stdout + out.stderr
    return int(kib) / 1024


def test_peak_rss_flat_in_the_number_of_images(tmp_path):
    for n in (100, 1000):
        make_images(tmp_path / f"gen{n}", n, seed=n)
        (tmp_path / f"cat{n}.yaml").write_text(
            f"version: 1\ndatasets:\n  gen{n}: {{role: train, path: gen{n}, images: {n}}}\n")
    small, large = (peak_rss_mib(tmp_path, n, tmp_path) for n in (100, 1000))
    print(f"\npeak RSS: 100 images {small:.1f} MiB, 1000 images {large:.1f} MiB, ratio {large / small:.3f}")
    assert large <= 1.10 * small
