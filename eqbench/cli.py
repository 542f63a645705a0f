"""The `eqbench` command line. Subcommands live in eqbench/commands/, each --help ends with examples."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import warnings

from . import __version__
from .allocator import keep_freed_memory
from .commands import MODULES
from .errors import EqbenchError, EqbenchWarning

# Commands that run models: large freed buffers stay in the heap (eqbench/allocator.py).
MODEL_COMMANDS = {"run", "analyze", "train"}

# Environment problems of the output folder: reported as one line like any EqbenchError.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _modules():
    return [importlib.import_module(f"eqbench.commands.{m}") for m in MODULES]


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    ap = argparse.ArgumentParser(prog="eqbench", description="Benchmark and scale-equivariance analysis suite "
                                 "for arbitrary-scale super-resolution.")
    ap.add_argument("--version", action="version", version=f"eqbench {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    handlers = {}
    for mod in _modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__, epilog=mod.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        handlers[mod.NAME] = mod.run
    return ap, handlers


def main(argv: list[str] | None = None) -> int:
    ap, handlers = build_parser()
    args = ap.parse_args(argv)
    default_show = warnings.showwarning

    def show(message, category, *rest, **kw):
        if issubclass(category, EqbenchWarning):
            print(f"eqbench: warning: {message}", file=sys.stderr)
            return None
        return default_show(message, category, *rest, **kw)

    warnings.showwarning = show
    if args.command in MODEL_COMMANDS:
        keep_freed_memory()
    try:
        return handlers[args.command](args)
    except EqbenchError as e:
        print(f"eqbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in WRITE_ERRNOS:
            raise
        # A write outside the atomic results writer (figures, checkpoints, logs): one line, no traceback.
        where = f" {e.filename}" if e.filename else ""
        print(f"eqbench: error: cannot write{where}: {e.strerror}; free disk space, fix the permissions or "
              "choose another output folder", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eqbench: interrupted; finished cells are saved (continue with --resume)", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = default_show


if __name__ == "__main__":
    sys.exit(main())
