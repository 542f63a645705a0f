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
Other optional abilities are the `Protocol` classes below (`WindowDecoder`, `TransferStudent`,
`BackboneInit`): a method has one when its class implements it, and generic code asks with `isinstance`.

What a method *is* is declared where it is registered (`register_method`): `learned` (False for a
parameter-free method such as bicubic, which needs no weights and has no layers to compare),
`reference` (the row other methods are measured against: margins, EQ_S always includes it) and its
training `recipes` (plain data beside the method, see eqbench/train/recipes.py for the fields).

The built-in methods live in the `baselines` package, which the contract does not import: installed
packages name the modules that register methods in the entry-point group `eqbench.method_modules`
(eqbench's own pyproject.toml names `baselines`), loaded on the first registry lookup.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .allocator import release_freed_memory
from .errors import EqbenchError, suggest, unknown_name
from .registry import Registry

SIZES = ("paper", "tiny")


class SRMethod(nn.Module):
    """Base class: input validation and clamping around `_upsample`, which subclasses implement."""

    method_name: str = ""
    feature_taps: tuple[str, ...] = ()
    # True when `_upsample` always returns a new tensor nothing else holds: `upsample` may then clamp it in
    # place (outside autograd) instead of into a copy, one allocation of a whole HR image less.
    fresh_output: bool = False
    # The spec or entry-point name of a method from outside eqbench (eqbench/plugins.py), else None: its
    # failures (exceptions, wrong output) are the user's to fix, so they become one line naming it.
    plugin_spec: str | None = None

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
        if self.plugin_spec is not None:
            sr = self._plugin_upsample(lr, out_size, kwargs)
        else:
            sr = self._upsample(lr, out_size, **kwargs)
        if tuple(sr.shape[-2:]) != out_size:
            raise AssertionError(f"{self.method_name} returned {tuple(sr.shape[-2:])}, expected {out_size}")
        release_freed_memory()
        if self.fresh_output and not (torch.is_grad_enabled() and sr.requires_grad):
            return sr.clamp_(0.0, 1.0)
        return sr.clamp(0.0, 1.0)

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int], **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def _plugin_upsample(self, lr: torch.Tensor, out_size: tuple[int, int], kwargs: dict) -> torch.Tensor:
        """`_upsample` of a plugin: its exceptions and malformed outputs become one line naming the plugin."""
        who = f"plugin {self.plugin_spec!r}"
        try:
            sr = self._upsample(lr, out_size, **kwargs)
        except EqbenchError as e:
            raise EqbenchError(e if self.plugin_spec in str(e) else f"{who}: {e}") from None
        except Exception as e:  # noqa: BLE001  (user code)
            raise EqbenchError(f"{who} failed on an input of {tuple(lr.shape)} -> {out_size}: "
                               f"{type(e).__name__}: {e}") from None
        want = (lr.shape[0], 3, *out_size)
        if not isinstance(sr, torch.Tensor) or tuple(sr.shape) != want:
            got = tuple(sr.shape) if isinstance(sr, torch.Tensor) else type(sr).__name__
            raise EqbenchError(f"{who} returned {got} for an input of {tuple(lr.shape)}; expected a tensor "
                               f"{want} (N, 3, H, W)")
        return sr

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


@runtime_checkable
class WindowDecoder(Protocol):
    """Decodes only a window of each sample's HR frame (EQSR's training: the window's edges are grid borders)."""

    def forward_windows(self, lr: torch.Tensor, out_sizes: list[tuple[int, int]],
                        windows: list[tuple[int, int, int, int]]) -> torch.Tensor: ...


@runtime_checkable
class TransferStudent(Protocol):
    """Scale-aware knowledge transfer (ArbSR): features for the transfer loss and a fixed-scale teacher."""

    def forward_with_features(self, lr: torch.Tensor, out_size: tuple[int, int]): ...

    def make_teacher(self) -> nn.Module: ...


@runtime_checkable
class BackboneInit(Protocol):
    """Starts training from the backbone of an official fixed-scale network (ArbSR)."""

    def load_fixed_scale_backbone(self, path) -> SRMethod: ...


@dataclass(frozen=True)
class MethodEntry:
    name: str
    factory: Callable[..., SRMethod]
    description: str
    sizes: tuple[str, ...] = SIZES
    options: tuple[str, ...] = field(default_factory=tuple)
    learned: bool = True  # False: no parameters, nothing to load or train, no layers for CKA
    reference: bool = False  # the reference row (margins are measured against it; EQ_S always includes it)
    recipes: Mapping[str, dict] = field(default_factory=dict, compare=False)  # training recipes by name
    # "built-in", or where a plugin comes from (eqbench.plugins.Plugin.describe()); `plugin` is its Plugin.
    origin: str = "built-in"
    plugin: object | None = None


METHODS: Registry[MethodEntry] = Registry("method")
ENTRY_POINT_GROUP = "eqbench.method_modules"
_loaded: list[bool] = []


def register_method(name: str, *, description: str, sizes: tuple[str, ...] = SIZES, learned: bool = True,
                    reference: bool = False, recipes: Mapping[str, dict] | None = None):
    """Decorator for a factory `f(size=..., **options) -> SRMethod`; its keyword names are the options."""

    def deco(factory: Callable[..., SRMethod]) -> Callable[..., SRMethod]:
        params = inspect.signature(factory).parameters
        options = tuple(p for p in params if p != "size")
        METHODS.add(name, MethodEntry(name, factory, description, sizes, options, learned, reference,
                                      dict(recipes or {})))
        return factory

    return deco


def _load_builtin_methods() -> None:
    """Import the modules that installed packages name in the `eqbench.method_modules` group, once."""
    if _loaded:
        return
    eps = entry_points(group=ENTRY_POINT_GROUP)
    if not eps:
        raise EqbenchError(f"no {ENTRY_POINT_GROUP} entry points: eqbench is not installed (or its metadata is "
                           "stale); run `pip install -e .` in the eqbench checkout")
    _loaded.append(True)  # before the imports: a module that looks a method up while registering must not recurse
    try:
        for value in sorted({ep.value for ep in eps}):
            next(ep for ep in eps if ep.value == value).load()
    except BaseException:
        _loaded.clear()
        raise


def reference_method() -> str | None:
    """The name of the registered reference method (bicubic for the built-ins), None without one."""
    _load_builtin_methods()
    return next((n for n in METHODS.names() if METHODS.get(n).reference), None)


def list_methods(*, plugins: bool = True) -> list[str]:
    """Registered method names, then (plugins=True) the `eqbench.methods` entry points of installed packages."""
    _load_builtin_methods()
    names = METHODS.names()
    if plugins:
        from .plugins import entry_points

        names += sorted(entry_points(names))
    return names


_PLUGIN_ENTRIES: dict[str, MethodEntry] = {}


def method_entry(name: str) -> MethodEntry:
    """A registered method, an installed `eqbench.methods` entry point, or a `package.module:attribute` spec."""
    _load_builtin_methods()
    if name in METHODS:
        return METHODS.get(name)
    if name in _PLUGIN_ENTRIES:
        return _PLUGIN_ENTRIES[name]
    from .plugins import entry_points, is_spec, load_callable, spec_plugin

    eps = entry_points(METHODS.names())
    if not is_spec(name) and name not in eps:
        raise unknown_name("method", name, [*METHODS.names(), *eps])
    plugin = spec_plugin(name) if is_spec(name) else eps[name]
    fn = load_callable(plugin)  # an import error is reported now, before any work
    doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
    entry = MethodEntry(name, _plugin_factory(plugin), doc[0] if doc else plugin.value, SIZES, (),
                        origin=plugin.describe(), plugin=plugin)
    _PLUGIN_ENTRIES[name] = entry
    return entry


def is_reference(name: str) -> bool:
    """Whether `name` is the registered reference method (False for names the registry does not know)."""
    _load_builtin_methods()
    return name in METHODS and METHODS.get(name).reference


def create_method(name: str, *, size: str = "paper", **options) -> SRMethod:
    """The architecture of method `name` at its RANDOM initialisation (for training, or to load weights
    into yourself). To evaluate a model, use `load_method`, which never returns untrained weights."""
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


def _plugin_factory(plugin):
    """A registry factory `f(size=..., **options)`: calls the plugin and checks it returns an SRMethod."""

    def factory(size: str = "paper", **options):
        from torch import nn

        from .plugins import load_callable

        fn = load_callable(plugin)
        try:
            model = fn(**options)
        except EqbenchError as e:
            raise EqbenchError(f"the {plugin.describe()}: {e}") from None
        except Exception as e:  # noqa: BLE001
            raise EqbenchError(f"the {plugin.describe()} raised {type(e).__name__} while building the model: "
                               f"{e}") from None
        if not isinstance(model, SRMethod):
            hint = (" (a plain nn.Module: return eqbench.wrap(module, style='out_size'|'scale'|'coord-cell'|"
                    "'fixed') from it)") if isinstance(model, nn.Module) else ""
            raise EqbenchError(f"the {plugin.describe()} returned a {type(model).__name__}, not an "
                               f"eqbench.SRMethod{hint}")
        model.plugin_spec = plugin.name
        return model

    return factory
