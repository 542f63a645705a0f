"""A cache of evaluated cells, so the CI score gate re-evaluates only what changed.

A cell (method x dataset x scale under one protocol) is reused only when everything its numbers depend on
is the same. Its key is the sha256 of:
  * the model: method name, size, options, the weights' sha256 (or "parameter-free"; random
    initialisations are never cached) and the seed;
  * the data: the dataset digest (names and sha256 of every image file) and the image limit;
  * the scale and the protocol id;
  * the evaluation code path: the sha256 of every source file that evaluation and the method's module
    import, followed statically (`code_digest`), so an edit to the protocol, scoring, metrics, resizing,
    pairs, checkpoint loading or the method's own modules (and the files they import) re-runs the cell;
  * the versions of torch, numpy and Python, the platform, the device, and whether the compiled kernels
    (eqbench/native.py) are in use.

Entries live outside the repository (`eqbench run --cell-cache DIR`, e.g. ~/.cache/eqbench/cells), one
JSON file per key, written atomically; an unreadable entry is ignored and recomputed. No cache, or an
empty one, means every cell is evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
from functools import lru_cache
from pathlib import Path

from ..results import write_json_atomic

# What every cell's evaluation imports: pairs/resize/metrics/protocol (via evaluate), model building
# (models -> method, checkpoint), image reading.
EVAL_ROOTS = ("eqbench.run.evaluate", "eqbench.scoring", "eqbench.run.models", "eqbench.checkpoint",
              "eqbench.data.io")
CACHE_VERSION = 1


def _source_root() -> Path:
    import eqbench

    return Path(eqbench.__file__).resolve().parent.parent


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports(name: str, path: Path, packages: frozenset[str], root: Path) -> set[str]:
    """In-package modules `path` imports anywhere (top level or inside functions), resolved to names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")
                keep = len(parts) - node.level + (1 if is_pkg else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from . import x` names a submodule
    found = set()
    for mod in out:
        if mod.split(".")[0] not in packages:
            continue
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            sub = ".".join(parts[:i])
            if _module_file(sub, root) is not None:
                found.add(sub)
    return found


@lru_cache(maxsize=64)
def code_files(roots: tuple[str, ...], root: Path | None = None) -> tuple[Path, ...]:
    """Every source file under `root` (default: the installed eqbench's parent folder) reachable by imports
    from `roots`; only modules of the roots' top-level packages are followed."""
    root = root or _source_root()
    packages = frozenset(r.split(".")[0] for r in roots)
    seen: dict[str, Path] = {}
    todo = [".".join(r.split(".")[:i]) for r in roots for i in range(1, r.count(".") + 2)]  # + parent packages
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name, root)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(name, path, packages, root) - set(seen))
    return tuple(sorted(seen.values()))


def code_digest(method_module: str, root: Path | None = None) -> str:
    """sha256 over (relative path, content) of the evaluation code path of a method defined in `method_module`."""
    root = root or _source_root()
    h = hashlib.sha256()
    for p in code_files(tuple(sorted({*EVAL_ROOTS, method_module})), root):
        rel = p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)
        h.update(f"{rel}\0".encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def environment() -> dict:
    import numpy as np
    import torch

    from .. import fastconv, native

    # "native": whether the compiled metric/resize kernels ran (their sums differ from the torch code's in
    # the last bits only, but a cell is reused only where it would be computed the same way); "conv3x3":
    # Winograd or direct 3x3 convolutions in CPU inference (outputs differ by float32 rounding).
    return {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "system": platform.system(), "native": native.available(),
            "conv3x3": fastconv.algorithm()}


class CellCache:
    """One folder of cached cells. `key(...)` names a cell; `get`/`put` read and write its result."""

    def __init__(self, folder: str | Path, device: str) -> None:
        self.folder = Path(folder).expanduser()
        self.device = device
        self.hits = 0
        self.misses = 0
        self._env = environment()

    def key(self, model: dict, method_module: str, dataset_digest: str, limit: int | None, scale: list,
            protocol: str, seed: int) -> str | None:
        """None for a model that must not be cached (random initialisation: no weights to identify it)."""
        if model.get("source") == "random":
            return None
        material = {"v": CACHE_VERSION, "method": model["method"], "size": model["size"],
                    "options": model.get("options", {}), "weights_sha256": model.get("sha256"),
                    "source": model.get("source"), "seed": seed, "dataset": dataset_digest, "limit": limit,
                    "scale": [float(s) for s in scale], "protocol": protocol, "device": self.device,
                    "code": code_digest(method_module), "env": self._env}
        blob = json.dumps(material, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str | None) -> dict | None:
        if key is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("per_image"), dict):
            self.misses += 1
            return None
        self.hits += 1
        # JSON has no inf/nan: write_json_atomic stored them as strings
        entry["per_image"] = {k: {m: float(v) for m, v in d.items()} for k, d in entry["per_image"].items()}
        return entry

    def put(self, key: str | None, per_image: dict, skipped: list) -> None:
        if key is None:
            return
        try:
            write_json_atomic(self._path(key), {"key": key, "per_image": per_image, "skipped": skipped})
        except OSError as e:  # a read-only or full cache disk must not fail the run: the cell is computed
            import warnings

            from ..errors import EqbenchWarning

            warnings.warn(f"cell cache {self.folder} not writable ({e.strerror}); continuing without storing",
                          EqbenchWarning, stacklevel=2)

    def summary(self) -> dict:
        return {"folder": str(self.folder), "hits": self.hits, "misses": self.misses}
