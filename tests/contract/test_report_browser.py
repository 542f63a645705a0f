"""The HTML report in a real browser: headless Chromium renders it, takes a screenshot, and we check
the DOM it built (tables and figures present), its console (no errors), and, on the committed example
report, that no figure is clipped and nothing overflows the page width (measured by a script injected
into a copy of the page, whose result Chromium writes into the dumped DOM)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

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
    assert html.count("<table") >= 3 and 'id="contents"' in html
    assert html.count("<img") >= 1 and ("data:image/png;base64," in html or "data:image/svg+xml;base64," in html)
    console_errors = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln and ("ERROR" in ln or "Uncaught" in ln)]
    assert not console_errors, console_errors


EXAMPLE = Path(__file__).resolve().parents[2] / "reports" / "example" / "report.html"
# Runs in the page after load: every image decoded and shown whole (aspect kept, inside the page), every
# element inside the page width (wide tables scroll inside their .wrap box, which itself fits).
MEASURE = """<script>window.addEventListener('load', () => {
  const W = document.documentElement.clientWidth, r = {width: W, scroll: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight, images: document.images.length, overflow: [], clipped: []};
  for (const e of document.body.querySelectorAll('*')) {
    const b = e.getBoundingClientRect();
    if (b.right > W + 0.5 && !e.parentElement.closest('.wrap')) r.overflow.push(e.tagName + '.' + e.className);
  }
  for (const i of document.images) {
    const b = i.getBoundingClientRect(), want = i.naturalHeight / i.naturalWidth, got = b.height / b.width;
    if (!i.complete || i.naturalWidth === 0 || b.width < 50 || b.left < 0 || b.right > W + 0.5
        || Math.abs(got - want) > 0.02 * want) r.clipped.push(i.alt);
  }
  const out = document.createElement('pre'); out.id = 'measure'; out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
});</script>"""


def _measure(page: Path, tmp_path, width: int) -> dict:
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    r = _chromium([f"--window-size={width},1000", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                  tmp_path)
    m = re.search(r'<pre id="measure">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="no reports/example/report.html (bash reports/make_example.sh)")
@pytest.mark.parametrize("width", [1400, 1000])
def test_example_report_layout(tmp_path, width):
    m = _measure(EXAMPLE, tmp_path, width)
    assert m["images"] >= 6, m
    assert m["clipped"] == [], m["clipped"]
    assert m["overflow"] == [] and m["scroll"] <= m["width"], m
    assert m["height"] < 15000, m  # one page of small multiples, not a 27,000 px scroll


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="no reports/example/report.html (bash reports/make_example.sh)")
def test_example_report_screenshot(tmp_path):
    shot = tmp_path / "example.png"
    r = _chromium([f"--screenshot={shot}", "--window-size=1400,3000", "--virtual-time-budget=10000",
                   EXAMPLE.as_uri()], tmp_path)
    assert shot.exists(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape[1] == 1400 and img.std() > 5
    right = img[:, -24:]  # the right margin: nothing drawn there (no element runs past the page)
    assert (right > 245).mean() > 0.99
    html = EXAMPLE.read_text()
    assert EXAMPLE.stat().st_size <= 1_500_000
    for card in re.findall(r'<div class="card" id="card-[^"]+">(.*?)</div>', html, re.S):
        assert "<dt>size</dt>" in card and "<dt>weights</dt>" in card
    toc = set(re.findall(r'<a href="#([^"]+)">', html))
    ids = set(re.findall(r' id="([^"]+)"', html))
    tables = set(re.findall(r'<h3 id="(table-[^"]+|profile-[^"]+|published)"', html))
    assert tables and tables <= toc and toc <= ids  # every table reachable from the table of contents
