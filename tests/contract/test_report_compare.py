"""`eqbench report` and `eqbench compare` on small results files made by the runner."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from PIL import Image

from eqbench.cli import main
from eqbench.report.tables import build_table
from eqbench.results import load_results, write_json_atomic


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for ds in ("Set5", "Set14"):
        (root / ds).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (64, 60, 3), dtype=np.uint8)).save(root / ds / f"{i}.png")
    out = tmp_path_factory.mktemp("run")
    code = main(["run", "--methods", "bicubic", "liif", "--random-init", "--size", "tiny", "--datasets", "Set5",
                 "Set14", "--scales", "2", "3", "6", "1.5x4", "--data-root", str(root), "--out", str(out)])
    assert code == 0
    return out / "results.json"


def _three_methods(doc: dict) -> dict:
    """`doc` plus a third method 'liif-copy' 0.1 above liif in every cell."""
    out = copy.deepcopy(doc)
    out["rows"] += [dict(r, method="liif-copy", value=r["value"] + 0.1) for r in doc["rows"] if r["method"] == "liif"]
    return out


def test_table_marks_best_and_second_only_with_three_methods(results):
    doc = load_results(results)
    t = build_table(doc, "psnr-y", reference="bicubic")
    assert t.methods == ["bicubic", "liif"] and t.reference == "bicubic"
    assert ("Set5", "6*") in t.columns and ("Set5", "2") in t.columns
    assert all(t.ranks(col) == {} for col in t.columns)  # two methods: no best/second colouring
    assert t.dataset_images() == {"Set5": "2 images", "Set14": "2 images"}
    t3 = build_table(_three_methods(doc), "psnr-y")
    for col in t3.columns:
        ranks = t3.ranks(col)
        assert ranks["liif-copy"] < ranks.get("liif", 3)
    # a random-init liif is below bicubic somewhere: those cells are flagged, bicubic's never
    below = [c for c in t.columns if t.below_reference("liif", c)]
    vals = {c: (t.get("liif", c), t.get("bicubic", c)) for c in below}
    assert below and all(v < b for v, b in vals.values())
    assert not any(t.below_reference("bicubic", c) for c in t.columns)


def test_html_report_is_self_contained(results, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(results), "-o", str(out)]) == 0
    html = out.read_text()
    assert "PSNR-Y (dB)" in html and "SSIM-Y" in html and '<td class="best' not in html  # two methods: no marks
    assert 'id="contents"' in html and "<details" in html and 'href="#table-psnr-y"' in html
    assert "Set5 (2 images)" in html and '<span class="flag random-init">random-init</span>' in html
    assert "below" in html and "Provenance" in html
    assert "data:image/svg+xml;base64," in html or "data:image/png;base64," in html
    # published numbers only next to paper-size methods: a random-init liif gets none, and the page says so
    assert "Published PSNR-Y" not in html and "Published numbers are not shown" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no network assets
    three = tmp_path / "three.json"
    write_json_atomic(three, _three_methods(load_results(results)))
    assert main(["report", str(three), "-o", str(out)]) == 0
    assert '<td class="best' in out.read_text() and '<td class="second' in out.read_text()


@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_table_formats(results, capsys, fmt):
    assert main(["report", str(results), "--format", fmt, "--metric", "ssim-y"]) == 0
    text = capsys.readouterr().out
    assert "bicubic" in text and "Set14 x1.5x4 (2 images)" in text and "liif [random-init]" in text
    assert main(["report", str(results), "--format", fmt, "--metric", "all"]) == 0
    text = capsys.readouterr().out
    for caption in ("psnr-y, protocol matlab@1", "ssim-y, protocol", "psnr-rgb, protocol", "Methods: size"):
        assert caption in text


def test_csv_full_precision_and_analysis_only(results, tmp_path, capsys):
    import csv
    import io

    doc = load_results(results)
    assert main(["report", str(results), "--format", "csv", "--metric", "psnr-y"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# psnr-y, protocol matlab@1")  # the caption, as a comment line (read_csv(comment="#"))
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("#")]
    col = rows[0].index("Set5 x2 (2 images)")
    got = float(next(r for r in rows if r[0] == "bicubic")[col])
    want = next(r["value"] for r in doc["rows"] if r["method"] == "bicubic" and r["dataset"] == "Set5"
                and r["scale"] == [2.0, 2.0] and r["metric"] == "psnr-y")
    assert got == want  # the stored float, not a rounded one
    only = copy.deepcopy(doc)  # an analysis-only file: EQ_S rows, no evaluation rows
    only["rows"] = [dict(r, kind="equivariance", metric="eq-s") for r in doc["rows"] if r["metric"] == "psnr-y"]
    p = tmp_path / "eq.json"
    write_json_atomic(p, only)
    for fmt in ("md", "csv"):
        assert main(["report", str(p), "--format", fmt, "--metric", "all"]) == 0
        assert "eq-s, protocol matlab@1" in capsys.readouterr().out
    assert main(["report", str(p), "--format", "md", "--metric", "ssim-y"]) == 2
    assert "--metric all" in capsys.readouterr().err


def test_rows_frame_pivots(results):
    from eqbench.results import rows_frame

    df = rows_frame(load_results(results))
    assert df["scale_h"].dtype == float and df["scale_w"].dtype == float
    asym = df.loc[df["scale"] == "1.5x4", ["scale_h", "scale_w"]]
    assert set(asym.itertuples(index=False, name=None)) == {(1.5, 4.0)}
    p = df[df["metric"] == "psnr-y"].pivot_table(index="method", columns=["dataset", "scale"], values="value")
    assert list(p.index) == ["bicubic", "liif"] and ("Set14", "1.5x4") in p.columns and p.shape == (2, 8)


def test_compare_gates_on_regressions(results, tmp_path, capsys):
    doc = load_results(results)
    assert main(["compare", str(results), "--baseline", str(results)]) == 0
    assert capsys.readouterr().out.startswith("PASS (exit 0): 0 regressed, 0 improved")
    worse = copy.deepcopy(doc)
    row = next(r for r in worse["rows"] if r["metric"] == "psnr-y" and r["method"] == "liif")
    row["value"] -= 0.2
    p = tmp_path / "worse.json"
    write_json_atomic(p, worse)
    md = tmp_path / "summary.md"
    assert main(["compare", str(p), "--baseline", str(results), "--tolerance", "0.05", "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL (exit 1): 1 regressed") and "-0.2000" in out
    assert md.read_text().startswith("**eqbench compare**")
    assert main(["compare", str(p), "--baseline", str(results), "--tolerance", "0.3"]) == 0
    # an SSIM drop is a regression too; a missing cell fails unless allowed
    fewer = copy.deepcopy(doc)
    fewer["rows"] = [r for r in fewer["rows"] if r["dataset"] != "Set14"]
    write_json_atomic(p, fewer)
    assert main(["compare", str(p), "--baseline", str(results)]) == 1
    assert main(["compare", str(p), "--baseline", str(results), "--allow-missing"]) == 0


def test_compare_fail_on_change_flags_improvements(results, tmp_path):
    better = load_results(results)
    row = next(r for r in better["rows"] if r["metric"] == "psnr-y" and r["method"] == "liif")
    row["value"] += 0.01
    p = tmp_path / "better.json"
    write_json_atomic(p, better)
    assert main(["compare", str(p), "--baseline", str(results), "--tolerance", "0.001"]) == 0
    assert main(["compare", str(p), "--baseline", str(results), "--tolerance", "0.001", "--fail-on-change"]) == 1
    assert main(["compare", str(p), "--baseline", str(results), "--tolerance", "0.02", "--fail-on-change"]) == 0


def test_compare_and_report_bad_input(results, tmp_path, capsys):
    doc = load_results(results)
    other = copy.deepcopy(doc)
    other["config"]["protocol"] = "liif@1"
    for r in other["rows"]:
        r["protocol"] = "liif@1"
    p = tmp_path / "other.json"
    write_json_atomic(p, other)
    assert main(["compare", str(p), "--baseline", str(results)]) == 1
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("FAIL (exit 1)") and " 0 improved" in first and " 0 regressed" in first
    assert "not comparable" in first and "protocol liif@1 vs matlab@1" in out
    trunc = tmp_path / "trunc.json"
    trunc.write_text(results.read_text()[:100])
    assert main(["report", str(trunc)]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    newer = dict(doc, schema_version=99)
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    assert main(["compare", str(tmp_path / "newer.json"), "--baseline", str(results)]) == 2
    assert "newer" in capsys.readouterr().err
    assert main(["report", str(results), "--format", "md", "--metric", "psnr"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_compare_never_scores_other_images(results, tmp_path, capsys):
    """A cell averaged over other images (fewer, or a different dataset digest) is 'not comparable', never
    improved or regressed, even when its value moved by decibels; the verdict is the first line."""
    doc = load_results(results)
    sub = copy.deepcopy(doc)
    for r in sub["rows"]:
        if r["dataset"] == "Set5":
            first = next(iter(r["images"]))
            r["images"] = {first: r["images"][first]}
            r["n_images"], r["value"] = 1, r["value"] + 3.0
    sub["datasets"]["Set5"]["digest"] = "0" * 64
    p = tmp_path / "sub.json"
    write_json_atomic(p, sub)
    assert main(["compare", str(p), "--baseline", str(results), "--format", "json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    n5 = sum(r["dataset"] == "Set5" for r in doc["rows"])
    assert rep["counts"]["not comparable"] == n5 and rep["counts"]["improved"] == 0
    assert rep["counts"]["within tolerance"] == len(doc["rows"]) - n5
    assert rep["exit_code"] == 1 and rep["reasons"] == [f"{n5} not comparable"]
    cell = next(c for c in rep["cells"] if c["dataset"] == "Set5")
    assert "1 images vs 2" in cell["reason"] and "dataset digest 00000000" in cell["reason"]
    assert main(["compare", str(p), "--baseline", str(results), "--format", "md"]) == 1
    assert capsys.readouterr().out.startswith("**eqbench compare**: FAIL (exit 1): 0 regressed, 0 improved")


def test_compare_per_metric_tolerances(results, tmp_path, capsys):
    doc = load_results(results)
    moved = copy.deepcopy(doc)
    for r in moved["rows"]:
        if r["method"] == "liif" and r["dataset"] == "Set5" and r["scale"] == [2.0, 2.0]:
            r["value"] -= {"psnr-y": 0.03, "ssim-y": 0.002}.get(r["metric"], 0.0)
    p = tmp_path / "moved.json"
    write_json_atomic(p, moved)
    # defaults: 0.05 dB for PSNR-Y (0.03 passes), 0.0005 for SSIM-Y (0.002 fails)
    assert main(["compare", str(p), "--baseline", str(results)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL (exit 1): 1 regressed") and "ssim-y" in out.splitlines()[3]
    assert main(["compare", str(p), "--baseline", str(results), "--tol", "ssim-y=0.003"]) == 0
    assert capsys.readouterr().out.startswith("PASS (exit 0)")
    assert main(["compare", str(p), "--baseline", str(results), "--tol", "psnr-y=0.01", "ssim-y=0.003"]) == 1
    assert main(["compare", str(p), "--baseline", str(results), "--tol", "psnr=0.1"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_method_cards_name_size_and_weights_source(results, tmp_path):
    from eqbench.report.methods import method_infos

    doc = load_results(results)
    infos = method_infos(doc, ["bicubic", "liif"])
    assert (infos["liif"].size, infos["liif"].source, infos["liif"].flag) == ("tiny", "random-init", "random-init")
    assert infos["bicubic"].reference and infos["bicubic"].params == 0 and infos["bicubic"].flag == ""
    doc["models"]["liif"] |= {"source": "plugin", "spec": "mypkg.models:make_liif", "size": "paper"}
    p = tmp_path / "plugin.json"
    write_json_atomic(p, doc)
    out = tmp_path / "plugin.html"
    assert main(["report", str(p), "-o", str(out)]) == 0
    card = out.read_text().split('id="card-liif"')[1].split("</div>")[0]
    assert "<dd>paper</dd>" in card and "plugin <code>mypkg.models:make_liif</code>" in card
