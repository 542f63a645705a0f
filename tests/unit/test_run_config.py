"""The run configuration: typed AnalysisOptions (one set of defaults, validated before any work) and the
one job runner both `eqbench run` and `eqbench analyze` go through."""

from __future__ import annotations

import dataclasses
import json

import pytest

from eqbench.cli import main
from eqbench.errors import EqbenchError
from eqbench.run.config import AnalysisOptions, build_analyze_config, build_config, load_yaml
from eqbench.scales import Scale


def test_one_set_of_defaults_and_two_presets():
    full, quick = AnalysisOptions.full(), AnalysisOptions.quick()
    assert full == AnalysisOptions()  # `eqbench analyze`'s sizes are the field defaults
    assert (full.crops, full.batch_size, full.eq_crop, full.min_measurements) == (64, 16, None, 3)
    assert (quick.crops, quick.batch_size, quick.eq_crop, quick.min_measurements) == (16, 8, 128, 1)
    assert quick.memory_scale == full.memory_scale == Scale(4.0, 4.0) and quick.timing_limit == 2
    changed = AnalysisOptions.quick(crops=32, memory_scale="2.5", input_sizes=[16, 32])
    assert (changed.crops, changed.memory_scale, changed.input_sizes, changed.eq_crop) == (32, Scale(2.5, 2.5),
                                                                                          (16, 32), 128)


@pytest.mark.parametrize("values, match", [
    ({"crops": 2}, "--crops must be at least 4, got 2"),
    ({"eq_crop": "big"}, "--eq-crop must be at least 8, got 'big'"),
    ({"batch_size": True}, "--batch-size must be at least 4"),
    ({"input_sizes": [16, 0]}, "--input-sizes must be positive"),
    ({"min_run_time": 0}, "--min-run-time must be a positive number of seconds"),
    ({"timing": "no"}, "--timing must be true or false"),
    ({"crop": 3}, "unknown analysis option 'crop'"),
    ({"memory_scale": "0.5"}, "scale"),
])  # fmt: skip
def test_bad_values_are_one_clear_error(values, match):
    with pytest.raises(EqbenchError, match=match):
        AnalysisOptions.quick(**values)


def test_yaml_options_are_validated_when_the_file_is_read(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("analysis_options: {crops: 2}\n")
    with pytest.raises(EqbenchError, match="--crops must be at least 4, got 2 .*analysis_options"):
        load_yaml(f)
    f.write_text("analysis_options: [crops]\n")
    with pytest.raises(EqbenchError, match="analysis_options must be a mapping"):
        load_yaml(f)


def test_a_bad_analysis_option_fails_before_the_evaluation(tmp_path, tiny_root, capsys):
    # Before: the options were a loose bag checked when the analyses started, after the whole evaluation.
    cfg = tmp_path / "run.yaml"
    cfg.write_text("analysis_options: {batch_size: 2}\n")
    out = tmp_path / "out"
    code = main(["run", "--config", str(cfg), "--methods", "bicubic", "--datasets", "Set5", "--scales", "2",
                 "--analyses", "cka", "--data-root", str(tiny_root), "--out", str(out)])
    assert code == 2 and "--batch-size must be at least 4" in capsys.readouterr().err
    assert not out.exists()


def test_run_config_carries_typed_options():
    cfg = build_config({"methods": ["bicubic"], "datasets": ["Set5"], "out": "o", "scales": ["2"]})
    assert cfg.analysis_options == AnalysisOptions.quick() and cfg.evaluate
    assert cfg.to_dict()["analysis_options"]["memory_scale"] == [4.0, 4.0]
    acfg = build_analyze_config("profile", {"methods": ["bicubic"], "datasets": ["Set5"], "out": "o",
                                            "crops": 8, "memory_scale": "3"})
    assert acfg.analyses == ("profile",) and not acfg.evaluate and not acfg.report
    assert acfg.analysis_options == AnalysisOptions.full(crops=8, memory_scale="3")


@pytest.mark.parametrize("argv", [
    ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--out", "o"],
    ["analyze", "equivariance", "--methods", "bicubic", "--datasets", "Set5", "--eq-crop", "16", "--out", "o"],
])  # fmt: skip
def test_run_and_analyze_go_through_the_one_job_runner(monkeypatch, argv):
    import eqbench.run.job as job

    seen = []
    monkeypatch.setattr(job, "run_job", lambda cfg: seen.append(cfg))
    assert main(argv) == 0
    (cfg,) = seen
    assert cfg.methods == ("bicubic",) and cfg.evaluate == (argv[0] == "run")
    assert cfg.analysis_options.eq_crop == (16 if argv[0] == "analyze" else 128)


def test_between_methods_can_be_switched_off(tmp_path, tiny_root):
    from eqbench.run.job import run_job

    cli = {"methods": ["liif", "lte"], "size": "tiny", "random_init": True, "datasets": ["Set5"],
           "data_root": str(tiny_root), "out": str(tmp_path / "o"), "scales": ["2", "3"], "crops": 4,
           "crop_size": 8, "batch_size": 4}
    cfg = build_analyze_config("cka", cli, progress=False)
    off = dataclasses.replace(cfg, analysis_options=dataclasses.replace(cfg.analysis_options, between_methods=False))
    run_job(off)
    kinds = {e["kind"] for e in json.loads((tmp_path / "o" / "results.json").read_text())["analyses"]["cka"]}
    assert kinds == {"layers-across-scales", "layer-by-layer"}
    run_job(cfg)
    kinds = {e["kind"] for e in json.loads((tmp_path / "o" / "results.json").read_text())["analyses"]["cka"]}
    assert "between-methods" in kinds
