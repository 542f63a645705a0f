"""`--device` checked once at the edge: a device this machine has, or one line naming the ones it has."""

from __future__ import annotations

from .errors import EqbenchError


def available() -> list[str]:
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(name: object, option: str = "--device") -> str:
    """`name` as a canonical device string ('cpu', 'cuda', 'cuda:1', 'mps'), or an EqbenchError."""
    import torch

    have = ", ".join(available())
    if not isinstance(name, str) or not name.strip():
        raise EqbenchError(f"{option} must be a device name such as cpu or cuda:0, got {name!r}")
    try:
        dev = torch.device(name.strip())
    except (RuntimeError, ValueError):
        raise EqbenchError(f"unknown device {name!r} for {option}: use one of {have}") from None
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            raise EqbenchError(f"{option} {name}: there is one CPU device; use --device cpu")
        return "cpu"
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise EqbenchError(f"{option} {name}: CUDA is not available on this machine (devices here: {have}); "
                               "use --device cpu")
        if dev.index is not None and dev.index >= n:
            raise EqbenchError(f"{option} {name}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
        return str(dev)
    if dev.type == "mps" and "mps" in have.split(", "):
        return "mps"
    raise EqbenchError(f"{option} {name}: device type {dev.type!r} is not available here (devices here: {have})")
