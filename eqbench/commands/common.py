"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $EQBENCH_DATA, else the user "
                   "cache folder ~/.cache/eqbench/data)")
