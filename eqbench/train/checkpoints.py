"""Training checkpoints: one folder per saved iteration, committed by an atomic rename.

    OUT/checkpoints/00001000/  weights.safetensors  the method's state_dict
                               ema.safetensors      the EMA weights (recipes with EMA)
                               state.pt             optimizer state, RNG states, step (weights-only pickle)
                               meta.json            method, size, options, recipe, data, seed, git SHA ...

Files are written into a hidden `.tmp-*` folder, fsync'ed, and the folder is renamed into place, so a
crash or a full disk at any moment leaves either the complete new checkpoint or none: the last good
one is never overwritten. The newest complete folder is the one a resume reads; older ones beyond
`keep` are removed only after the new one is committed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import torch

from ..checkpoint import torch_load_safe
from ..errors import EqbenchError
from .batch_kinds import ALIASES

FORMAT = 1
SUBDIR = "checkpoints"
TMP_PREFIX = ".tmp-"
# Fields that must agree for a run to continue another one.
IDENTITY = ("method", "size", "options", "recipe", "seed", "teachers")


def ckpt_root(out: Path) -> Path:
    return Path(out) / SUBDIR


def _complete(d: Path) -> bool:
    return d.is_dir() and d.name.isdigit() and (d / "meta.json").is_file() and (d / "state.pt").is_file() \
        and (d / "weights.safetensors").is_file()


def list_checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((d for d in root.iterdir() if _complete(d)), key=lambda d: int(d.name))


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or the newest checkpoint of a run folder."""
    p = Path(path)
    if _complete(p):
        return p
    found = list_checkpoints(ckpt_root(p)) if p.is_dir() else []
    if not found:
        what = "does not exist" if not p.exists() else "holds no complete checkpoint"
        raise EqbenchError(f"cannot resume: {p} {what} (expected a run folder with {SUBDIR}/NNNNNNNN/ "
                           "or one such checkpoint folder)")
    return found[-1]


def _write(path: Path, data: bytes) -> None:
    # Serialise in memory and write with plain file I/O: a full disk then raises OSError(ENOSPC)
    # (torch.save / safetensors.save_file report it as RuntimeError / SafetensorError without errno).
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _st_bytes(sd: dict, metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    return save(_tensors(sd), metadata=metadata)


def _pt_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tensors(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views and shared storage: store independent contiguous CPU copies.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_checkpoint(out: Path, step: int, *, weights: dict, ema: dict | None, state: dict, meta: dict,
                    keep: int = 2) -> Path:
    """Write and commit the checkpoint of `step`; a write error leaves the previous ones untouched."""
    root = ckpt_root(out)
    final = root / f"{step:08d}"
    if _complete(final):
        return final  # the same step of the same run: deterministic, already committed
    tmp = root / f"{TMP_PREFIX}{step:08d}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        _write(tmp / "weights.safetensors", _st_bytes(weights))
        if ema is not None:
            _write(tmp / "ema.safetensors", _st_bytes(ema))
        _write(tmp / "state.pt", _pt_bytes(state))
        doc = {**meta, "format": FORMAT, "step": step}
        _write(tmp / "meta.json", (json.dumps(doc, indent=1) + "\n").encode())
        _fsync_dir(tmp)
        os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        good = list_checkpoints(root)
        last = f"the last good checkpoint ({good[-1]}) is intact" if good else "no checkpoint was written yet"
        raise EqbenchError(f"cannot write the checkpoint of iteration {step} to {root}: {e.strerror or e}; "
                           f"{last}. Free disk space or fix permissions, then --resume") from None
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial(out: Path) -> None:
    """Leftovers of a run killed while writing (never complete checkpoints)."""
    root = ckpt_root(out)
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(TMP_PREFIX):
                shutil.rmtree(d, ignore_errors=True)


def read_meta(ckpt: Path) -> dict:
    try:
        meta = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise EqbenchError(f"cannot resume from {ckpt}: meta.json is unreadable ({e}); delete this folder to "
                           "fall back to the previous checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or "method" not in meta:
        raise EqbenchError(f"cannot resume from {ckpt}: not an eqbench training checkpoint (format "
                           f"{meta.get('format') if isinstance(meta, dict) else '?'})")
    return _current_names(meta)


def _current_names(meta: dict) -> dict:
    """Checkpoints written before the batch kinds were renamed (liif, eqsr) read with the new names."""
    sampler = (meta.get("recipe") or {}).get("sampler")
    if isinstance(sampler, dict) and sampler.get("kind") in ALIASES:
        sampler["kind"] = ALIASES[sampler["kind"]]
    if meta.get("sampler") in ALIASES:
        meta["sampler"] = ALIASES[meta["sampler"]]
    return meta


def load_checkpoint(ckpt: Path) -> tuple[dict, dict | None, dict]:
    """(weights, ema or None, state) of a committed checkpoint folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    def st(name: str) -> dict:
        try:
            return load_file(str(ckpt / name))
        except (SafetensorError, OSError, ValueError) as e:
            raise EqbenchError(f"cannot resume from {ckpt}: {name} is corrupt ({e}); delete this folder to "
                               "fall back to the previous checkpoint") from None

    weights = st("weights.safetensors")
    ema = st("ema.safetensors") if (ckpt / "ema.safetensors").is_file() else None
    state = torch_load_safe(ckpt / "state.pt")
    if not isinstance(state, dict) or "optimizer" not in state or "rng" not in state:
        raise EqbenchError(f"cannot resume from {ckpt}: state.pt lacks the optimizer/RNG state")
    return weights, ema, state


def _short(s: str) -> str:
    return s if len(s) < 90 else s[:87] + "..."


def check_compatible(meta: dict, expected: dict, where: Path) -> None:
    """One error naming the first field where the checkpoint's run differs from the requested one."""
    for k in IDENTITY:
        if meta.get(k, {} if k == "teachers" else None) != expected.get(k):
            a, b = (_short(json.dumps(v, sort_keys=True)) for v in (meta.get(k), expected.get(k)))
            raise EqbenchError(f"cannot resume from {where}: it is a run with {k} {a}, but this run has "
                               f"{k} {b}; resume with the same settings or start a new --out")


def write_weights_atomic(path: Path, sd: dict, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write(tmp, _st_bytes(sd, metadata))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EqbenchError(f"cannot write {path}: {e.strerror or e}; free disk space or fix permissions, "
                           "then --resume (the checkpoints are intact)") from None
