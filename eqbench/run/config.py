"""The run configuration: one frozen object built at the CLI edge from CLI > YAML file > defaults.

A YAML file (`eqbench run --config run.yaml`) uses the long option names with underscores, e.g.

    methods: [liif, lte]
    datasets: [Set5, Set14]
    scales: [2, 3, 4, 6, 1.55, 2.75, 1.5x4]
    weights: {liif: runs/liif/final.safetensors}
    analyses: [equivariance, cka]
    analysis_options: {crops: 32}

Every option given on the command line wins over the file; unknown keys are errors naming the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EqbenchError, unknown_name
from ..protocol import EvalProtocol
from ..scales import Scale
from .models import ModelSpec

ANALYSES = ("equivariance", "cka", "profile")
DEFAULTS: dict = {
    "methods": None, "datasets": None, "scales": ["2", "3", "4"], "protocol": "matlab", "size": None,
    "weights": {}, "limit": None, "device": "cpu", "seed": 0, "out": None, "data_root": None,
    "random_init": False, "resume": False, "force": False, "analyses": None, "report": True,
    "analysis_options": {}, "results_name": "results.json", "cell_cache": None,
}  # fmt: skip
# AnalysisConfig fields a YAML file may set under analysis_options.
ANALYSIS_OPTIONS = ("eq_crop", "crops", "crop_size", "batch_size", "input_sizes", "memory_input",
                    "memory_scale", "timing_scale", "min_run_time", "min_measurements", "timing", "timing_limit")


@dataclass(frozen=True)
class RunConfig:
    models: tuple[ModelSpec, ...]
    datasets: tuple[str, ...]
    scales: tuple[Scale, ...]
    protocol: EvalProtocol
    out: Path
    data_root: str | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    force: bool = False
    analyses: tuple[str, ...] = ()
    analysis_options: tuple[tuple[str, object], ...] = ()
    report: bool = True
    progress: bool = True
    config_file: str | None = None
    results_name: str = "results.json"
    cell_cache: str | None = None  # folder of cached cells (eqbench/run/cells.py); None: evaluate every cell

    @property
    def results_path(self) -> Path:
        return self.out / self.results_name

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m.method for m in self.models)

    def to_dict(self) -> dict:
        return {
            "methods": list(self.methods), "models": {m.method: {"size": m.size, "source": m.source,
                                                                 "weights": m.weights, "options": dict(m.options)}
                                                      for m in self.models},
            "datasets": list(self.datasets), "scales": [s.as_list() for s in self.scales],
            "protocol": self.protocol.id, "out": str(self.out), "data_root": self.data_root, "limit": self.limit,
            "device": self.device, "seed": self.seed, "analyses": list(self.analyses),
            "analysis_options": dict(self.analysis_options), "config_file": self.config_file,
            "cell_cache": self.cell_cache,
        }  # fmt: skip


def load_yaml(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise EqbenchError(f"run configuration file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise EqbenchError(f"{p} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise EqbenchError(f"{p} must be a mapping of option names to values, got {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    for k in data:
        if k not in DEFAULTS or k in ("resume", "force"):
            raise unknown_name(f"option in {p}:", k, [d for d in DEFAULTS if d not in ("resume", "force")])
    for k in ("methods", "datasets", "scales", "analyses"):
        if isinstance(data.get(k), (str, int, float)):
            data[k] = [data[k]]
    if "weights" in data and not isinstance(data["weights"], dict):
        raise EqbenchError(f"{p}: weights must be a mapping METHOD: PATH")
    for k in data.get("analysis_options") or {}:
        if k not in ANALYSIS_OPTIONS:
            raise unknown_name(f"analysis option in {p}:", k, ANALYSIS_OPTIONS)
    # Relative paths in the file are relative to the file, so a config works from any folder.
    for k in ("out", "data_root", "cell_cache"):
        if data.get(k) is not None:
            data[k] = str((p.parent / str(data[k])).resolve()) if not Path(str(data[k])).is_absolute() else data[k]
    data["weights"] = {str(m): str(v if Path(str(v)).is_absolute() else (p.parent / str(v)).resolve())
                       for m, v in (data.get("weights") or {}).items()}  # fmt: skip
    data["scales"] = [str(s) for s in data.get("scales", DEFAULTS["scales"])]
    return data


def merge(cli: dict, file: dict) -> dict:
    """CLI (values that are not None) > file > defaults."""
    out = dict(DEFAULTS)
    out.update({k: v for k, v in file.items() if v is not None})
    out.update({k: v for k, v in cli.items() if v is not None and k in DEFAULTS})
    return out


def parse_analyses(items: list[str] | None, everything: bool) -> tuple[str, ...]:
    """`None` means the default: all analyses for `--methods all` (the main job), none otherwise."""
    if items is None:
        return ANALYSES if everything else ()
    if list(items) == ["none"]:
        return ()
    if list(items) == ["all"]:
        return ANALYSES
    for a in items:
        if a not in ANALYSES:
            raise unknown_name("analysis", a, ANALYSES)
    return tuple(dict.fromkeys(items))


def parse_weights(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for it in items:
        if "=" not in it:
            raise EqbenchError(f"--weights takes METHOD=PATH, got {it!r}")
        k, v = it.split("=", 1)
        out.append((k.strip(), v.strip()))
    return tuple(out)


def build_config(cli: dict, *, config_file: str | None = None, progress: bool = True) -> RunConfig:
    """The frozen RunConfig from CLI values (None = not given) > the YAML file > defaults.

    Every name is validated here, before any work.
    """
    from ..data.datasets import default_datasets
    from ..protocol import get_protocol
    from ..scales import parse_scale
    from .models import resolve_models

    cli = {**cli, "weights": dict(parse_weights(cli["weights"])) if cli.get("weights") else None}
    file = load_yaml(config_file) if config_file else {}
    o = merge(cli, file)
    if not o["methods"]:
        raise EqbenchError("no methods: pass --methods NAME ... (or 'all'), or give `methods:` in --config")
    if o["limit"] is not None and o["limit"] < 1:
        raise EqbenchError("--limit must be a positive number of images")
    protocol = get_protocol(o["protocol"])
    scales = tuple(dict.fromkeys(parse_scale(str(s)) for s in o["scales"]))
    analyses = parse_analyses(o["analyses"], list(o["methods"]) == ["all"])
    specs = resolve_models(o["methods"], weights=o["weights"], size=o["size"], random_init=o["random_init"])
    if not specs:
        raise EqbenchError("no method left to run (see the warnings above)")
    datasets = o["datasets"] or default_datasets(o["data_root"])
    out = Path(o["out"]) if o["out"] else Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S")
    return RunConfig(
        models=tuple(specs), datasets=tuple(dict.fromkeys(datasets)), scales=scales, protocol=protocol, out=out,
        data_root=o["data_root"], limit=o["limit"], device=o["device"], seed=o["seed"], resume=bool(o["resume"]),
        force=bool(o["force"]), analyses=analyses, analysis_options=tuple(sorted(o["analysis_options"].items())),
        report=o["report"], progress=progress, config_file=config_file, results_name=_results_name(o),
        cell_cache=str(Path(o["cell_cache"]).expanduser()) if o["cell_cache"] else None,
    )  # fmt: skip


def _results_name(o: dict) -> str:
    name = str(o["results_name"])
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise EqbenchError(f"--results-name must be a plain file name ending in .json, got {name!r}")
    return name
