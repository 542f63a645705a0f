"""Methods from outside eqbench: `package.module:attribute` specs and the `eqbench.methods` entry points.

A spec names a callable that takes no arguments and returns a ready `SRMethod` (its own weights loaded):
an `SRMethod` subclass, or a plain `nn.Module` wrapped with `eqbench.wrap(module, style=...)`. It is
accepted wherever a method name is (`eqbench run/analyze/methods`, YAML configs, `--weights SPEC=PATH`);
the module is imported from the installed packages or, like uvicorn's `module:app`, from the current
folder. Installed packages can also declare methods under a name, in their pyproject.toml:

    [project.entry-points."eqbench.methods"]
    mynet = "mypkg.models:make_mynet"

`eqbench methods` lists them with their origin; an entry point named like a built-in method (or like
another package's entry point) is an error naming both. Results record each plugin's spec, module file,
its sha256 and the version of the package that provides it (`provenance`).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import EqbenchError

GROUP = "eqbench.methods"
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_SPEC = re.compile(rf"^({_DOTTED}):({_DOTTED})$")


def is_spec(name: str) -> bool:
    """True for `package.module:attribute` (a name with a colon); built-in and entry-point names have none."""
    return ":" in str(name)


@dataclass(frozen=True)
class Plugin:
    """Where one plugin method comes from: `value` is module:attribute; `dist` the providing package."""

    name: str
    value: str
    origin: str  # "spec" | "entry point"
    dist: str | None = None
    dist_version: str | None = None

    def describe(self) -> str:
        if self.origin == "spec":
            return f"plugin {self.value}"
        pkg = f"{self.dist} {self.dist_version}" if self.dist else "an unnamed package"
        return f"entry point of {pkg} ({self.value})"


def parse_spec(spec: str) -> tuple[str, str]:
    m = _SPEC.match(str(spec).strip())
    if not m:
        raise EqbenchError(f"method spec {spec!r} is not of the form package.module:attribute "
                           "(e.g. mypkg.models:make_net)")
    return m.group(1), m.group(2)


def entry_points(builtin: list[str]) -> dict[str, Plugin]:
    """The `eqbench.methods` entry points of the installed packages; clashes are errors naming both sides."""
    found: dict[str, Plugin] = {}
    for ep in md.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        p = Plugin(ep.name, ep.value, "entry point", dist.metadata["Name"] if dist else None,
                   dist.version if dist else None)
        if ep.name in builtin:
            raise EqbenchError(f"the {p.describe()} is named {ep.name!r}, like the built-in method {ep.name!r}; "
                               f"rename the entry point in {p.dist or 'its package'}'s [project.entry-points."
                               f"\"{GROUP}\"] (or uninstall it)")
        if ep.name in found and found[ep.name].value != p.value:
            raise EqbenchError(f"two installed packages declare the eqbench method {ep.name!r}: the "
                               f"{found[ep.name].describe()} and the {p.describe()}; rename or uninstall one")
        if ep.name != ep.name.lower() or is_spec(ep.name):
            raise EqbenchError(f"the {p.describe()} is named {ep.name!r}: eqbench method names are lowercase "
                               "and have no colon; rename the entry point")
        found[ep.name] = p
    return found


def spec_plugin(spec: str) -> Plugin:
    parse_spec(spec)
    return Plugin(spec, spec.strip(), "spec")


def load_callable(plugin: Plugin):
    """Import the plugin's module and return its attribute; every failure is one line naming the spec."""
    module_name, attr = parse_spec(plugin.value)
    where = plugin.describe()
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # `eqbench run --methods mymod:make` from the folder holding mymod.py
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise EqbenchError(f"cannot import the {where}: no module named {e.name!r}; install its package "
                           "(pip install -e PATH) or run eqbench from the folder that holds it") from None
    except Exception as e:  # noqa: BLE001  (user code: any failure is reported as one line)
        raise EqbenchError(f"importing the {where} failed: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EqbenchError(f"the {where}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EqbenchError(f"the {where}: {attr!r} is a {type(obj).__name__}, not a callable returning a model")
    return obj


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(plugin: Plugin) -> dict:
    """spec, origin, module file + sha256, providing package + version (None where there is none)."""
    module_name, _ = parse_spec(plugin.value)
    load_callable(plugin)  # imported already by validation; makes sys.modules hold it
    mod = sys.modules[module_name]
    file = getattr(mod, "__file__", None)
    dist, version = plugin.dist, plugin.dist_version
    if dist is None:
        names = md.packages_distributions().get(module_name.split(".")[0], [])
        if names:
            dist = names[0]
            try:
                version = md.version(dist)
            except md.PackageNotFoundError:
                version = None
    if dist is None and getattr(sys.modules.get(module_name.split(".")[0]), "__version__", None):
        dist = module_name.split(".")[0]  # not installed: the top-level package's own __version__
        version = str(sys.modules[dist].__version__)
    return {"spec": plugin.value, "origin": plugin.origin, "name": plugin.name,
            "module_file": str(Path(file).resolve()) if file else None,
            "module_sha256": _sha256(Path(file)) if file and Path(file).is_file() else None,
            "package": dist, "package_version": version}
