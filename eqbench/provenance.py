"""Where a number came from: versions, git state, device, threads, time."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess

import numpy as np
import torch

from . import __version__, fastconv, native
from .data.datasets import PACKAGE_ROOT


def git_state(root=PACKAGE_ROOT) -> dict:
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = run("rev-parse", "HEAD")
    dirty = run("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(dirty) if dirty is not None else None}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def collect(device: str, seed: int) -> dict:
    dev = torch.device(device)
    return {
        "eqbench_version": __version__,
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "seed": seed,
        # the compiled SSIM/resize kernels (eqbench/native.py) or the torch code: same values to ~1e-13
        "native_kernels": native.available(),
        # 3x3 convolutions in CPU inference: eqbench/fastconv.py's Winograd F(4x4, 3x3), or "direct"
        # (oneDNN, the official order of operations; EQBENCH_CONV=direct)
        "conv3x3": fastconv.algorithm(),
        "started": now_iso(),
    }
