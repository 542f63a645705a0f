"""Peak inference memory of one `upsample` call.

CUDA: torch.cuda.max_memory_allocated during the call minus memory_allocated before it (the model and
the input are the baseline), i.e. activations and workspace the allocator handed out.

CPU: measured in a fresh Python process (so nothing the caller holds counts and only one model
exists in it): the process builds the method (random weights; weights do not change memory) and the
input, records its resident set size (VmRSS), resets the kernel's peak-RSS mark (writing 5 to
/proc/self/clear_refs), runs the call once and reads the peak (VmHWM). The delta is the peak RSS
increase caused by the call. Where clear_refs is not available the peak is getrusage's ru_maxrss,
which also covers the set-up, and the result says so ("rss_method").

Run as a worker: python -m eqbench.analysis.memory '<json request>' prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys

import torch

from ..errors import EqbenchError


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cuda_peak_bytes(fn, device) -> int:
    """Peak bytes allocated on `device` by fn() above what was allocated before it."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def _worker(req: dict) -> dict:
    from ..method import create_method

    torch.set_num_threads(int(req.get("threads", torch.get_num_threads())))
    model = create_method(req["method"], size=req["size"], **req.get("options", {})).eval()
    h, w = req["lr"]
    lr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(model.eval_dtype)
    out = tuple(req["out"])
    gc.collect()
    base = _status_kb("VmRSS")
    reset = _reset_peak()
    with torch.inference_mode():
        model.upsample(lr, out)
    if reset and base is not None:
        peak, how = _status_kb("VmHWM"), "VmHWM after clear_refs"
    else:
        import resource

        peak, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss (includes set-up)"
    return {
        "baseline_bytes": (base or 0) * 1024,
        "peak_bytes": peak * 1024,
        "delta_bytes": (peak - (base or 0)) * 1024,
        "rss_method": how,
    }


class PeakJob:
    """A running `start_cpu_peak` measurement; `result()` waits for it and returns its dict."""

    def __init__(self, method: str, proc: subprocess.Popen, timeout: float) -> None:
        self.method, self._proc, self._timeout = method, proc, timeout

    def result(self) -> dict:
        try:
            out, err = self._proc.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise EqbenchError(f"memory measurement of {self.method} timed out after {self._timeout:.0f} s") from None
        if self._proc.returncode != 0:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            raise EqbenchError(f"memory measurement of {self.method} failed in its subprocess: {last}")
        return json.loads(out.strip().splitlines()[-1])

    def cancel(self) -> None:
        """Stop the measurement (the caller failed or was interrupted)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


def start_cpu_peak(
    method: str, size: str, options: dict, lr_hw, out_hw, *, threads: int | None = None, timeout: float = 1800
) -> PeakJob:
    """Start measuring the peak RSS delta of one upsample call of a registered method in a fresh process;
    the caller may do other work (not timings) meanwhile and collects the result with `.result()`."""
    from ..data.datasets import PACKAGE_ROOT

    req = {
        "method": method,
        "size": size,
        "options": options,
        "lr": list(lr_hw),
        "out": list(out_hw),
        "threads": threads or torch.get_num_threads(),
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen([sys.executable, "-m", "eqbench.analysis.memory", json.dumps(req)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return PeakJob(method, proc, timeout)


def cpu_peak_subprocess(
    method: str, size: str, options: dict, lr_hw, out_hw, *, threads: int | None = None, timeout: float = 1800
) -> dict:
    """Peak RSS delta of one upsample call of a registered method, measured in a fresh process."""
    return start_cpu_peak(method, size, options, lr_hw, out_hw, threads=threads, timeout=timeout).result()


if __name__ == "__main__":
    try:
        print(json.dumps(_worker(json.loads(sys.argv[1]))))
    except EqbenchError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
