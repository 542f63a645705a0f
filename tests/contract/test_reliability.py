"""Issue 21: NaN output is never scored; every bad input is one line, exit 2, and results stay intact."""

from __future__ import annotations

import errno
import json
import os
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import eqbench
from eqbench.errors import EqbenchError
from eqbench.results import load_results
from tests.helpers.cli import run_cli as _run


def _one_line_error(code, err) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("eqbench: error:")]
    assert len(errors) >= 1, err


@pytest.fixture(scope="module")
def nan_liif(tmp_path_factory) -> Path:
    """liif-tiny (the zoo's options) with every parameter NaN: a diverged checkpoint."""
    from safetensors.torch import save_file

    from eqbench.zoo import zoo_entry

    z = zoo_entry("liif")
    model = eqbench.create_method("liif", size=z.size, **z.options)
    path = tmp_path_factory.mktemp("nan") / "liif-nan.safetensors"
    save_file({k: torch.full_like(v, float("nan")) for k, v in model.state_dict().items()}, str(path))
    return path


def _liif_args(nan_liif) -> list[str]:
    from eqbench.zoo import zoo_entry

    assert not zoo_entry("liif").options  # the tiny preset alone rebuilds the zoo's architecture
    return ["--weights", f"liif={nan_liif}", "--size", "tiny"]


def test_nan_output_is_a_cell_error_and_never_scored(tiny_root, tmp_path, capsys, nan_liif):
    out = tmp_path / "o"
    code, stdout, err = _run(["run", "--methods", "bicubic", "liif", *_liif_args(nan_liif), "--datasets", "Set5",
                              "--scales", "2", "3", "--data-root", tiny_root, "--out", out, "--no-progress"], capsys)
    _one_line_error(code, err)
    assert "eqbench: error: liif Set5 x2: image im0 at x2: the model output holds NaN" in err
    assert "liif Set5 x3: image im0" in err
    assert "2 cell(s) not scored" in err.splitlines()[-1]
    doc = load_results(out / "results.json")
    assert {r["method"] for r in doc["rows"]} == {"bicubic"} and len(doc["rows"]) == 6
    text = (out / "results.json").read_text()
    assert '"nan"' not in text and "NaN" not in text
    assert (out / "report.html").exists()  # the run finished its other work before failing
    # --resume retries only the failed cells (and fails again the same way)
    code, _, err = _run(["run", "--methods", "bicubic", "liif", *_liif_args(nan_liif), "--datasets", "Set5",
                         "--scales", "2", "3", "--data-root", tiny_root, "--out", out, "--no-progress", "--resume"],
                        capsys)
    assert code == 2 and "bicubic" not in err and "liif Set5 x2" in err


def test_nan_output_in_analyses(tiny_root, tmp_path, capsys, nan_liif):
    out = tmp_path / "eq"
    code, _, err = _run(["analyze", "equivariance", "--methods", "liif", *_liif_args(nan_liif), "--datasets", "Set5",
                         "--scales", "2", "--data-root", tiny_root, "--out", out], capsys)
    _one_line_error(code, err)
    assert "equivariance liif Set5 x2: image im0 at x2" in err
    doc = load_results(out / "results.json")
    assert {r["method"] for r in doc["rows"]} == {"bicubic"}
    text = (out / "results.json").read_text()
    assert '"nan"' not in text and "NaN" not in text
    out = tmp_path / "cka"
    code, _, err = _run(["analyze", "cka", "--methods", "liif", "lte", *_liif_args(nan_liif), "--datasets", "Set5",
                         "--scales", "2", "3", "--crops", "8", "--batch-size", "4", "--data-root", tiny_root,
                         "--out", out], capsys)
    _one_line_error(code, err)
    assert "cka liif: feature tap" in err and "holds NaN" in err
    entries = load_results(out / "results.json")["analyses"]["cka"]
    assert entries and all(e.get("method") == "lte" for e in entries)
    assert all(np.isfinite(np.asarray(e["matrix"], dtype=float)).all() for e in entries)


def test_missing_weights_file_is_refused_before_hashing(tiny_root, tmp_path, capsys):
    for cmd in (["run"], ["analyze", "equivariance"]):
        code, _, err = _run([*cmd, "--methods", "liif", "--weights", f"liif={tmp_path / 'nope.pth'}", "--datasets",
                             "Set5", "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
        _one_line_error(code, err)
        assert "nope.pth: file not found" in err
    code, _, err = _run(["run", "--methods", "liif", "--weights", f"liif={tmp_path}", "--datasets", "Set5",
                         "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "is a folder" in err


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "nonsense", "cpu:1", "meta", "", "mps"])
def test_unavailable_device(tiny_root, tmp_path, capsys, device):
    if device.startswith("cuda") and torch.cuda.device_count() > 3:
        pytest.skip("this machine has cuda:3")
    base = ["--datasets", "Set5", "--data-root", tiny_root, "--out", tmp_path / "o", "--device", device]
    for args in (["run", "--methods", "bicubic", *base],
                 ["analyze", "equivariance", "--methods", "bicubic", *base],
                 ["train", "--method", "liif", "--size", "tiny", "--train-data", "samples", "--out", tmp_path / "t",
                  "--device", device]):
        code, _, err = _run(args, capsys)
        _one_line_error(code, err)
        assert "device" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


BAD_YAML = {
    "scales: two": "cannot parse scale 'two'",
    "limit: [1, 2]": "limit must be a whole number, got [1, 2]",
    "limit: true": "limit must be a whole number",
    "seed: 1.5": "seed must be a whole number",
    "methods: {a: 1}": "methods must be a name or a list of names",
    "methods: []": "methods must be a name or a list of names",
    "datasets: [[Set5]]": "datasets must be a name or a list",
    "scales: []": "scales must be a scale",
    "scales: [[1, 2, 3]]": "scales must be a scale",
    "protocol: [matlab]": "protocol must be a string",
    "analyses: 5": "analyses must be a name or a list",
    "random_init: 3": "random_init must be true or false",
    "report: maybe": "report must be true or false",
    "device: 3": "device must be a string",
    "size: 2": "size must be a string",
    "out: [a]": "out must be a path",
    "data_root: 3": "data_root must be a path",
    "results_name: 5": "results_name must be a string",
    "weights: {liif: [1]}": "weights must be a mapping METHOD: PATH",
    "weights: [liif]": "weights must be a mapping",
    "analysis_options: [1]": "analysis_options must be a mapping",
    "analysis_options: {crops: many}": "analysis_options.crops must be a whole number",
    "analysis_options: {memory_scale: {a: 1}}": "analysis_options.memory_scale must be a scale",
    "analysis_options: {timing: 1}": "analysis_options.timing must be true or false",
    "analysis_options: {input_sizes: [a]}": "analysis_options.input_sizes must be a list of whole numbers",
    "analysis_options: {bogus: 1}": "unknown analysis option",
    "[1, 2]": "must be a mapping of option names",
    "methods: [bicubic": "is not valid YAML",
}


@pytest.mark.parametrize("text", list(BAD_YAML))
def test_yaml_config_types(tiny_root, tmp_path, capsys, text):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text + "\n")
    code, _, err = _run(["run", "--config", cfg, "--datasets", "Set5", "--data-root", tiny_root, "--out",
                         tmp_path / "o"] + ([] if "methods" in text else ["--methods", "bicubic"]), capsys)
    _one_line_error(code, err)
    assert BAD_YAML[text] in err
    assert not (tmp_path / "o").exists()


def test_yaml_config_good_types(tiny_root, tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("methods: bicubic\ndatasets: Set5\nscales: [2, [1.5, 4], 2.75x3]\nlimit: 1\nseed: 3\n"
                   "report: false\nanalysis_options: {eq_crop: null, memory_scale: [2, 3]}\n")
    code, _, err = _run(["run", "--config", cfg, "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    scales = {tuple(r["scale"]) for r in load_results(tmp_path / "o" / "results.json")["rows"]}
    assert scales == {(2.0, 2.0), (1.5, 4.0), (2.75, 3.0)}


def _images_root(tmp_path: Path, images: dict[str, np.ndarray]) -> Path:
    d = tmp_path / "data" / "Set5"
    d.mkdir(parents=True)
    for name, a in images.items():
        Image.fromarray(a).save(d / f"{name}.png")
    return tmp_path / "data"


def test_images_too_small_for_the_border_shave(tmp_path, capsys):
    root = _images_root(tmp_path, {"a": np.zeros((2, 2, 3), np.uint8), "b": np.full((14, 14, 3), 40, np.uint8)})
    common = ["--datasets", "Set5", "--scales", "2", "--data-root", root]
    code, _, err = _run(["run", "--methods", "bicubic", *common, "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err)  # a: nothing left after the shave; b: 10x10 after it, SSIM needs 11x11
    assert "skipping a: 2x2" in err and "border shave leaves nothing" in err and "SSIM needs 11x11 pixels" in err
    assert "no image is large enough for scale 2" in err and not (tmp_path / "o" / "results.json").exists()
    code, _, err = _run(["analyze", "equivariance", "--methods", "bicubic", *common, "--out", tmp_path / "eq"], capsys)
    assert code == 0 and "skipping a: 2x2" in err  # EQ_S has no SSIM: b is analysed, a skipped
    (root / "Set5" / "b.png").unlink()
    code, _, err = _run(["analyze", "equivariance", "--methods", "bicubic", *common, "--out", tmp_path / "eq2"], capsys)
    _one_line_error(code, err)
    assert "all 1 images are too small" in err


def _png_header(path: Path, w: int, h: int, depth: int = 8) -> None:
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [10000, 20000])  # PIL: warning above 89.5 Mpx, error above twice that
def test_decompression_bomb(tmp_path, capsys, side):
    root = _images_root(tmp_path, {"ok": np.full((32, 32, 3), 90, np.uint8)})
    _png_header(root / "Set5" / "bomb.png", side, side)
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--data-root", root, "--out",
                         tmp_path / "o"], capsys)
    _one_line_error(code, err)
    assert "bomb.png: more than" in err and "decompression bombs" in err


def test_sixteen_bit_colour_is_warned(tmp_path):
    from eqbench.data.io import load_image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, (8, 8, 3)).astype(np.uint16)
    raw = b"".join(b"\0" + a[i].astype(">u2").tobytes() for i in range(8))
    p = tmp_path / "deep.png"

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with pytest.warns(eqbench.errors.EqbenchWarning, match="16-bit RGB image reduced to 8 bits"):
        img = load_image(p)
    assert img.dtype == np.uint8 and img.shape == (8, 8, 3)
    assert np.array_equal(img, (a >> 8).astype(np.uint8))  # PIL keeps the high byte
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "plain.png")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "plain.png")


def _results(tmp_path: Path, rows: list) -> Path:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"schema": "eqbench.results", "schema_version": 1, "provenance": {}, "config":
                             {"protocol": "matlab@1"}, "datasets": {}, "rows": rows, "analyses": {}}))
    return p


GOOD_ROW = {"kind": "eval", "method": "bicubic", "dataset": "Set5", "scale": [2.0, 2.0], "metric": "psnr-y",
            "value": 33.0, "n_images": 1, "protocol": "matlab@1", "images": {"a": 33.0}, "skipped": []}
BAD_ROWS = {
    "non-numeric value": {**GOOD_ROW, "value": "abc"},
    "null value": {**GOOD_ROW, "value": None},
    "missing scale": {k: v for k, v in GOOD_ROW.items() if k != "scale"},
    "scale of one factor": {**GOOD_ROW, "scale": [2.0]},
    "scale below 1": {**GOOD_ROW, "scale": [0.5, 0.5]},
    "string scale": {**GOOD_ROW, "scale": "2"},
    "missing method": {k: v for k, v in GOOD_ROW.items() if k != "method"},
    "numeric metric": {**GOOD_ROW, "metric": 3},
    "images not numbers": {**GOOD_ROW, "images": {"a": "x"}},
    "row not a mapping": [1, 2],
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_malformed_rows_in_report_compare_resume(tiny_root, tmp_path, capsys, kind):
    bad = _results(tmp_path, [GOOD_ROW, BAD_ROWS[kind]])
    (tmp_path / "g").mkdir()
    good = _results(tmp_path / "g", [GOOD_ROW])
    before = bad.read_bytes()
    for args in (["report", bad], ["report", bad, "--format", "md"], ["compare", bad, "--baseline", good],
                 ["compare", good, "--baseline", bad]):
        code, _, err = _run(args, capsys)
        _one_line_error(code, err)
        assert "row 1 is malformed" in err
    out = tmp_path / "o"
    out.mkdir()
    os.replace(bad, out / "results.json")
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--data-root", tiny_root, "--out", out,
                         "--resume"], capsys)
    _one_line_error(code, err)
    assert "row 1 is malformed" in err and (out / "results.json").read_bytes() == before


def test_text_pth_is_described_as_text(tmp_path, capsys, tiny_root):
    cases = {"notes.pth": b"these are my notes\n", "empty.pth": b"", "noise.pth": bytes(range(1, 200))}
    expect = {"notes.pth": "a text file, not a PyTorch checkpoint", "empty.pth": "it is empty",
              "noise.pth": "unknown format"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        code, _, err = _run(["run", "--methods", "liif", "--weights", f"liif={tmp_path / name}", "--datasets", "Set5",
                             "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
        _one_line_error(code, err)
        assert expect[name] in err and "needs code" not in err


def test_huge_scale_is_printed_readably(tiny_root, tmp_path, capsys):
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "1e300", "--data-root",
                         tiny_root, "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err)
    assert "x1e+300" in err and re.search(r"\d{20}", err) is None


def test_train_data_did_you_mean(tmp_path, capsys):
    code, _, err = _run(["train", "--method", "liif", "--train-data", "BSD86", "--out", tmp_path / "t"], capsys)
    _one_line_error(code, err)
    assert "did you mean 'BSD68'" in err


def _fill(folder: Path) -> None:
    """Fill the file system of `folder` to the last byte."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only; skipped otherwise, the monkeypatched test below covers the code path)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_run_report_analyze(tiny_root, small_disk, capsys):
    out = small_disk / "o"
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root",
                         tiny_root, "--out", out, "--no-report"], capsys)
    assert code == 0, err
    before = (out / "results.json").read_bytes()
    _fill(small_disk)
    for args in (["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "3", "--data-root", tiny_root,
                  "--out", out, "--resume"],
                 ["report", out / "results.json"],
                 ["analyze", "equivariance", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2",
                  "--data-root", tiny_root, "--out", out]):
        code, _, err = _run(args, capsys)
        _one_line_error(code, err)
        assert "No space left on device" in err
        assert (out / "results.json").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_write_errors_are_one_line(tiny_root, tmp_path, capsys, monkeypatch):
    """ENOSPC / EROFS / EACCES in the atomic writer (fsync fails): one line, the old file intact."""
    out = tmp_path / "o"
    assert _run(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root", tiny_root,
                 "--out", out, "--no-report"], capsys)[0] == 0
    before = (out / "results.json").read_bytes()
    for code_, text in ((errno.ENOSPC, "free disk space"), (errno.EROFS, "read-only"), (errno.EACCES, "permissions")):
        def fail(fd, code_=code_):
            raise OSError(code_, os.strerror(code_))

        monkeypatch.setattr(os, "fsync", fail)
        for args in (["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "3", "--data-root", tiny_root,
                      "--out", out, "--resume"], ["report", out / "results.json"],
                     ["compare", out / "results.json", "--baseline", out / "results.json", "--markdown",
                      tmp_path / "s.md"]):
            code, _, err = _run(args, capsys)
            _one_line_error(code, err)
            assert text in err
        monkeypatch.undo()
        assert (out / "results.json").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_figure_write_error_is_one_line(tiny_root, tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def fail(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail)
    code, _, err = _run(["analyze", "equivariance", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2",
                         "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err)
    assert "eq_s_Set5.png: No space left on device" in err


def test_load_method_rule(tmp_path):
    m = eqbench.load_method("lte")
    assert not m.training and m.method_name == "lte"
    for kwargs, msg in (({"weights": None}, "no weights"), ({"size": "paper"}, "the zoo's lte is size 'tiny'"),
                        ({"weights": tmp_path / "x.pth"}, "not found"), ({"device": "cuda:7"}, "cuda")):
        with pytest.raises(EqbenchError, match=msg):
            eqbench.load_method("lte", **kwargs)
    # a user checkpoint at its size loads exactly those weights
    from safetensors.torch import save_file

    ref = eqbench.create_method("liif", size="tiny")
    save_file(ref.state_dict(), str(tmp_path / "w.safetensors"))
    got = eqbench.load_method("liif", tmp_path / "w.safetensors", size="tiny")
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), got.state_dict().values()))
    assert type(eqbench.load_method("bicubic")).__name__ == "Bicubic"
    assert "RANDOM initialisation" in eqbench.create_method.__doc__
