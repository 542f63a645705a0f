"""The methods under test. Importing this package is cheap (no torch); `load_all()` imports the method
modules listed in `catalog.BUILTIN`, which registers them (an explicit list, no folder scan)."""

from __future__ import annotations

import importlib

from .catalog import BUILTIN


def load_all() -> None:
    for module in dict.fromkeys(m.module for m in BUILTIN):
        importlib.import_module(f"{__name__}.{module}")
    _check_catalog()


def _check_catalog() -> None:
    """Every registration must match its torch-free entry in catalog.py (what `eqbench methods` prints
    without importing the models), so the table cannot drift from the factories."""
    from eqbench.method import METHODS

    for info in BUILTIN:
        e = METHODS.get(info.name)
        declared, registered = (info.description, tuple(info.sizes), tuple(info.options)), (
            e.description, tuple(e.sizes), tuple(e.options))
        if declared != registered:
            raise ValueError(f"method {info.name!r}: registration (description, sizes, options) = {registered!r} "
                             f"differs from baselines/catalog.py {declared!r}")
