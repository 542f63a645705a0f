"""The example plugin package (examples/plugin) made importable and discoverable without pip.

`plugin_env(tmp)` writes a minimal `mysr-<version>.dist-info` (METADATA, entry_points.txt from the
example's pyproject.toml, top_level.txt) into `tmp`, which is what an installed wheel leaves in
site-packages; with the example folder and `tmp` on PYTHONPATH, importlib.metadata finds the entry points.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin"


def copy_example(dst: Path) -> Path:
    """A clean copy of examples/plugin (as a fresh clone has it) at dst."""
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("runs", "__pycache__", "*.egg-info"))
    return dst


def read_pyproject(project: Path = EXAMPLE) -> dict:
    """name, version and entry-points of a pyproject.toml (a small reader: tomllib needs Python 3.11)."""
    meta: dict = {"entry-points": {}}
    section = ""
    for line in (project / "pyproject.toml").read_text().splitlines():
        if m := re.match(r"^\[(.+)\]\s*$", line.strip()):
            section = m.group(1)
        elif m := re.match(r'^"?([\w.-]+)"?\s*=\s*"([^"]*)"\s*$', line.strip()):
            if section == "project" and m.group(1) in ("name", "version"):
                meta[m.group(1)] = m.group(2)
            elif section.startswith("project.entry-points."):
                group = section.split(".", 2)[2].strip('"')
                meta["entry-points"].setdefault(group, {})[m.group(1)] = m.group(2)
    return meta


def fake_dist_info(site: Path, project: Path = EXAMPLE) -> Path:
    meta = read_pyproject(project)
    d = site / f"{meta['name']}-{meta['version']}.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, eps in meta.get("entry-points", {}).items():
        lines += [f"[{group}]", *(f"{k} = {v}" for k, v in eps.items()), ""]
    (d / "entry_points.txt").write_text("\n".join(lines))
    (d / "top_level.txt").write_text("mysr\n")
    return d


def plugin_env(site: Path, project: Path = EXAMPLE) -> dict[str, str]:
    """Environment for a subprocess that sees the example as installed (PATH finds this eqbench)."""
    fake_dist_info(site, project)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
