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
    from ..method import list_methods, method_entry

    for n in list_methods():
        e = method_entry(n)
        print(f"{n:<12} sizes: {'/'.join(e.sizes):<11} options: {', '.join(e.options) or '-':<40} {e.description}")
    return 0
