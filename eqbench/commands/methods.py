"""eqbench methods: the methods eqbench knows, with their sizes, options and origin.

Built-in methods, then the `eqbench.methods` entry points of installed packages (plugins). Name methods
or `package.module:attribute` specs to check that they import and see where they come from.
"""

from __future__ import annotations

import argparse

NAME = "methods"
HELP = "list registered methods and installed plugins (or check named ones)"
EXAMPLES = """examples:
  eqbench methods
  eqbench methods liif mypkg.models:make_net          # check that a plugin spec imports"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="METHOD", help="method names or package.module:attribute specs")


def run(a: argparse.Namespace) -> int:
    from ..errors import EqbenchError
    from ..plugins import entry_points

    if not a.names:  # the built-ins from the torch-free catalog: listing them does not import the models
        from baselines.catalog import BUILTIN

        for info in sorted(BUILTIN):
            print(f"{info.name:<12} sizes: {'/'.join(info.sizes):<11} options: {', '.join(info.options) or '-':<40} "
                  f"{info.description}  [built-in]")
    for n in a.names or sorted(entry_points([info.name for info in BUILTIN])):
        from ..method import method_entry

        try:
            e = method_entry(n)
        except EqbenchError as err:
            if a.names:
                raise
            print(f"{n:<12} (broken plugin) {err}")  # listing everything: one broken package does not hide the rest
            continue
        sizes = "/".join(e.sizes) if e.plugin is None else "-"
        print(f"{n:<12} sizes: {sizes:<11} options: {', '.join(e.options) or '-':<40} {e.description}"
              f"  [{e.origin}]")
    return 0
