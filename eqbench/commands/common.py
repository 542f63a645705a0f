"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse

from ..errors import EqbenchError


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $EQBENCH_DATA, else the user "
                   "cache folder ~/.cache/eqbench/data)")


def parse_weights(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for it in items:
        if "=" not in it:
            raise EqbenchError(f"--weights takes METHOD=PATH, got {it!r}")
        k, v = it.split("=", 1)
        out.append((k.strip(), v.strip()))
    return tuple(out)
