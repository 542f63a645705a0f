"""eqbench methods: the registered methods with their sizes and options."""

from __future__ import annotations

import argparse

NAME = "methods"
HELP = "list registered methods"
EXAMPLES = """examples:
  eqbench methods"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(a: argparse.Namespace) -> int:
    # the torch-free catalog, not the registry: listing must not import the models (issue 20)
    from baselines.catalog import BUILTIN

    for e in sorted(BUILTIN):
        print(f"{e.name:<12} sizes: {'/'.join(e.sizes):<11} options: {', '.join(e.options) or '-':<40} "
              f"{e.description}")
    return 0
