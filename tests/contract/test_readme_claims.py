"""The README's zoo claims, checked against reports/baseline.json: every scale of the baseline is in the
margin tables, every number matches the baseline (2 decimals), and every cell where a model loses to
bicubic is named in the text (and no other)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eqbench.results import load_results, rows_frame

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def psnr():
    df = rows_frame(load_results(ROOT / "reports" / "baseline.json"))
    df = df[(df["kind"] == "eval") & (df["metric"] == "psnr-y")]
    return df.pivot_table(index="method", columns=["dataset", "scale"], values="value")


def _tables() -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """dataset -> (scale labels, {row name: cells}) from the README's '| model (DATASET, N images) |' tables."""
    out = {}
    for m in re.finditer(r"^\| model \((\w+), \d+ images\) \|(.*)\|\n\|[-|]+\|\n((?:\|.*\|\n)+)", README, re.M):
        scales = [c.strip().lstrip("x") for c in m.group(2).split("|")]
        rows = {}
        for line in m.group(3).strip().splitlines():
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
        out[m.group(1)] = (scales, rows)
    return out


def test_margin_tables_cover_every_baseline_scale_and_match(psnr):
    tables = _tables()
    assert set(tables) == set(psnr.columns.get_level_values(0))
    ref = "bicubic"
    for ds, (scales, rows) in tables.items():
        assert sorted(scales) == sorted(psnr[ds].columns), ds  # every scale of the baseline, 1.5x4 included
        assert {r.removesuffix("-tiny") for r in rows if "PSNR-Y" not in r} == set(psnr.index) - {ref}
        for name, cells in rows.items():
            for s, cell in zip(scales, cells, strict=True):
                if "PSNR-Y" in name:
                    assert float(cell) == round(psnr.loc[ref, (ds, s)], 2), (ds, s)
                else:
                    want = psnr.loc[name.removesuffix("-tiny"), (ds, s)] - psnr.loc[ref, (ds, s)]
                    assert float(cell) == pytest.approx(round(want, 2), abs=1e-9), (name, ds, s)


def test_every_loss_to_bicubic_is_named(psnr):
    losses = {(m, ds, s) for m in psnr.index for ds, s in psnr.columns
              if psnr.loc[m, (ds, s)] < psnr.loc["bicubic", (ds, s)]}
    text = README[README.index("Where a zoo model loses to bicubic"):]
    text = text[: text.index("published methods.")]
    named = set(re.findall(r"(\w[\w-]*)-tiny", text.split("Every other cell")[0]))
    assert {m for m, _, _ in losses} == named
    for m, ds, s in losses:
        assert s in text and f"{psnr.loc[m, (ds, s)] - psnr.loc['bicubic', (ds, s)]:.2f}" in text, (m, ds, s)
    # "Every other cell beats bicubic ... smallest margin there: metasr-tiny on Set14 x6, +0.17 dB"
    x6 = {(m, ds): psnr.loc[m, (ds, "6")] - psnr.loc["bicubic", (ds, "6")] for m in psnr.index if m != "bicubic"
          for ds in psnr.columns.get_level_values(0).unique()}
    (m, ds), smallest = min(x6.items(), key=lambda kv: kv[1])
    assert f"{m}-tiny on {ds} x6, {smallest:+.2f} dB" in text
