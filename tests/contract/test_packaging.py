"""A non-editable install (a wheel in a fresh venv) carries its data: datasets.yaml, the zoo, the report's
templates; `eqbench` works from any folder (issue 21)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# An editable install of the checkout in the system site-packages (CI's `pip install -e .`) hooks a finder
# into sys.meta_path that would win over the venv's copy: drop it, so the wheel's files are what runs.
CLI = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
       "getattr(f, '__module__', '')]; from eqbench.cli import main; import eqbench; "
       "print('eqbench from', eqbench.__file__, file=sys.stderr); sys.exit(main(sys.argv[1:]))")


@pytest.mark.slow  # ~10 s of CPU: builds the wheel and a venv
def test_wheel_install_works_from_any_folder(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to export the tracked files")
    src = tmp_path / "src"
    src.mkdir()
    # The tracked files only (what a release builds from), not the working tree's caches and venvs.
    archive = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in filter(None, archive.decode().split("\0")):
        p = REPO / rel
        if p.is_file() and not p.is_symlink():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, src / rel)
    # Nothing may point back at the checkout (an editable install's egg-info on PYTHONPATH would satisfy pip).
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQBENCH_") and k != "PYTHONPATH"}
    # With build isolation: pip fetches the build backend (setuptools) itself, as a user's `pip wheel .` does;
    # the interpreter running the tests need not have `wheel` installed.
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", ".",
                          "-w", str(tmp_path / "dist")], cwd=src, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    wheel = next((tmp_path / "dist").glob("eqbench-*.whl"))
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    py = tmp_path / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--force-reinstall", str(wheel)], check=True, capture_output=True, env=env, cwd=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env["HOME"] = str(tmp_path)  # no user cache: only the embedded 'samples' dataset is found
    py_cli = [str(py), "-c", CLI]
    out = subprocess.run([*py_cli, "datasets"], cwd=empty, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert f"eqbench from {tmp_path / 'venv'}" in out.stderr  # the installed copy, not the checkout
    assert "Set5" in out.stdout and "samples" in out.stdout
    out = subprocess.run([*py_cli, "zoo"], cwd=empty, capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.count(" ok") >= 6, out.stdout + out.stderr
    out = subprocess.run([*py_cli, "run", "--methods", "lte", "--datasets", "samples", "--limit", "1", "--scales",
                          "2", "--out", "o", "--no-progress"], cwd=empty, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert (empty / "o" / "results.json").is_file() and (empty / "o" / "report.html").is_file()
