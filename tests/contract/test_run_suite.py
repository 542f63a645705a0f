"""`eqbench run` as the front door: YAML config (CLI > file > defaults), zoo weights, analyses, report."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import eqbench.zoo as zoo
from eqbench.errors import EqbenchError
from eqbench.results import load_results
from eqbench.run.config import DEFAULTS, load_yaml, merge, parse_analyses
from eqbench.run.models import resolve_models
from tests.helpers.cli import run_cli as _run


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch):
    """A zoo with one LIIF-tiny model (seeded random weights) in a temporary folder."""
    torch.manual_seed(0)
    import eqbench

    model = eqbench.create_method("liif", size="tiny")
    path = tmp_path / "zoo" / "liif-tiny.safetensors"
    path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    entry = zoo.ZooEntry(method="liif", size="tiny", file=str(path), sha256=zoo.sha256_file(path))
    monkeypatch.setattr(zoo, "_load", lambda: {"liif": entry})
    return entry


# --- configuration -----------------------------------------------------------------------------------


def test_yaml_merge_cli_over_file_over_defaults(tmp_path):
    f = tmp_path / "cfg" / "run.yaml"
    f.parent.mkdir()
    f.write_text("methods: [bicubic]\nscales: [2, 2.75, 1.5x4]\nlimit: 3\nout: res\nweights: {liif: w.safetensors}\n")
    file = load_yaml(f)
    assert file["scales"] == ["2", "2.75", "1.5x4"]
    assert file["out"] == str((f.parent / "res").resolve())  # relative to the file, not the cwd
    assert file["weights"] == {"liif": str((f.parent / "w.safetensors").resolve())}
    o = merge({"limit": 1, "scales": None, "seed": None}, file)
    assert o["limit"] == 1  # CLI wins
    assert o["scales"] == ["2", "2.75", "1.5x4"]  # file wins over the default
    assert o["seed"] == DEFAULTS["seed"] and o["protocol"] == "matlab"  # defaults fill the rest


@pytest.mark.parametrize("text, match", [
    ("methods: [bicubic]\nscale: [2]\n", "unknown option .*'scale'.*did you mean 'scales'"),
    ("methods: [bicubic\n", "not valid YAML at line"),
    ("- bicubic\n", "must be a mapping"),
    ("weights: [a]\n", "weights must be a mapping"),
    ("analysis_options: {crop: 3}\n", "unknown analysis option"),
])  # fmt: skip
def test_yaml_errors_name_the_file(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(EqbenchError, match=match):
        load_yaml(f)


def test_analyses_default_and_names():
    assert parse_analyses(None, everything=True) == ("equivariance", "cka", "profile")
    assert parse_analyses(None, everything=False) == ()
    assert parse_analyses(["none"], everything=True) == ()
    assert parse_analyses(["cka", "cka"], everything=False) == ("cka",)
    with pytest.raises(EqbenchError, match="did you mean 'equivariance'"):
        parse_analyses(["equivariant"], everything=False)


def test_cli_run_from_yaml_with_cli_override(tiny_root, tmp_path, capsys):
    f = tmp_path / "run.yaml"
    f.write_text(f"methods: [bicubic]\ndatasets: [Set5]\nscales: [2, 3]\ndata_root: {tiny_root}\nlimit: 1\n")
    out = tmp_path / "out"
    code, _, err = _run(["run", "--config", f, "--scales", "2", "--out", out, "--no-report"], capsys)
    assert code == 0, err
    doc = load_results(out / "results.json")
    assert {tuple(r["scale"]) for r in doc["rows"]} == {(2.0, 2.0)}  # CLI scales replaced the file's
    assert doc["config"]["limit"] == 1 and doc["config"]["config_file"] == str(f)
    assert not (out / "report.html").exists()


# --- models: user weights, zoo, random ---------------------------------------------------------------


def test_zoo_is_the_default_for_learned_methods(fake_zoo):
    spec = resolve_models(["liif"], weights={})[0]
    assert (spec.source, spec.size, spec.weights) == ("zoo", "tiny", str(fake_zoo.path))
    assert spec.describe()["sha256"] == fake_zoo.sha256
    user = resolve_models(["liif"], weights={"liif": str(fake_zoo.path)})[0]
    assert (user.source, user.size) == ("user", "paper")
    with pytest.raises(EqbenchError, match="no weights for liif at size paper"):
        resolve_models(["liif"], weights={}, size="paper")


def test_all_skips_methods_without_weights_with_a_warning(fake_zoo):
    with pytest.warns(UserWarning, match="skipping .*lte"):
        specs = resolve_models(["all"], weights={})
    assert [s.method for s in specs] == ["bicubic", "liif"]


def test_corrupt_or_missing_zoo_file_is_an_error_never_random(fake_zoo, tmp_path, tiny_root, capsys):
    data = bytearray(fake_zoo.path.read_bytes())
    data[-1] ^= 0xFF
    fake_zoo.path.write_bytes(bytes(data))
    args = ["run", "--methods", "liif", "--datasets", "Set5", "--data-root", tiny_root, "--out", tmp_path / "o"]
    code, _, err = _run(args, capsys)
    assert code == 2 and "corrupt" in err and str(fake_zoo.path) in err and "git checkout" in err
    assert not (tmp_path / "o" / "results.json").exists()
    fake_zoo.path.unlink()
    code, _, err = _run(args, capsys)
    assert code == 2 and "missing" in err and str(fake_zoo.path) in err


def test_run_with_analyses_and_report(fake_zoo, tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = tmp_path / "run.yaml"
    cfg.write_text("analysis_options: {eq_crop: 24, crops: 4, crop_size: 12, batch_size: 4, timing: false, "
                   "input_sizes: [16]}\n")
    code, _, err = _run(["run", "--config", cfg, "--methods", "bicubic", "liif", "--datasets", "Set5", "--scales",
                         "2", "3", "--limit", "2", "--analyses", "all", "--data-root", tiny_root, "--out", out,
                         "--no-progress"], capsys)  # fmt: skip
    assert code == 0, err
    doc = load_results(out / "results.json")
    kinds = {r.get("kind", "eval") for r in doc["rows"]}
    assert kinds == {"eval", "equivariance", "equivariance-ref"}
    eq_crops = [c for r in doc["rows"] if r.get("kind") == "equivariance" for c in r["crops"].values()]
    assert eq_crops and max(max(c) for c in eq_crops) <= 24  # EQ_S on centre crops (eq_crop)
    assert doc["models"]["liif"]["source"] == "zoo" and doc["models"]["liif"]["size"] == "tiny"
    assert doc["provenance"]["weights_sha256"] == {"liif": fake_zoo.sha256}
    assert {e["kind"] for e in doc["analyses"]["cka"]} >= {"layers-across-scales"}
    prof = doc["analyses"]["profile"]  # numbers, formatted only when rendered
    assert [(r["method"], r["size"]) for r in prof] == [("bicubic", "paper"), ("liif", "tiny")]
    assert all(isinstance(r["params"], int) and isinstance(r["flops"], int) for r in prof)
    cka_cfg = next(e for e in doc["analyses"]["cka"])["config"]
    assert cka_cfg["size"] == "tiny"  # the size of the zoo models used, not the preset default
    html = (out / "report.html").read_text()
    assert "<table" in html and "EQ_S" in html and ("data:image/png;base64" in html or "data:image/svg" in html)
    assert 'id="card-liif"' in html and "FLOPs and peak memory at" in html


def test_results_name(tiny_root, tmp_path, capsys):
    args = ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--limit", "1", "--data-root",
            tiny_root, "--out", tmp_path, "--results-name", "baseline.json"]  # fmt: skip
    assert _run(args, capsys)[0] == 0
    assert (tmp_path / "baseline.json").is_file() and (tmp_path / "baseline.html").is_file()
    code, _, err = _run(args[:-1] + ["../b.json"], capsys)
    assert code == 2 and "plain file name" in err


def test_resume_refuses_results_of_other_weights(fake_zoo, tiny_root, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["run", "--methods", "liif", "--datasets", "Set5", "--scales", "2", "--limit", "1", "--data-root",
            tiny_root, "--out", out, "--no-report"]  # fmt: skip
    assert _run(base, capsys)[0] == 0
    before = (out / "results.json").read_text()
    other = tmp_path / "other.safetensors"
    from safetensors.torch import load_file

    weights = load_file(str(fake_zoo.path))
    save_file({k: v + 0.01 for k, v in weights.items()}, str(other))
    code, _, err = _run(base + ["--resume", "--weights", f"liif={other}", "--size", "tiny"], capsys)
    assert code == 2 and "other weights" in err
    assert (out / "results.json").read_text() == before
    assert json.loads(before)["models"]["liif"]["sha256"] == fake_zoo.sha256
