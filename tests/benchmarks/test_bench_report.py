"""Speed of `eqbench report`: HTML for 5 methods x 5 datasets x 12 scales (target: a few seconds).

The results are synthetic (random values with the real schema and per-image rows), so the timing
measures the renderer: tables, best/second marks, PSNR-vs-scale and drop plots, provenance.
Run the timing with:  pytest tests/benchmarks/test_bench_report.py --benchmark-enable
"""

from __future__ import annotations

import numpy as np

from eqbench.report.html import render
from eqbench.results import new_results

METHODS = ("bicubic", "liif", "lte", "metasr", "eqsr")
DATASETS = {"Set5": 5, "Set14": 14, "B100": 100, "Urban100": 100, "Manga109": 109}
SCALES = ("2", "3", "4", "6", "8", "12", "1.5", "1.55", "2.75", "3.5", "1.5x4", "2x3")


def _doc() -> dict:
    rng = np.random.default_rng(0)
    doc = new_results({"eqbench_version": "bench", "git": {"sha": None, "dirty": None}}, {"protocol": "matlab@1"})
    for m in METHODS:
        for ds, n in DATASETS.items():
            for s in SCALES:
                h, w = (float(v) for v in (s.split("x") if "x" in s else (s, s)))
                for metric, lo in (("psnr-y", 20.0), ("ssim-y", 0.5), ("psnr-rgb", 20.0)):
                    vals = {f"im{i}": float(lo + rng.random()) for i in range(n)}
                    doc["rows"].append({"kind": "eval", "method": m, "dataset": ds, "scale": [h, w], "metric": metric,
                                        "value": float(np.mean(list(vals.values()))), "n_images": n,
                                        "protocol": "matlab@1", "images": vals, "skipped": []})  # fmt: skip
    return doc


def test_bench_report_5x5x12(benchmark):
    doc = _doc()
    assert len(doc["rows"]) == 5 * 5 * 12 * 3
    html = benchmark.pedantic(render, args=(doc,), rounds=1, iterations=1)
    assert html.count("<table") >= 2 and "Urban100" in html
    assert "data:image/png;base64," in html or "data:image/svg+xml;base64," in html
