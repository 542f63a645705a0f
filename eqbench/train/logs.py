"""Progress bar (loss, lr, it/s, ETA), scalar logs in CSV (and TensorBoard when installed).

OUT/log.csv:  step, phase, loss, lr, it_per_s, elapsed_s   (loss = mean over the logging interval)
OUT/val.csv:  step, dataset, scale, protocol, psnr_y, images
On resume, rows after the resumed step (the part of the killed run that is redone) are dropped, so
the logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

LOG_FIELDS = ("step", "phase", "loss", "lr", "it_per_s", "elapsed_s")
VAL_FIELDS = ("step", "dataset", "scale", "protocol", "psnr_y", "images")


def _truncate(path: Path, fields: tuple[str, ...], step: int) -> None:
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


class _Csv:
    def __init__(self, path: Path, fields: tuple[str, ...], resume_step: int | None) -> None:
        if resume_step is None and path.exists():
            path.unlink()
        elif resume_step is not None:
            _truncate(path, fields, resume_step)
        new = not path.exists()
        self.f = open(path, "a", newline="", encoding="utf-8")
        self.w = csv.DictWriter(self.f, fields)
        if new:
            self.w.writeheader()
            self.f.flush()

    def row(self, **values) -> None:
        self.w.writerow(values)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))


class TrainLog:
    """Rank 0's logs. `interval` steps are averaged into one CSV row."""

    def __init__(self, out: Path, *, total: int, start: int, resumed: bool, progress: bool,
                 interval: int = 10) -> None:
        from tqdm import tqdm

        self.interval = interval
        self.log = _Csv(out / "log.csv", LOG_FIELDS, start if resumed else None)
        self.val = _Csv(out / "val.csv", VAL_FIELDS, start if resumed else None)
        self.tb = _tensorboard(out)
        self.t0 = self.t_last = time.perf_counter()
        self.s_last = start
        self.bar = tqdm(total=total, initial=start, desc="train", unit="it", dynamic_ncols=True,
                        disable=not progress, file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 10)
        self.postfix: dict[str, str] = {}

    def step(self, step: int, phase: str, loss: float | None, lr: float) -> None:
        """Called every step; `loss` is given (interval mean, all ranks) at logging steps only."""
        self.bar.update(1)
        if loss is None:
            return
        now = time.perf_counter()
        ips = (step - self.s_last) / max(now - self.t_last, 1e-9)
        self.t_last, self.s_last = now, step
        self.log.row(step=step, phase=phase, loss=f"{loss:.6g}", lr=f"{lr:.6g}", it_per_s=f"{ips:.4g}",
                     elapsed_s=f"{now - self.t0:.1f}")
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            self.tb.add_scalar("train/lr", lr, step)
        self.postfix.update(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
        self.bar.set_postfix(self.postfix, refresh=False)

    def validation(self, step: int, dataset: str, scale: str, protocol: str, psnr_y: float,
                   images: int) -> None:
        self.val.row(step=step, dataset=dataset, scale=scale, protocol=protocol, psnr_y=f"{psnr_y:.4f}",
                     images=images)
        if self.tb is not None:
            self.tb.add_scalar(f"val/{dataset}_x{scale}_psnr_y", psnr_y, step)
        self.postfix[f"val x{scale}"] = f"{psnr_y:.2f}"
        self.bar.set_postfix(self.postfix, refresh=False)

    def message(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
        self.log.close()
        self.val.close()
        if self.tb is not None:
            self.tb.close()
