"""Loading weights safely: safetensors (eqbench's own format) or a method's official format.

Official `.pth`/`.pt` files are read with `torch.load(weights_only=True)`, which refuses pickles
that carry code. Key mismatches become one error naming what is missing and what is unexpected.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import EqbenchError


def _summ(keys: list[str], n: int = 4) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _sniff(path: Path) -> str | None:
    """Why `path` cannot be a PyTorch checkpoint (None if its first bytes fit one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise EqbenchError(f"cannot read checkpoint {path}: {e.strerror}") from None
    if not head:
        return "it is empty"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch's zip format, or a legacy pickle
        return None
    if head.startswith(b"\x89HDF") or head.startswith(b"\x93NUMPY"):
        return "it is an HDF5/NumPy file, not a PyTorch checkpoint"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text or not all(c.isprintable() or c.isspace() for c in text):
        return f"it is not a PyTorch checkpoint (unknown format, first bytes {head[:8].hex(' ')})"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"it is a text file, not a PyTorch checkpoint (it starts with {first!r})"


def check_weights_file(path: str | Path) -> None:
    """Cheap checks before any work (a header, not the tensors): the file exists and looks like weights.
    Whether its keys fit the method is known only when it is loaded."""
    path = Path(path)
    if path.is_dir():
        raise EqbenchError(f"weights {path} is a folder; give the weights file in it (e.g. final.safetensors)")
    if not path.is_file():
        raise EqbenchError(f"weights file not found: {path}; check the path")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except (SafetensorError, OSError, ValueError) as e:
            raise EqbenchError(f"cannot read {path}: corrupt safetensors file ({e})") from None
        return
    why = _sniff(path)
    if why:
        raise EqbenchError(f"cannot read checkpoint {path}: {why}; pass the .pth/.pt weights file itself")


def torch_load_safe(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise EqbenchError(f"checkpoint not found: {path}")
    why = _sniff(path)
    if why:
        raise EqbenchError(f"cannot read checkpoint {path}: {why}; pass the .pth/.pt weights file itself")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes: the outcome is reported below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise EqbenchError(f"cannot read checkpoint {path}: a damaged pickle ({str(e)[:80]})") from None
        raise EqbenchError(f"{path} is not a plain weights file (it needs code to unpickle); refusing to load "
                           "it. Re-save it as a state_dict or safetensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, MemoryError) as e:
        raise EqbenchError(f"cannot read checkpoint {path}: corrupt or not a torch file ({str(e)[:120]})") from None


def load_state_dict_strict(model: nn.Module, sd: dict, source: str) -> None:
    """load_state_dict(strict) with a one-line error that names the mismatch and its likely cause."""
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise EqbenchError(f"{source}: expected a mapping of parameter names to tensors")
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    name = getattr(model, "method_name", type(model).__name__)
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_summ(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_summ(unexpected)})")
        if shape:
            k = shape[0]
            parts.append(f"{len(shape)} shape mismatches (e.g. {k}: file {tuple(sd[k].shape)} vs model "
                         f"{tuple(own[k].shape)})")
        raise EqbenchError(f"{source} does not fit method {name!r} with these options: {'; '.join(parts)}. "
                           "Is it a checkpoint of another method, encoder or size?")
    with torch.no_grad():
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """eqbench safetensors (strict) or, for any other file, the method's `load_official`."""
    path = Path(path)
    if not path.is_file():
        raise EqbenchError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise EqbenchError(f"cannot read {path}: corrupt safetensors file ({e})") from None
        load_state_dict_strict(model, sd, str(path))
        return model
    return model.load_official(path)
