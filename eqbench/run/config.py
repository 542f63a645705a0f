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
    "analysis_options": {}, "results_name": "results.json",
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
    data = check_types(data, p)
    # Relative paths in the file are relative to the file, so a config works from any folder.
    for k in ("out", "data_root"):
        if data.get(k) is not None:
            data[k] = str((p.parent / str(data[k])).resolve()) if not Path(str(data[k])).is_absolute() else data[k]
    data["weights"] = {str(m): str(v if Path(str(v)).is_absolute() else (p.parent / str(v)).resolve())
                       for m, v in (data.get("weights") or {}).items()}  # fmt: skip
    data["scales"] = [str(s) for s in data.get("scales", DEFAULTS["scales"])]
    return data


# The type of every key a YAML file may set: "names" is a name or a list of names, "scales" a scale or a
# list of scales (2, 2.75, "1.5x4" or [1.5, 4]), "path" a string; None is allowed where the default is None.
OPTION_TYPES: dict[str, str] = {
    "methods": "names", "datasets": "names", "scales": "scales", "protocol": "str", "size": "str",
    "weights": "weights", "limit": "int", "device": "str", "seed": "int", "out": "path", "data_root": "path",
    "random_init": "bool", "analyses": "names", "report": "bool", "analysis_options": "mapping",
    "results_name": "str",
}  # fmt: skip
ANALYSIS_OPTION_TYPES: dict[str, str] = {
    "eq_crop": "int", "crops": "int", "crop_size": "int", "batch_size": "int", "input_sizes": "ints",
    "memory_input": "int", "memory_scale": "scale", "timing_scale": "scale", "min_run_time": "number",
    "min_measurements": "int", "timing": "bool", "timing_limit": "int",
}  # fmt: skip
_WHAT = {"names": "a name or a list of names", "scales": "a scale (2, 2.75, 1.5x4) or a list of scales",
         "str": "a string", "path": "a path (a string; quote it)", "int": "a whole number",
         "bool": "true or false", "mapping": "a mapping of option names to values", "ints": "a list of whole "
         "numbers", "scale": "a scale (2, 2.75, 1.5x4)", "number": "a number",
         "weights": "a mapping METHOD: PATH"}  # fmt: skip


def _is_scale(v) -> bool:
    if isinstance(v, list):
        return len(v) == 2 and all(_is_number(x) for x in v)
    return _is_number(v) or isinstance(v, str)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fits(kind: str, v) -> bool:
    checks = {
        "names": lambda: isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v)),
        "scales": lambda: _is_scale(v) or (isinstance(v, list) and bool(v) and all(_is_scale(x) for x in v)),
        "str": lambda: isinstance(v, str), "path": lambda: isinstance(v, str) and bool(v.strip()),
        "int": lambda: isinstance(v, int) and not isinstance(v, bool), "bool": lambda: isinstance(v, bool),
        "mapping": lambda: isinstance(v, dict), "scale": lambda: _is_scale(v), "number": lambda: _is_number(v),
        "ints": lambda: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, list) and bool(v) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v)),
        "weights": lambda: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
    }  # fmt: skip
    return checks[kind]()


def check_types(data: dict, path: Path) -> dict:
    """Every key of a YAML run configuration checked against OPTION_TYPES (one error naming the key, the
    value and the expected type); returns the data with single names/scales turned into lists."""
    for key, v in data.items():
        kind = OPTION_TYPES[key]
        if v is None and DEFAULTS.get(key) is None:
            continue
        if not _fits(kind, v):
            raise EqbenchError(f"{path}: {key} must be {_WHAT[kind]}, got {v!r}")
    for key, v in (data.get("analysis_options") or {}).items():
        if key not in ANALYSIS_OPTION_TYPES:
            raise unknown_name(f"analysis option in {path}:", key, ANALYSIS_OPTIONS)
        kind = ANALYSIS_OPTION_TYPES[key]
        if not ((v is None and key in ("eq_crop", "timing_limit")) or _fits(kind, v)):
            raise EqbenchError(f"{path}: analysis_options.{key} must be {_WHAT[kind]}, got {v!r}")
    out = dict(data)
    for key in ("methods", "datasets", "scales", "analyses"):
        v = out.get(key)
        if v is not None and not isinstance(v, list):  # `scales: [1.5, 4]` is two scales; one pair: [[1.5, 4]]
            out[key] = [v]
    if isinstance(out.get("scales"), list):
        out["scales"] = [f"{x[0]}x{x[1]}" if isinstance(x, list) else x for x in out["scales"]]
        _parse_all(out["scales"], path, "scales")
    for key in ("memory_scale", "timing_scale"):
        if key in (out.get("analysis_options") or {}):
            _parse_all([out["analysis_options"][key]], path, f"analysis_options.{key}")
    return out


def _parse_all(values: list, path: Path, key: str) -> None:
    """Parse every scale of the file now, so a bad one is an error even where the command line overrides it."""
    from ..scales import parse_scale

    for v in values:
        try:
            parse_scale(v)
        except EqbenchError as e:
            raise EqbenchError(f"{path}: {key}: {e}") from None


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
    from ..devices import check_device
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
    device = check_device(o["device"])
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
        data_root=o["data_root"], limit=o["limit"], device=device, seed=o["seed"], resume=bool(o["resume"]),
        force=bool(o["force"]), analyses=analyses, analysis_options=tuple(sorted(o["analysis_options"].items())),
        report=o["report"], progress=progress, config_file=config_file, results_name=_results_name(o),
    )  # fmt: skip


def _results_name(o: dict) -> str:
    name = str(o["results_name"])
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise EqbenchError(f"--results-name must be a plain file name ending in .json, got {name!r}")
    return name
