"""The method contract every super-resolution method honours, and the method registry.

A method is an `SRMethod` (an nn.Module) registered under a lowercase name. Generic code (evaluation,
EQ_S, CKA, profiling) only uses this contract:

  * `upsample(lr, out_size)`: lr (N, 3, h, w) float RGB in [0, 1]; any out_size (H, W) with H >= h,
    W >= w (integer, non-integer and asymmetric scales are the same call); returns (N, 3, H, W) in [0, 1].
  * `feature_taps`: ordered module paths whose outputs feature-similarity analyses read (forward hooks).
  * `load_official(path)`: reads the official checkpoint format of the method and maps its keys.
  * presets: `size="paper"` (the published configuration) and `size="tiny"` (trains on 2 CPU cores).

Optional, for training (eqbench/train): implicit methods answer arbitrary HR coordinates with
`query_points(lr, coord, cell)` and say what they accept in `query_modes`. A method without it still
trains: the trainer then supervises dense `_upsample` outputs (unclamped) of the batch's HR frame.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import EqbenchError, suggest
from .registry import Registry

SIZES = ("paper", "tiny")


class SRMethod(nn.Module):
    """Base class: input validation and clamping around `_upsample`, which subclasses implement."""

    method_name: str = ""
    feature_taps: tuple[str, ...] = ()
    # True when `_upsample` always returns a new tensor nothing else holds: `upsample` may then clamp it in
    # place (outside autograd) instead of into a copy, one allocation of a whole HR image less.
    fresh_output: bool = False

    @property
    def query_modes(self) -> tuple[str, ...]:
        """What `query_points` accepts (a subclass may override with a class attribute):
        "points": coord (N, Q, 2), any coordinates, each answered independently (LIIF, LTE, MetaSR-liif);
        "grid": coord (N, h, w, 2), a dense window of the HR grid (EQSR: its decoder mixes neighbours).
        Default: ("points",) when the class implements `query_points`, else () (dense training only)."""
        return ("points",) if type(self).query_points is not SRMethod.query_points else ()

    def upsample(self, lr: torch.Tensor, out_size: Sequence[int], **kwargs) -> torch.Tensor:
        check_input(lr, out_size)
        out_size = (int(out_size[0]), int(out_size[1]))
        sr = self._upsample(lr, out_size, **kwargs)
        if tuple(sr.shape[-2:]) != out_size:
            raise AssertionError(f"{self.method_name} returned {tuple(sr.shape[-2:])}, expected {out_size}")
        if self.fresh_output and not (torch.is_grad_enabled() and sr.requires_grad):
            return sr.clamp_(0.0, 1.0)
        return sr.clamp(0.0, 1.0)

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int], **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def query_points(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB at HR coordinates, NOT clamped (training needs the gradients outside [0, 1]).

        lr (N, 3, h, w) in [0, 1]; coord (N, *S, 2): pixel centres of the HR frame in [-1, 1], ordered
        (row, col), as LIIF's make_coord; cell (N, *S, 2): one HR pixel in the same units, (2/H, 2/W).
        S = (Q,) in "points" mode, (h', w') in "grid" mode. Returns (N, *S, 3) in [0, 1] units.
        """
        raise EqbenchError(f"method {self.method_name!r} cannot be queried at coordinates (no query_modes)")

    def load_official(self, path) -> SRMethod:
        raise EqbenchError(f"method {self.method_name!r} has no official checkpoint format")

    @property
    def eval_dtype(self) -> torch.dtype:
        """The dtype inputs should have: that of the parameters, float64 for parameter-free methods."""
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.float64

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


def check_input(lr: object, out_size: object) -> None:
    if not isinstance(lr, torch.Tensor):
        raise EqbenchError(f"lr must be a torch.Tensor of shape (N, 3, h, w), got {type(lr).__name__}")
    if lr.dim() != 4 or lr.shape[1] != 3:
        raise EqbenchError(f"lr must have shape (N, 3, h, w) (RGB), got {tuple(lr.shape)}")
    if not torch.is_floating_point(lr):
        raise EqbenchError(f"lr must be a float tensor in [0, 1], got dtype {lr.dtype}; divide uint8 images by 255")
    if lr.shape[0] < 1 or lr.shape[2] < 1 or lr.shape[3] < 1:
        raise EqbenchError(f"lr is empty: shape {tuple(lr.shape)}")
    try:
        H, W = out_size  # type: ignore[misc]
    except (TypeError, ValueError):
        raise EqbenchError(f"out_size must be a pair (H, W), got {out_size!r}") from None
    for v in (H, W):
        if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
            raise EqbenchError(f"out_size must be finite integers, got {out_size!r}")
        if isinstance(v, bool) or not float(v).is_integer():
            raise EqbenchError(f"out_size must be integers, got {out_size!r}")
    H, W = int(H), int(W)
    if H <= 0 or W <= 0:
        raise EqbenchError(f"out_size must be positive, got {(H, W)}")
    if H < lr.shape[2] or W < lr.shape[3]:
        raise EqbenchError(f"out_size {(H, W)} is smaller than the input {tuple(lr.shape[2:])}: "
                           "super-resolution only enlarges (scale >= 1 per axis)")


@dataclass(frozen=True)
class MethodEntry:
    name: str
    factory: Callable[..., SRMethod]
    description: str
    sizes: tuple[str, ...] = SIZES
    options: tuple[str, ...] = field(default_factory=tuple)


METHODS: Registry[MethodEntry] = Registry("method")


def register_method(name: str, *, description: str, sizes: tuple[str, ...] = SIZES):
    """Decorator for a factory `f(size=..., **options) -> SRMethod`; its keyword names are the options."""

    def deco(factory: Callable[..., SRMethod]) -> Callable[..., SRMethod]:
        params = inspect.signature(factory).parameters
        options = tuple(p for p in params if p != "size")
        _check_catalog(name, description, sizes, options)
        METHODS.add(name, MethodEntry(name, factory, description, sizes, options))
        return factory

    return deco


def _check_catalog(name: str, description: str, sizes: tuple[str, ...], options: tuple[str, ...]) -> None:
    """A built-in method's registration must match its torch-free entry in baselines/catalog.py (what
    `eqbench methods` prints without importing the models)."""
    from baselines.catalog import BY_NAME

    info = BY_NAME.get(name)
    if info is None:
        return
    declared = (info.description, tuple(info.sizes), tuple(info.options))
    if declared != (description, tuple(sizes), options):
        raise ValueError(f"method {name!r}: registration (description, sizes, options) = "
                         f"{(description, tuple(sizes), options)!r} differs from baselines/catalog.py {declared!r}")


def _load_builtin_methods() -> None:
    import baselines

    baselines.load_all()  # registers the methods under test


def list_methods() -> list[str]:
    _load_builtin_methods()
    return METHODS.names()


def method_entry(name: str) -> MethodEntry:
    _load_builtin_methods()
    return METHODS.get(name)


def create_method(name: str, *, size: str = "paper", **options) -> SRMethod:
    entry = method_entry(name)
    if size not in entry.sizes:
        raise EqbenchError(f"method {name!r} has no size {size!r}{suggest(size, entry.sizes)}; "
                           f"sizes: {', '.join(entry.sizes)}")
    unknown = [k for k in options if k not in entry.options]
    if unknown:
        k = unknown[0]
        raise EqbenchError(f"method {name!r} has no option {k!r}{suggest(k, entry.options)}; "
                           f"options: {', '.join(entry.options) or '(none)'}")
    model = entry.factory(size=size, **options)
    model.method_name = name
    return model
