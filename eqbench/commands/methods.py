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
    from baselines.catalog import BUILTIN

    from ..plugins import entry_points

    if not a.names:  # the built-ins from the torch-free catalog: listing them does not import the models
        for info in sorted(BUILTIN):
            _row(info.name, "/".join(info.sizes), info.options, info.description, "built-in")
    names = a.names or sorted(entry_points([info.name for info in BUILTIN]))
    if names:  # named methods and installed plugins: importing them is how they are checked
        _describe(names, listing=not a.names)
    return 0


def _describe(names: list[str], *, listing: bool) -> None:
    from ..errors import EqbenchError
    from ..method import method_entry

    for n in names:
        try:
            e = method_entry(n)
        except EqbenchError as err:
            if not listing:
                raise
            print(f"{n:<12} (broken plugin) {err}")  # listing everything: one broken package does not hide the rest
            continue
        _row(n, "/".join(e.sizes) if e.plugin is None else "-", e.options, e.description, e.origin)


def _row(name: str, sizes: str, options, description: str, origin: str) -> None:
    print(f"{name:<12} sizes: {sizes:<11} options: {', '.join(options) or '-':<40} {description}  [{origin}]")
