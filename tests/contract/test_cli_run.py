"""`eqbench run` / `eqbench datasets`: results.json schema, and one clear error per bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from eqbench.results import load_results, rows_frame
from tests.helpers.cli import run_cli as _run


def test_run_writes_schema(tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "2.75", "1.5x4",
                              "--data-root", str(tiny_root), "--out", str(out)], capsys)
    assert code == 0, err
    assert "psnr-y" in stdout and "Set5 x1.5x4" in stdout
    doc = load_results(out / "results.json")
    assert doc["schema_version"] == 1 and doc["config"]["protocol"] == "matlab@1"
    prov = doc["provenance"]
    for k in ("eqbench_version", "git", "torch", "device", "seed", "threads", "started"):
        assert k in prov
    assert len(doc["datasets"]["Set5"]["digest"]) == 64
    df = rows_frame(doc)
    assert set(df["metric"]) == {"psnr-y", "ssim-y", "psnr-rgb"}
    assert len(df) == 9 and set(df["n_images"]) == {3}
    row = next(r for r in doc["rows"] if r["scale"] == [1.5, 4.0] and r["metric"] == "psnr-y")
    assert len(row["images"]) == 3 and row["value"] == pytest.approx(np.mean(list(row["images"].values())))


def test_refuses_existing_results_and_resumes(tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root", str(tiny_root),
            "--out", str(out)]
    assert _run(base, capsys)[0] == 0
    before = (out / "results.json").read_text()
    code, _, err = _run(base, capsys)
    assert code == 2 and "--resume" in err and (out / "results.json").read_text() == before
    code, _, err = _run(base[:6] + ["3"] + base[6:] + ["--resume"], capsys)
    assert code == 0, err
    doc = load_results(out / "results.json")
    assert sorted({tuple(r["scale"]) for r in doc["rows"]}) == [(2.0, 2.0), (3.0, 3.0)]


@pytest.mark.parametrize("args,needle", [
    (["--methods", "bicubc"], "did you mean 'bicubic'"),
    (["--datasets", "Set55"], "did you mean 'Set5'"),
    (["--protocol", "matlb"], "did you mean 'matlab'"),
    (["--scales", "0"], "below 1"),
    (["--scales", "-2"], "below 1"),
    (["--scales", "0.5"], "below 1"),
    (["--scales", "nan"], "not a finite"),
    (["--scales", "inf"], "not a finite"),
    (["--scales", "two"], "cannot parse"),
    (["--datasets", "Set14"], "not found"),
])
def test_bad_input_one_line_no_results(tiny_root, tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    base = {"--methods": ["bicubic"], "--datasets": ["Set5"], "--scales": ["2"], "--protocol": ["matlab"]}
    base[args[0]] = args[1:]
    argv = ["run"] + [x for k, v in base.items() for x in (k, *v)] + ["--data-root", str(tiny_root), "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not (out / "results.json").exists()


def test_missing_dataset_names_paths_and_fix(tmp_path, capsys):
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--data-root", str(tmp_path / "nope"),
                         "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and str(tmp_path / "nope" / "Set5") in err and "EQBENCH_DATA" in err


def test_corrupt_image_named(tiny_root, tmp_path, capsys):
    bad = tiny_root / "Set5" / "im1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--data-root", str(tiny_root),
                         "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "im1.png" in err and "corrupt" in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_rgba_and_16bit_and_small_images(tiny_root, tmp_path, capsys):
    rng = np.random.default_rng(1)
    d = tiny_root / "Set5"
    Image.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 65536, (40, 40), dtype=np.uint16)).save(d / "deep.png")
    Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(d / "small.png")
    out = tmp_path / "o"
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "6", "--data-root",
                         str(tiny_root), "--out", str(out)], capsys)
    assert code == 0, err
    assert "alpha" in err and "8 bits" in err and "small" in err
    row = load_results(out / "results.json")["rows"][0]
    assert row["n_images"] == 5 and row["skipped"] == ["small"]


def test_all_images_too_small(tmp_path, capsys):
    d = tmp_path / "data" / "Set5"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(d / "a.png")
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "8", "--data-root",
                         str(tmp_path / "data"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no image is large enough" in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_malformed_datasets_yaml(tmp_path, capsys, monkeypatch):
    y = tmp_path / "datasets.yaml"
    y.write_text("version: 1\ndatasets:\n  Set5: {role: benchmark, images: 5\n")
    monkeypatch.setenv("EQBENCH_DATASETS_YAML", str(y))
    code, _, err = _run(["datasets"], capsys)
    assert code == 2 and "malformed YAML at line" in err
    y.write_text("version: 1\ndatasets:\n  Set5: {role: benchmrk, images: 5, path: Set5}\n")
    code, _, err = _run(["datasets"], capsys)
    assert code == 2 and "datasets.Set5.role" in err


def test_datasets_list_and_verify(data_root, capsys, tmp_path):
    code, out, _ = _run(["datasets", "--data-root", str(data_root)], capsys)
    assert code == 0 and "Set5" in out and "samples" in out and "5/5" in out
    code, out, _ = _run(["datasets", "verify", "Set5", "--data-root", str(data_root)], capsys)
    assert code == 0 and " ok " in out
    # a copy with one altered byte fails verification and names the file
    root = tmp_path / "root"
    shutil.copytree(data_root / "Set5", root / "Set5")
    shutil.copy(data_root / "SHA256SUMS", root / "SHA256SUMS")
    p = root / "Set5" / "baby.png"
    b = bytearray(p.read_bytes())
    b[-20] ^= 0xFF
    p.write_bytes(bytes(b))
    code, out, err = _run(["datasets", "verify", "Set5", "--data-root", str(root)], capsys)
    assert code == 2 and "baby.png: checksum mismatch" in out


def test_classic_y_cli_reproduces_published(data_root, tmp_path, capsys):
    code, out, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--protocol",
                           "classic-y", "--data-root", str(data_root), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    psnr = next(r["value"] for r in doc["rows"] if r["metric"] == "psnr-y")
    assert round(psnr, 2) == 33.66
