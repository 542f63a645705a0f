"""The CPU model zoo: `tiny` presets trained with the `cpu` recipe, shipped inside the package.

`manifest.json` lists one entry per method (size, options, weights file, sha256, model card, log).
`zoo_weights(method)` returns the verified weights path: a missing or modified file is an error that
names the file and how to restore it, never a silent fallback to random weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import EqbenchError

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST = ZOO_DIR / "manifest.json"
RESTORE = ("restore it with `git checkout -- {rel}` in your eqbench checkout (or reinstall eqbench), "
           "or pass your own --weights {method}=PATH")


@dataclass(frozen=True)
class ZooEntry:
    method: str
    size: str
    file: str
    sha256: str
    options: dict = field(default_factory=dict)
    card: str = ""
    log: str = ""
    train: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=1)
def _load(manifest: Path = MANIFEST) -> dict[str, ZooEntry]:
    if not manifest.is_file():
        return {}
    try:
        raw = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EqbenchError(f"the zoo manifest {manifest} is unreadable ({e}); "
                           f"restore it with `git checkout -- eqbench/zoo/manifest.json`") from None
    return {m: ZooEntry(method=m, **e) for m, e in raw.get("models", {}).items()}


def zoo_entries() -> dict[str, ZooEntry]:
    return dict(_load())


def zoo_entry(method: str) -> ZooEntry | None:
    return _load().get(method)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ZOO_DIR.parent.parent))
    except ValueError:
        return str(path)


def verify(entry: ZooEntry) -> Path:
    """The entry's weights path after checking it exists and matches its checksum."""
    path = entry.path
    hint = RESTORE.format(rel=_rel(path), method=entry.method)
    if not path.is_file():
        raise EqbenchError(f"zoo weights for {entry.method} are missing: {path}; {hint}")
    got = sha256_file(path)
    if got != entry.sha256:
        raise EqbenchError(f"zoo weights for {entry.method} are corrupt: {path} has sha256 {got[:12]}..., "
                           f"the manifest expects {entry.sha256[:12]}...; {hint}")
    return path


def zoo_weights(method: str) -> Path:
    entry = zoo_entry(method)
    if entry is None:
        raise EqbenchError(f"the zoo has no model for {method!r}; it has: {', '.join(zoo_entries()) or 'none'}")
    return verify(entry)
