"""The HTML report in a real browser: headless Chromium renders it, takes a screenshot, and we check
the DOM it built (tables and figures present) and its console (no errors)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from eqbench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium; "
                                ".ci/run installs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "Set5").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (72, 64, 3), dtype=np.uint8)).save(root / "Set5" / f"{i}.png")
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "3", "4", "6",
                 "--data-root", str(root), "--out", str(out)]) == 0
    assert main(["report", str(out / "results.json"), "-o", str(out / "report.html")]) == 0
    return out / "report.html"


def _chromium(args, tmp_path):
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


def test_renders_in_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    r = _chromium([f"--screenshot={shot}", "--window-size=1400,2400", report.as_uri()], tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.std() > 5  # not a blank page
    dom = _chromium(["--dump-dom", "--enable-logging=stderr", "--v=0", report.as_uri()], tmp_path)
    html = dom.stdout
    assert html.count("<table") >= 3 and 'class="best' in html
    assert html.count("<img") >= 1 and "data:image/png;base64," in html
    console_errors = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert not console_errors, console_errors
