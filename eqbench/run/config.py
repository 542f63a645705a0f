"""The run configuration: one frozen object built at the CLI edge from CLI > YAML file > defaults.

A YAML file (`eqbench run --config run.yaml`) uses the long option names with underscores, e.g.

    methods: [liif, lte]
    datasets: [Set5, Set14]
    scales: [2, 3, 4, 6, 1.55, 2.75, 1.5x4]
    weights: {liif: runs/liif/final.safetensors}
    analyses: [equivariance, cka]
    analysis_options: {crops: 32}

Every option given on the command line wins over the file; unknown keys are errors naming the file.
The analyses' settings are one typed `AnalysisOptions` (the only place their defaults are written),
validated with the rest of the configuration, before any work starts: `eqbench analyze` starts from
`AnalysisOptions.full()`, the main job (`eqbench run`) from the smaller `AnalysisOptions.quick()`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import EqbenchError, unknown_name
from ..protocol import EvalProtocol
from ..scales import Scale, parse_scale
from .models import ModelSpec

ANALYSES = ("equivariance", "cka", "profile")
DEFAULTS: dict = {
    "methods": None, "datasets": None, "scales": ["2", "3", "4"], "protocol": "matlab", "size": None,
    "weights": {}, "limit": None, "device": "cpu", "seed": 0, "out": None, "data_root": None,
    "random_init": False, "resume": False, "force": False, "analyses": None, "report": True,
    "analysis_options": {}, "results_name": "results.json", "cell_cache": None,
}  # fmt: skip


@dataclass(frozen=True)
class AnalysisOptions:
    """How big the analyses are. The field defaults are `eqbench analyze`'s (`full()`)."""

    # equivariance: centre-crop each HR image to at most this side first (None: whole images). EQ_S
    # super-resolves x itself, so a 512^2 photo at x4 means a 2048^2 output; crops keep it affordable.
    eq_crop: int | None = None
    # cka: LR crops, their side, crops per minibatch, and whether every pair of methods is compared too
    crops: int = 64
    crop_size: int = 48
    batch_size: int = 16
    between_methods: bool = True
    # between-method CKA pairs: "all", or each method vs one method (its name; None: the first method)
    cka_pairs: str | None = None
    # profile: FLOPs at square LR inputs, peak memory at one input and scale, latency on dataset images
    input_sizes: tuple[int, ...] = (100,)
    memory_input: int = 100
    memory_scale: Scale = Scale(4.0, 4.0)
    timing_scale: Scale = Scale(4.0, 4.0)
    min_run_time: float = 0.2
    min_measurements: int = 3
    timing: bool = True
    timing_limit: int | None = None  # time on the first N images only (None: all, after `limit`)

    def __post_init__(self) -> None:
        for name, low in _LOWEST.items():
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise EqbenchError(f"{_flag(name)} must be at least {low}, got {v!r}{_yaml(name)}")
        if not self.input_sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                       for n in self.input_sizes):
            raise EqbenchError(f"{_flag('input_sizes')} must be positive, got {list(self.input_sizes)}"
                               f"{_yaml('input_sizes')}")
        if isinstance(self.min_run_time, bool) or not isinstance(self.min_run_time, (int, float)) \
                or not self.min_run_time > 0:
            raise EqbenchError(f"{_flag('min_run_time')} must be a positive number of seconds, "
                               f"got {self.min_run_time!r}{_yaml('min_run_time')}")
        for name in ("between_methods", "timing"):
            if not isinstance(getattr(self, name), bool):
                raise EqbenchError(f"{_flag(name)} must be true or false, got {getattr(self, name)!r}{_yaml(name)}")

    @classmethod
    def full(cls, **changes) -> AnalysisOptions:
        """`eqbench analyze`'s sizes."""
        return cls.from_mapping(changes)

    @classmethod
    def quick(cls, **changes) -> AnalysisOptions:
        """The main job's sizes: small enough that `eqbench run --methods all` stays within minutes on two
        CPU cores (a YAML `analysis_options:` block changes them)."""
        return cls.from_mapping({**_QUICK, **changes})

    @classmethod
    def from_mapping(cls, values: Mapping, base: AnalysisOptions | None = None, where: str = "") -> AnalysisOptions:
        """`base` (default: `full()`'s) with `values` (names as the fields; scales as text) replaced."""
        names = [f.name for f in dataclasses.fields(cls)]
        for k in values:
            if k not in names:
                raise unknown_name(f"analysis option{' in ' + where if where else ''}", k, names)
        v = dict(values)
        for k in ("memory_scale", "timing_scale"):
            if k in v and not isinstance(v[k], Scale):
                v[k] = parse_scale(v[k])
        if "input_sizes" in v:
            items = v["input_sizes"]
            v["input_sizes"] = tuple(items) if isinstance(items, (list, tuple)) else (items,)
        if isinstance(v.get("min_run_time"), int) and not isinstance(v["min_run_time"], bool):
            v["min_run_time"] = float(v["min_run_time"])
        return dataclasses.replace(base or cls(), **v)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d |= {"memory_scale": self.memory_scale.as_list(), "timing_scale": self.timing_scale.as_list(),
              "input_sizes": list(self.input_sizes)}
        return d


_QUICK = {"eq_crop": 128, "crops": 16, "crop_size": 48, "batch_size": 8, "input_sizes": (100,), "memory_input": 48,
          "min_run_time": 0.05, "min_measurements": 1, "timing_limit": 2}  # fmt: skip
_LOWEST = {"eq_crop": 8, "crops": 4, "crop_size": 1, "batch_size": 4, "memory_input": 1, "min_measurements": 1,
           "timing_limit": 1}  # fmt: skip


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _yaml(name: str) -> str:
    return f" (in a run's YAML file: analysis_options: {{{name}: ...}})"


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
    analysis_options: AnalysisOptions = AnalysisOptions()
    evaluate: bool = True  # False: only the analyses (`eqbench analyze`), added to results.json in `out`
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
            "analysis_options": self.analysis_options.to_dict(), "config_file": self.config_file,
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
    data = check_types(data, p)
    AnalysisOptions.from_mapping(data.get("analysis_options") or {}, where=f"{p}:")  # names and values, now
    # Relative paths in the file are relative to the file, so a config works from any folder.
    for k in ("out", "data_root", "cell_cache"):
        if data.get(k) is not None:
            data[k] = str((p.parent / str(data[k])).resolve()) if not Path(str(data[k])).is_absolute() else data[k]
    # A dataset given as a folder path (not a catalogue name) is relative to the file too.
    data["datasets"] = [str((p.parent / str(d)).resolve()) if _relative_folder(str(d)) else d
                        for d in data.get("datasets") or []] or None
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
    "eq_crop": "int", "crops": "int", "crop_size": "int", "batch_size": "int", "between_methods": "bool",
    "cka_pairs": "str",
    "input_sizes": "ints", "memory_input": "int", "memory_scale": "scale", "timing_scale": "scale",
    "min_run_time": "number", "min_measurements": "int", "timing": "bool", "timing_limit": "int",
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
    value and the expected type); returns the data with single names/scales turned into lists. The
    analysis options' names and ranges are checked by AnalysisOptions.from_mapping."""
    for key, v in data.items():
        kind = OPTION_TYPES[key]
        if v is None and DEFAULTS.get(key) is None:
            continue
        if not _fits(kind, v):
            raise EqbenchError(f"{path}: {key} must be {_WHAT[kind]}, got {v!r}")
    for key, v in (data.get("analysis_options") or {}).items():  # types here; names and ranges: AnalysisOptions
        kind = ANALYSIS_OPTION_TYPES.get(key)
        if kind and not ((v is None and key in ("eq_crop", "timing_limit")) or _fits(kind, v)):
            raise EqbenchError(f"{path}: analysis_options.{key} must be {_WHAT[kind]}, got {v!r}")
    out = dict(data)
    for key in ("methods", "datasets", "scales", "analyses"):
        v = out.get(key)
        if v is not None and not isinstance(v, list):  # `scales: [1.5, 4]` is two scales; one pair: [[1.5, 4]]
            out[key] = [v]
    if isinstance(out.get("scales"), list):
        out["scales"] = [f"{x[0]}x{x[1]}" if isinstance(x, list) else x for x in out["scales"]]
        _parse_all(out["scales"], path, "scales")
    return out


def _parse_all(values: list, path: Path, key: str) -> None:
    """Parse every scale of the file now, so a bad one is an error even where the command line overrides it."""
    from ..scales import parse_scale

    for v in values:
        try:
            parse_scale(v)
        except EqbenchError as e:
            raise EqbenchError(f"{path}: {key}: {e}") from None


def _relative_folder(d: str) -> bool:
    return ("/" in d or d.startswith((".", "~"))) and not Path(d).expanduser().is_absolute()


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
        force=bool(o["force"]), analyses=analyses,
        analysis_options=AnalysisOptions.quick(**(o["analysis_options"] or {})),
        report=o["report"], progress=progress, config_file=config_file, results_name=_results_name(o),
        cell_cache=str(Path(o["cell_cache"]).expanduser()) if o["cell_cache"] else None,
    )  # fmt: skip


def _results_name(o: dict) -> str:
    name = str(o["results_name"])
    if "/" in name or "\\" in name or not name.endswith(".json"):
        raise EqbenchError(f"--results-name must be a plain file name ending in .json, got {name!r}")
    return name


def build_analyze_config(analysis: str, cli: dict, *, progress: bool = True) -> RunConfig:
    """`eqbench analyze ANALYSIS`: the one analysis on the resolved models, added to results.json in `out`.

    `cli` holds the parsed options (None = not given; the analysis options by their field names).
    Every name and value is validated here, before any work.
    """
    from ..data.datasets import default_datasets
    from ..devices import check_device
    from ..protocol import get_protocol
    from .models import resolve_models

    if analysis not in ANALYSES:
        raise unknown_name("analysis", analysis, ANALYSES)
    if cli.get("limit") is not None and cli["limit"] < 1:
        raise EqbenchError(f"--limit must be at least 1, got {cli['limit']}")
    options = AnalysisOptions.full(**{f.name: cli[f.name] for f in dataclasses.fields(AnalysisOptions)
                                      if cli.get(f.name) is not None})
    out = Path(cli["out"])
    if out.exists() and not out.is_dir():
        raise EqbenchError(f"--out {out} exists and is not a folder")
    # EQ_S and CKA of untrained weights say nothing about a method: no silent random initialisation.
    specs = resolve_models(cli["methods"], weights=dict(parse_weights(cli.get("weights") or [])), size=cli.get("size"),
                           random_init=bool(cli.get("random_init")), fallback_random=analysis == "profile")
    if analysis == "cka" and list(cli["methods"]) == ["all"]:  # a parameter-free method has no layers to compare
        specs = [s for s in specs if s.source != "parameter-free"]
    methods = [s.method for s in specs]
    if options.cka_pairs not in (None, "all", *methods):
        raise EqbenchError(f"--cka-pairs takes 'all' or one of the --methods ({' '.join(methods)}), "
                           f"got {options.cka_pairs!r}")
    datasets = cli.get("datasets") or default_datasets(cli.get("data_root"))
    return RunConfig(
        models=tuple(specs), datasets=tuple(dict.fromkeys(datasets)),
        scales=tuple(dict.fromkeys(parse_scale(str(s)) for s in cli.get("scales") or DEFAULTS["scales"])),
        protocol=get_protocol(cli.get("protocol") or DEFAULTS["protocol"]), out=out, data_root=cli.get("data_root"),
        limit=cli.get("limit"), device=check_device(DEFAULTS["device"] if cli.get("device") is None else cli["device"]),
        seed=DEFAULTS["seed"] if cli.get("seed") is None else cli["seed"], analyses=(analysis,),
        analysis_options=options, evaluate=False, report=False, progress=progress,
    )  # fmt: skip
