"""Run the eqbench CLI in-process, as the contract tests do."""

from __future__ import annotations

from eqbench.cli import main


def run_cli(args, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `eqbench ARGS`; argparse's usage errors give their SystemExit code."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
