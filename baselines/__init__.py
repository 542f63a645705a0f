"""The methods under test. Importing this package is cheap (no torch); `load_all()` imports the method
modules listed in `catalog.BUILTIN`, which registers them (an explicit list, no folder scan)."""

from __future__ import annotations

import importlib

from .catalog import BUILTIN


def load_all() -> None:
    for module in dict.fromkeys(m.module for m in BUILTIN):
        importlib.import_module(f"{__name__}.{module}")
