"""The cell cache of `eqbench run --cell-cache`: reuse only when weights, data, scale, protocol and the
evaluation code path are unchanged; anything else (or a damaged entry) is evaluated again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eqbench.cli import main
from eqbench.results import load_results
from eqbench.run.cells import EVAL_ROOTS, CellCache, code_digest, code_files

REPO = Path(__file__).resolve().parents[2]


def _run(tiny_root, out, cache, *extra):
    args = ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "3", "--no-progress",
            "--data-root", str(tiny_root), "--out", str(out), "--cell-cache", str(cache), *extra]
    assert main(args) == 0
    return load_results(out / "results.json")


def test_second_run_reuses_every_cell(tiny_root, tmp_path, capsys):
    first = _run(tiny_root, tmp_path / "a", tmp_path / "cache")
    second = _run(tiny_root, tmp_path / "b", tmp_path / "cache")
    assert first["provenance"]["cell_cache"]["hits"] == 0 and first["provenance"]["cell_cache"]["misses"] == 2
    assert second["provenance"]["cell_cache"] == {"folder": str(tmp_path / "cache"), "hits": 2, "misses": 0}
    assert second["rows"] == first["rows"]
    # another scale is a new cell; a damaged entry is recomputed, not trusted
    entries = sorted((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 2
    entries[0].write_text("{not json")
    entries[1].write_text(json.dumps({"key": "someone else's", "per_image": {}, "skipped": []}))
    third = _run(tiny_root, tmp_path / "c", tmp_path / "cache", "--scales", "2", "3", "4")
    assert third["provenance"]["cell_cache"]["hits"] == 0 and third["provenance"]["cell_cache"]["misses"] == 3
    assert third["rows"][:6] == first["rows"]


def test_random_init_is_never_cached(tmp_path):
    cache = CellCache(tmp_path, "cpu")
    model = {"method": "liif", "size": "tiny", "source": "random", "sha256": None}
    assert cache.key(model, "baselines.liif", "d" * 64, None, [2.0, 2.0], "matlab@1", 0) is None


def test_key_changes_with_weights_data_scale_protocol(tmp_path):
    cache = CellCache(tmp_path, "cpu")
    model = {"method": "liif", "size": "tiny", "source": "zoo", "sha256": "a" * 64, "options": {}}
    base = ("baselines.liif", "d" * 64, None, [2.0, 2.0], "matlab@1", 0)
    k = cache.key(model, *base)
    assert k == cache.key(dict(model), *base)
    assert k != cache.key({**model, "sha256": "b" * 64}, *base)
    assert k != cache.key(model, base[0], "e" * 64, *base[2:])
    assert k != cache.key(model, *base[:3], [3.0, 3.0], *base[4:])
    assert k != cache.key(model, *base[:4], "classic-y@1", 0)
    assert k != cache.key(model, *base[:2], 3, *base[3:])


def test_evaluation_path_covers_scoring_and_the_methods_modules():
    rel = {p.relative_to(REPO).as_posix() for p in code_files(tuple(sorted({*EVAL_ROOTS, "baselines.liif"})))}
    for f in ("eqbench/protocol.py", "eqbench/metrics/core.py", "eqbench/metrics/color.py", "eqbench/data/resize.py",
              "eqbench/data/pairs.py", "eqbench/run/evaluate.py", "eqbench/checkpoint.py", "baselines/liif.py",
              "baselines/implicit.py", "baselines/encoders.py"):
        assert f in rel
    assert "baselines/lte.py" not in rel and "eqbench/report/html.py" not in rel


@pytest.fixture
def source_copy(tmp_path):
    for pkg in ("eqbench", "baselines"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    return tmp_path


def _edit(path: Path):
    path.write_text(path.read_text() + "\n# edited\n")


def test_digest_follows_edits_on_the_path_only(source_copy):
    root = source_copy
    before = {m: code_digest(m, root) for m in ("baselines.liif", "baselines.lte", "baselines.bicubic")}
    _edit(root / "eqbench/report/html.py")  # not on the evaluation path
    assert {m: code_digest(m, root) for m in before} == before
    _edit(root / "baselines/lte.py")  # LTE's own module: only LTE re-runs
    after = {m: code_digest(m, root) for m in before}
    assert after["baselines.lte"] != before["baselines.lte"]
    assert after["baselines.liif"] == before["baselines.liif"]
    assert after["baselines.bicubic"] == before["baselines.bicubic"]
    _edit(root / "eqbench/metrics/core.py")  # scoring: everything re-runs
    final = {m: code_digest(m, root) for m in before}
    assert all(final[m] != after[m] for m in before)
