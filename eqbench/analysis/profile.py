"""Model profiles: parameters, FLOPs per input size and scale, latency, peak memory.

One method at a time: `profile_method` builds the model, counts parameters and FLOPs, times it, and
deletes it before the CPU memory measurement, which runs in a fresh process that builds its own copy;
so no more than one model is held at any time. Profiles use randomly initialised weights (weights do
not change size, FLOPs, time or memory).

Latency uses torch.utils.benchmark: a warm-up call, then Timer.blocked_autorange (blocks of calls
until `min_run_time` has passed); each measurement is the time per call of a block. Reported: median
and interquartile range per input, the thread count and the device. On CUDA the timed function
synchronises the device (and the benchmark timer synchronises too). The dataset time is the mean of
the per-image medians over the dataset's LR images at the timing scale, as in the ArbSR paper's
Table 3 (which averages over B100).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.utils.benchmark as benchmark

from ..data.pairs import TooSmall, make_pair
from ..errors import EqbenchError
from ..protocol import EvalProtocol
from ..scales import Scale
from .flops import UNIT, count_flops
from .memory import cuda_peak_bytes, start_cpu_peak


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """All and trainable parameters.

    Example:
        >>> from torch import nn
        >>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 3, 1))  # 3*8*9 + 8, then 8*3 + 3
        >>> _ = m[1].requires_grad_(False)
        >>> count_parameters(m)
        {'total': 251, 'trainable': 224}
    """
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def _call(model, lr: torch.Tensor, out_size: tuple[int, int]):
    device = lr.device

    def fn():
        with torch.inference_mode():
            model.upsample(lr, out_size)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return fn


def measure_latency(
    model,
    lr: torch.Tensor,
    out_size: Sequence[int],
    *,
    min_run_time: float = 0.2,
    warmup: int = 0,
    min_measurements: int = 3,
) -> dict:
    """Median and IQR (seconds per call) of model.upsample(lr, out_size) with torch.utils.benchmark.

    No separate warm-up call by default: `blocked_autorange` first runs the call to choose its block size
    and discards that time: the warm-up (torch's own comment: "This also serves as a warmup"); `warmup`
    adds calls before that.

    A slow call fills `min_run_time` with one measurement, whose IQR is 0 and says nothing: further
    blocks of the same size are timed until there are `min_measurements`.
    """
    out_size = (int(out_size[0]), int(out_size[1]))
    fn = _call(model, lr, out_size)
    for _ in range(max(0, warmup)):
        fn()
    timer = benchmark.Timer(
        stmt="fn()",
        globals={"fn": fn},
        num_threads=torch.get_num_threads(),
        label=getattr(model, "method_name", type(model).__name__),
        sub_label=f"{tuple(lr.shape[-2:])}->{out_size}",
    )
    parts = [timer.blocked_autorange(min_run_time=min_run_time)]
    while sum(len(p.times) for p in parts) < min_measurements:
        parts.append(timer.timeit(parts[0].number_per_run))
    m = benchmark.Measurement.merge(parts)[0] if len(parts) > 1 else parts[0]
    return {
        "median_s": float(m.median),
        "iqr_s": float(m.iqr),
        "n_measurements": len(m.times),
        "calls_per_measurement": int(m.number_per_run),
        "threads": torch.get_num_threads(),
        "device": str(lr.device),
    }


@dataclass(frozen=True)
class ProfileConfig:
    """What to profile for one method; built once at the CLI edge."""

    method: str
    size: str = "paper"
    options: tuple[tuple[str, object], ...] = ()
    flop_inputs: tuple[tuple[int, int], ...] = ((100, 100),)
    flop_scales: tuple[Scale, ...] = (Scale(4.0, 4.0),)
    memory_input: tuple[int, int] = (100, 100)
    memory_scale: Scale = Scale(4.0, 4.0)
    timing_scale: Scale = Scale(4.0, 4.0)
    timing_images: tuple[tuple[str, np.ndarray], ...] = field(default=(), repr=False, compare=False)
    timing_dataset: str = ""
    protocol: EvalProtocol | None = None
    min_run_time: float = 0.2
    min_measurements: int = 3
    device: str = "cpu"
    seed: int = 0


def _out(hw: tuple[int, int], s: Scale) -> tuple[int, int]:
    return int(round(hw[0] * s.h)), int(round(hw[1] * s.w))


def dataset_latency(model, cfg: ProfileConfig) -> dict:
    per_image, skipped = {}, []
    dtype, device = model.eval_dtype, torch.device(cfg.device)
    for name, img in cfg.timing_images:
        try:
            pair = make_pair(name, img, cfg.timing_scale, cfg.protocol)
        except TooSmall:
            skipped.append(name)
            continue
        lr = pair.lr.unsqueeze(0).to(device=device, dtype=dtype)
        per_image[name] = measure_latency(
            model, lr, pair.out_size, min_run_time=cfg.min_run_time, min_measurements=cfg.min_measurements
        )
    if not per_image:
        raise EqbenchError(f"no timing image is large enough for scale {cfg.timing_scale.label()}")
    return {
        "dataset": cfg.timing_dataset,
        "scale": cfg.timing_scale.as_list(),
        "mean_median_s": float(np.mean([v["median_s"] for v in per_image.values()])),
        "n_images": len(per_image),
        "skipped": skipped,
        "per_image": per_image,
    }


def profile_method(cfg: ProfileConfig) -> dict:
    """Parameters, FLOPs, latency and peak memory of one method. On the CPU the memory is measured in a
    fresh process started first, which runs while this process builds its own model and counts FLOPs
    (work that is not timed); it has finished before the latency is timed, so the timings run alone."""
    from ..method import create_method

    torch.manual_seed(cfg.seed)
    options = dict(cfg.options)
    mem_out = _out(cfg.memory_input, cfg.memory_scale)
    on_cpu = torch.device(cfg.device).type != "cuda"
    peak_job = start_cpu_peak(cfg.method, cfg.size, options, cfg.memory_input, mem_out) if on_cpu else None
    try:
        model = create_method(cfg.method, size=cfg.size, **options).to(cfg.device).eval()
        doc: dict = {
            "method": cfg.method,
            "size": cfg.size,
            "options": options,
            "device": cfg.device,
            "threads": torch.get_num_threads(),
            "params": count_parameters(model),
            "flops_unit": UNIT,
            "flops": [
                count_flops(model, hw, _out(hw, s)).to_dict() | {"scale": s.as_list()}
                for hw in cfg.flop_inputs
                for s in cfg.flop_scales
            ],
        }
        r = peak_job.result() if peak_job is not None else None
    except BaseException:
        if peak_job is not None:
            peak_job.cancel()
        raise
    if cfg.timing_images:
        doc["latency"] = dataset_latency(model, cfg)
    memory = {"lr": list(cfg.memory_input), "out": list(mem_out), "scale": cfg.memory_scale.as_list()}
    if r is None:
        lr = torch.rand(1, 3, *cfg.memory_input, device=cfg.device, dtype=model.eval_dtype)
        memory |= {
            "peak_bytes": cuda_peak_bytes(_call(model, lr, mem_out), torch.device(cfg.device)),
            "how": "cuda max_memory_allocated over the allocated baseline",
        }
        del lr
    else:
        memory |= {
            "peak_bytes": r["delta_bytes"],
            "how": f"cpu peak RSS delta in a fresh process ({r['rss_method']})",
            "baseline_rss_bytes": r["baseline_bytes"],
        }
    del model
    gc.collect()
    doc["memory"] = memory
    return doc


def _si(v: float, unit: str = "") -> str:
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}{unit}"
    return f"{v:.3g}{unit}"


def profile_row(p: dict) -> dict:
    """One method's Table 3 entries as numbers (results.json analyses["profile"]; formatted only when shown):
    params, peak memory (bytes) at the memory input, mean latency (s) on the timed dataset, FLOPs at the
    memory input (or the first FLOPs setting), with the settings they were measured at."""
    mem = p["memory"]
    f = next((f for f in p["flops"] if (f["lr"], f["scale"]) == (mem["lr"], mem["scale"])), p["flops"][0])
    lat = p.get("latency") or {}
    return {"method": p["method"], "size": p["size"], "params": p["params"]["total"],
            "memory_bytes": mem["peak_bytes"], "memory_input": list(mem["lr"]), "memory_scale": list(mem["scale"]),
            "time_s": lat.get("mean_median_s"), "time_dataset": lat.get("dataset"),
            "time_scale": list(lat["scale"]) if lat.get("scale") else None,
            "flops": f["flops"], "flops_input": list(f["lr"]), "flops_scale": list(f["scale"]),
            "device": p["device"], "threads": p["threads"]}  # fmt: skip


def display_row(p: dict) -> dict[str, str]:
    """profile_row formatted for the text Table 3: params, memory, time, FLOPs at the memory input."""
    r = profile_row(p)

    def at(lr, scale) -> str:
        return f"{lr[0]}x{lr[1]}, x{Scale(*scale).label()}"

    row = {"method": r["method"] if r["size"] == "paper" else f"{r['method']} ({r['size']})",
           "params": _si(r["params"]),
           f"memory ({at(r['memory_input'], r['memory_scale'])})": _si(r["memory_bytes"], "B")}
    if r["time_s"] is not None:
        row[f"time ({r['time_dataset'] or 'dataset'} x{Scale(*r['time_scale']).label()}, mean)"] = f"{r['time_s']:.3g}s"
    row[f"FLOPs ({at(r['flops_input'], r['flops_scale'])})"] = _si(r["flops"])
    row["device"] = f"{r['device']}, {r['threads']} threads"
    return row


def table3(profiles: Sequence[dict]) -> str:
    """Methods as columns; params, memory, time and FLOPs as rows (the ArbSR paper's Table 3 shape)."""
    if not profiles:
        return ""
    rows = [display_row(p) for p in profiles]
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("method", "device")]
    head = ["", *[r["method"] for r in rows]]
    body = [[k, *[r.get(k, "-") for r in rows]] for k in keys]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [head, *body]
    ]
    return "\n".join([*lines, f"device {rows[0]['device']}; FLOPs: 1 MAC = 2 FLOPs"])
