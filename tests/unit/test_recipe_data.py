"""Every recipe trains on catalogue entries that exist; a missing set stops training with one prepare line."""

from __future__ import annotations

from eqbench.cli import main
from eqbench.data.datasets import load_catalog
from eqbench.method import list_methods, method_entry


def test_recipe_data_names_are_catalogue_entries():
    catalog = load_catalog()
    used = {}
    for method in list_methods():
        for name, r in method_entry(method).recipes.items():
            for phase in r["phases"]:
                for d in phase.get("data", []):
                    used.setdefault(d, []).append(f"{method}/{name}")
                    assert d in catalog, f"{method}/{name} trains on {d!r}, not in datasets.yaml"
                    assert catalog[d].role == "train", f"{d} is not a training set"
    assert {"DIV2K-train", "ImageNet-train", "DF2K"} <= set(used)
    assert catalog["ImageNet-train"].layout == "classes"


def test_paper_recipe_without_imagenet_one_line_exit_2(tmp_path, capsys):
    code = main(["train", "--method", "eqsr", "--recipe", "paper", "--data-root", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "prepare it with `eqbench datasets prepare ImageNet-train --from" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
