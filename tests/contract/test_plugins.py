"""Methods from outside eqbench (issue 17): specs and entry points through the CLI, provenance, resume,
one clear line per broken plugin with results intact, a folder as a dataset, and the example package's CI."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from eqbench.results import load_results
from tests.helpers.cli import run_cli as _run
from tests.helpers.plugin_env import EXAMPLE, copy_example, plugin_env, read_pyproject

GOOD = '''
import torch.nn.functional as F
from torch import nn
import eqbench

class Bilinear(nn.Module):
    def forward(self, lr, out_size):
        return F.interpolate(lr, size=out_size, mode="bilinear", align_corners=False)

def make():
    """bilinear for the plugin tests"""
    return eqbench.wrap(Bilinear(), style="out_size")
'''

BAD = {
    "raises": ("def make():\n    return eqbench.wrap(Boom(), style='out_size')\n"
               "class Boom(nn.Module):\n    def forward(self, lr, out_size):\n"
               "        raise RuntimeError('kernel exploded')\n", "RuntimeError: kernel exploded"),
    "shape": ("class Half(eqbench.SRMethod):\n    def _upsample(self, lr, out_size):\n"
              "        return lr[:, :2]\ndef make():\n    return Half()\n", "expected a tensor"),
    "nan": ("class NaN(eqbench.SRMethod):\n    def _upsample(self, lr, out_size):\n"
            "        return F.interpolate(lr, size=out_size) * float('nan')\ndef make():\n    return NaN()\n",
            "holds NaN values"),
    "plain": ("def make():\n    return Bilinear()\n", "not an eqbench.SRMethod (a plain nn.Module"),
    "attr": ("", "has no attribute 'make'"),
}




@pytest.fixture
def plugdir(tmp_path, monkeypatch):
    d = tmp_path / "plugins"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    return d


def _module(plugdir, name: str, body: str) -> str:
    (plugdir / f"{name}.py").write_text(GOOD + body)
    return f"{name}:make"


def _cells(path):
    return {(r["method"], r["dataset"], tuple(r["scale"]), r["metric"]): r["value"] for r in load_results(path)["rows"]}


def test_spec_run_records_provenance_and_resume_sees_code_changes(plugdir, tiny_root, tmp_path, capsys):
    spec = _module(plugdir, "eqb_plug_prov", "")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"methods: [bicubic, {spec}]\ndatasets: [Set5]\nscales: [2, 1.5x4]\n")
    out = tmp_path / "out"
    base = ["run", "--config", cfg, "--data-root", tiny_root, "--out", out, "--no-report"]
    code, stdout, err = _run(base, capsys)
    assert code == 0, err
    doc = load_results(out / "results.json")
    p = doc["models"][spec]["plugin"]
    src = plugdir / "eqb_plug_prov.py"
    assert (p["spec"], p["origin"], p["module_file"]) == (spec, "spec", str(src.resolve()))
    assert p["module_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert len({r["method"] for r in doc["rows"]}) == 2 and len(doc["rows"]) == 12
    src.write_text(src.read_text() + "\n# changed\n")
    code, _, err = _run(base + ["--resume"], capsys)
    assert code == 2 and "plugin code" in err and spec in err


@pytest.mark.parametrize("kind", sorted(BAD))
def test_broken_plugin_is_one_line_exit_2_results_intact(kind, plugdir, tiny_root, tmp_path, capsys):
    good = _module(plugdir, "eqb_plug_ok", "")
    body, needle = BAD[kind]
    bad = _module(plugdir, f"eqb_plug_{kind}", body) if kind != "attr" else "eqb_plug_ok:nothing"
    needle = needle.replace("'make'", "'nothing'")
    out = tmp_path / "out"
    base = ["run", "--datasets", "Set5", "--scales", "2", "--data-root", tiny_root, "--out", out, "--no-report"]
    assert _run(base + ["--methods", good], capsys)[0] == 0
    before = _cells(out / "results.json")
    code, _, err = _run(base + ["--methods", good, bad, "--resume"], capsys)
    # One line per problem: a plugin that cannot run stops the run; a NaN cell is reported on its own line
    # (issue 21: the other cells go on) and the run ends with the count. Every line names the plugin.
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("eqbench: warning:")]
    assert code == 2 and lines and all(ln.startswith("eqbench: error:") for ln in lines), err
    assert len(lines) == (2 if kind == "nan" else 1) and "Traceback" not in err, err
    assert all(bad.split(":")[0] in ln for ln in lines) and needle in lines[0], lines
    assert _cells(out / "results.json") == before


def test_not_importable_fails_before_any_work(tmp_path, tiny_root, capsys):
    code, _, err = _run(["run", "--methods", "bicubic", "no_such_pkg.models:make", "--datasets", "Set5",
                         "--data-root", tiny_root, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "no_such_pkg.models:make" in err and "no module named 'no_such_pkg'" in err
    assert not (tmp_path / "o" / "results.json").exists()
    code, _, err = _run(["run", "--methods", "not a:spec!", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "package.module:attribute" in err


def test_entry_points_listed_with_origin_and_clashes_named(tmp_path, monkeypatch, capsys):
    from tests.helpers.plugin_env import fake_dist_info

    site = tmp_path / "site"
    fake_dist_info(site)
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(site))
    code, stdout, _ = _run(["methods"], capsys)
    line = next(x for x in stdout.splitlines() if x.startswith("mysr-implicit"))
    assert code == 0 and "[entry point of mysr 0.1.0 (mysr.models:make_implicit)]" in line
    assert "liif" in stdout and "[built-in]" in stdout
    clash = tmp_path / "clash"
    d = clash / "other-1.0.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")
    (d / "entry_points.txt").write_text("[eqbench.methods]\nliif = other.models:make\n")
    monkeypatch.syspath_prepend(str(clash))
    code, _, err = _run(["methods"], capsys)
    assert code == 2 and "entry point of other 1.0" in err and "built-in method 'liif'" in err
    (d / "entry_points.txt").write_text("[eqbench.methods]\nother-net = other.models:make\n")
    code, stdout, _ = _run(["methods"], capsys)  # a package that does not import: its row says so, the rest lists
    assert code == 0 and "mysr-implicit" in stdout
    assert "other-net    (broken plugin) cannot import the entry point of other 1.0" in stdout
    code, _, err = _run(["methods", "other-net"], capsys)
    assert code == 2 and "no module named 'other'" in err


def test_analyses_on_a_plugin_with_taps(tiny_root, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLE))  # the profile's memory worker is a fresh process
    spec, out = "mysr.models:make_implicit", tmp_path / "a"
    common = ["--datasets", "Set5", "--data-root", tiny_root, "--out", out]
    code, _, err = _run(["analyze", "equivariance", "--methods", spec, "--scales", "2", "3", *common], capsys)
    assert code == 0, err
    code, _, err = _run(["analyze", "cka", "--methods", spec, "--scales", "2", "3", "--crops", "8",
                         "--batch-size", "4", "--crop-size", "16", *common], capsys)
    assert code == 0, err
    code, stdout, err = _run(["analyze", "profile", "--methods", spec, "--scales", "2", "--input-sizes", "16",
                              "--memory-input", "16", "--no-timing", *common], capsys)
    assert code == 0, err
    doc = load_results(out / "results.json")
    eq = [r for r in doc["rows"] if r["kind"] == "equivariance" and r["method"] == spec]
    assert len(eq) == 2 and all(r["value"] > 0 for r in eq)
    cka = [e for e in doc["analyses"]["cka"] if e.get("method") == spec and e["kind"] == "layers-across-scales"]
    assert cka and cka[0]["xlabels"] == ["net.encoder", "net.decoder.1"]
    assert all(p.endswith((".png", ".svg")) and ":" not in p.rsplit("/", 1)[1] for p in cka[0]["figures"])
    prof = doc["analyses"]["profile_details"][f"{spec}@paper"]
    assert prof["params"]["total"] == 16 * 3 * 9 + 16 + 16 * 16 * 9 + 16 + 20 * 32 + 32 + 32 * 3 + 3
    assert prof["flops"][0]["flops"] > 0 and prof["memory"]["peak_bytes"] > 0
    code, _, err = _run(["report", out / "results.json", "-o", tmp_path / "r.html"], capsys)
    assert code == 0, err
    assert spec in (tmp_path / "r.html").read_text()
    code, _, err = _run(["analyze", "cka", "--methods", "mysr.models:make_bilinear", "--scales", "2", "3",
                         "--crops", "8", "--batch-size", "4", "--crop-size", "16", *common], capsys)
    assert code == 2 and "taps=" in err


def test_folder_dataset_scores_like_the_named_set(tiny_root, tmp_path, capsys):
    outs = {}
    for label, ds in (("name", "Set5"), ("path", tiny_root / "Set5")):
        outs[label] = tmp_path / label
        code, _, err = _run(["run", "--methods", "bicubic", "--datasets", ds, "--scales", "2", "3.5",
                             "--data-root", tiny_root, "--out", outs[label], "--no-report"], capsys)
        assert code == 0, err
    assert _cells(outs["name"] / "results.json") == _cells(outs["path"] / "results.json")
    a, b = (load_results(outs[k] / "results.json")["datasets"]["Set5"] for k in ("name", "path"))
    assert a["digest"] == b["digest"] and b["folder"] == str((tiny_root / "Set5").resolve())
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", "Set5", tiny_root / "Set5", "--data-root",
                         tiny_root, "--out", tmp_path / "both"], capsys)
    assert code == 2 and "both named 'Set5'" in err
    other = tmp_path / "elsewhere" / "Set5"
    other.mkdir(parents=True)
    (other / "im0.png").write_bytes((tiny_root / "Set5" / "im0.png").read_bytes())
    code, _, err = _run(["run", "--methods", "bicubic", "--datasets", other, "--scales", "2", "--data-root", tiny_root,
                         "--out", outs["name"], "--resume"], capsys)
    assert code == 2 and "holds Set5 results from the folder" in err  # another folder of the same name
    cfg = tiny_root.parent / "run.yaml"
    cfg.write_text(f"methods: [bicubic]\ndatasets: [./{tiny_root.name}/Set5]\nscales: [2, 3.5]\n")
    code, _, err = _run(["run", "--config", cfg, "--out", tmp_path / "yaml", "--no-report"], capsys)
    assert code == 0, err  # a folder in a YAML config is relative to the file
    assert _cells(tmp_path / "yaml" / "results.json") == _cells(outs["name"] / "results.json")


def test_folder_dataset_is_recursive_and_names_must_be_unique(tiny_root, tmp_path):
    from eqbench.data.datasets import locate

    (tiny_root / "Set5" / "sub").mkdir()
    (tiny_root / "Set5" / "im0.png").rename(tiny_root / "Set5" / "sub" / "x.png")
    st = locate(str(tiny_root / "Set5"))
    assert st.spec.name == "Set5" and [p.name for p in st.files] == ["im1.png", "im2.png", "x.png"]
    (tiny_root / "Set5" / "sub" / "im1.bmp").write_bytes((tiny_root / "Set5" / "im1.png").read_bytes())
    with pytest.raises(Exception, match="share the image name 'im1'"):
        locate(str(tiny_root / "Set5"))
    with pytest.raises(Exception, match="dataset folder not found"):
        locate(str(tmp_path / "nowhere"))


def test_example_ci_script_passes_on_a_clean_copy_and_fails_when_the_model_changes(tmp_path):
    proj = copy_example(tmp_path / "plugin")
    env = plugin_env(tmp_path / "site", proj)
    ok = subprocess.run(["sh", str(proj / "ci.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "18 within tolerance" in ok.stdout
    models = proj / "mysr" / "models.py"
    src = models.read_text()
    assert 'mode="bilinear", align_corners=False)' in src
    models.write_text(src.replace('size=out_size, mode="bilinear"', 'size=out_size, mode="bicubic"'))
    bad = subprocess.run(["sh", str(proj / "ci.sh")], env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    changed = [ln for ln in bad.stdout.splitlines() if ln.startswith(("improved", "regressed"))]
    assert changed and all("mysr-bilinear" in ln for ln in changed)
    prov = load_results(proj / "runs" / "ci" / "results.json")["models"]["mysr-implicit"]["plugin"]
    assert (prov["origin"], prov["spec"], prov["package"], prov["package_version"]) == (
        "entry point", "mysr.models:make_implicit", "mysr", "0.1.0")
    assert prov["module_file"] == str((proj / "mysr" / "models.py").resolve())


def test_example_readme_commands_match_the_package():
    ci = (EXAMPLE / "ci.sh").read_text()
    assert len([ln for ln in ci.splitlines() if ln.strip()]) <= 10
    base = json.loads((EXAMPLE / "baseline.json").read_text())
    assert sorted({r["method"] for r in base["rows"]}) == ["mysr-bilinear", "mysr-implicit"]
    eps = read_pyproject()["entry-points"]["eqbench.methods"]
    assert eps == {"mysr-implicit": "mysr.models:make_implicit", "mysr-bilinear": "mysr.models:make_bilinear"}
