"""`eqbench --help`, `--version` and `eqbench methods` stay light: they must not import torch (issue 20),
and the torch-free method catalog must agree with what the method modules register."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, sys
from eqbench.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        code = main({argv!r})
    except SystemExit as e:
        code = e.code
heavy = sorted(m for m in ("torch", "numpy", "pandas", "matplotlib", "baselines.eqsr") if m in sys.modules)
print(repr((code, heavy, buf.getvalue())))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["methods"], ["run", "--help"]])
def test_light_commands_do_not_import_torch(argv):
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                         check=True).stdout
    code, heavy, printed = eval(out)  # noqa: S307  (our own repr)
    assert code == 0
    assert heavy == [], f"eqbench {' '.join(argv)} imported {heavy}"
    assert printed.strip()


def test_version_matches_package():
    import eqbench

    out = subprocess.run([sys.executable, "-m", "eqbench", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"eqbench {eqbench.__version__}"


def test_catalog_matches_registrations():
    from baselines.catalog import BUILTIN
    from eqbench.method import list_methods, method_entry

    assert [m.name for m in sorted(BUILTIN)] == list_methods()
    for info in BUILTIN:
        e = method_entry(info.name)
        assert (e.description, e.sizes, e.options) == (info.description, info.sizes, info.options)
        assert e.factory.__module__ == f"baselines.{info.module}"


def test_methods_lists_every_builtin(capsys):
    from baselines.catalog import BUILTIN
    from eqbench.cli import main

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(m.name for m in BUILTIN)


def test_catalog_mismatch_is_refused(monkeypatch):
    import baselines
    from baselines import catalog

    baselines.load_all()
    bad = catalog.BUILTIN[1]._replace(options=("uint8", "extra"))
    monkeypatch.setattr(baselines, "BUILTIN", (bad,))
    with pytest.raises(ValueError, match="catalog"):
        baselines.load_all()
