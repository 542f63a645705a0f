"""results.json: a versioned schema with provenance and tidy rows, written atomically.

Layout:
  {"schema": "eqbench.results", "schema_version": 1,
   "provenance": {...versions, git, device, threads, seed, timestamps...},
   "config": {...the run configuration...},
   "datasets": {name: {"digest": sha256, "n_files": int, "source": str}},
   "rows": [{"method", "dataset", "scale": [sh, sw], "metric", "value", "n_images", "protocol",
             "images": {image: value}, "skipped": [image, ...], "kind": "eval"|analysis name}],
   "analyses": {...}}

Analysis rows and documents (`eqbench analyze`, eqbench/run/store.py):
  * kind "equivariance", metric "eq-s": mean EQ_S (dB) per method x dataset x scale; kind
    "equivariance-ref", metric "psnr-y": PSNR-Y of the same method, scale and crops; both carry
    "crops": {image: [H, W]}; analyses["equivariance"][dataset] = {"protocol", "curves": {method: {"scale",
    "eq-s", "psnr-y"}}, "figures", "max_db", "config", "provenance"}.
  * analyses["cka"]: a list of heatmap entries {"kind": "layers-across-scales" | "layer-by-layer" |
    "between-methods", "method" or "methods", "scales", "title", "matrix" (rows = ylabels, cols = xlabels),
    "ylabels", "xlabels", "n_crops", "estimator", "figures", "config", "provenance"}.
  * analyses["profile"]: a list of rows of numbers (the ArbSR Table 3 entries; formatted only when rendered)
    {"method", "size", "params", "memory_bytes", "memory_input", "memory_scale", "time_s", "time_dataset",
    "time_scale", "flops", "flops_input", "flops_scale", "device", "threads"} (files before 2026-12 hold
    display strings here; the report reads profile_details, which has always been numbers);
    analyses["profile_details"]["method@size"] =
    {"params": {"total", "trainable"}, "flops_unit", "flops": [{"lr", "out", "scale", "flops", "by_op",
    "by_module_formula"}], "latency": {...}, "memory": {...}, "config", "provenance"};
    analyses["profile_table"] = {"text", "methods"}.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from .errors import EqbenchError, output_error

SCHEMA = "eqbench.results"


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
SCHEMA_VERSION = 1


def new_results(provenance: dict, config: dict) -> dict:
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "provenance": provenance, "config": config,
            "datasets": {}, "rows": [], "analyses": {}}


def _clean(v):
    # JSON has no inf/nan: write them as strings a reader maps back.
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_json_atomic(path: str | os.PathLike, doc: dict) -> None:
    """Write via a temp file in the same folder + rename, so a reader never sees a partial file."""
    write_text_atomic(path, json.dumps(_clean(doc), indent=1) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically; a full disk or a read-only folder is one EqbenchError and leaves
    any previous file at `path` untouched."""
    path = Path(path)
    try:
        _write_text_atomic(path, text)
    except OSError as e:
        raise output_error(path, e) from None


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_results(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise EqbenchError(f"results file not found: {path}") from None
    except IsADirectoryError:
        raise EqbenchError(f"{path} is a folder; give the results.json in it") from None
    except PermissionError:
        raise EqbenchError(f"cannot read {path}: permission denied") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EqbenchError(f"{path} is corrupt or truncated (not valid JSON: {e}); re-run to regenerate it") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise EqbenchError(f"{path} is not an eqbench results file (no 'schema': {SCHEMA!r})")
    v = doc.get("schema_version")
    if not isinstance(v, int) or v > SCHEMA_VERSION:
        raise EqbenchError(f"{path} has results schema version {v}, newer than this eqbench reads "
                           f"({SCHEMA_VERSION}); upgrade eqbench")
    if not isinstance(doc.get("rows"), list):
        raise EqbenchError(f"{path} has no 'rows' list; the file is damaged")
    for i, row in enumerate(doc["rows"]):
        problem = row_problem(row)
        if problem:
            raise EqbenchError(f"{path}: row {i} is malformed ({problem}); the file is damaged: restore it or "
                               "re-run to regenerate it")
    return doc


_NON_FINITE = ("nan", "inf", "-inf")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def row_problem(row) -> str | None:
    """Why a results row cannot be read (None when it is well formed): every reader (report, compare,
    --resume, analyses) relies on these fields and types."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not a mapping"
    for key in ("method", "dataset", "metric", "protocol"):
        if not isinstance(row.get(key), str):
            return f"{key!r} is {'missing' if key not in row else repr(row[key])}, not a name"
    if "kind" in row and not isinstance(row["kind"], str):
        return f"'kind' is {row['kind']!r}, not a name"
    scale = row.get("scale")
    if not (isinstance(scale, list) and len(scale) == 2 and all(_number(x) and x >= 1 for x in scale)):
        return f"'scale' is {'missing' if 'scale' not in row else repr(scale)}, not [h, w] with factors >= 1"
    value = row.get("value")
    if not (_number(value) or value in _NON_FINITE):
        return f"'value' is {'missing' if 'value' not in row else repr(value)}, not a number"
    images = row.get("images", {})
    if not isinstance(images, dict) or not all(_number(v) or v in _NON_FINITE for v in images.values()):
        return "'images' is not a mapping of image names to numbers"
    return None


def scale_label(s) -> str:
    """A hashable label for a [h, w] scale: '2', '2.75', '1.5x4' (h x w), as `Scale.label` writes it."""
    from .scales import Scale

    return Scale(float(s[0]), float(s[1])).label()


def rows_frame(doc: dict):
    """The tidy rows as a pandas DataFrame: `scale` is a hashable label ('2', '1.5x4'), `scale_h` / `scale_w`
    the factors as floats, `value` a float (inf/nan restored), `kind` filled ('eval' for old rows).
    E.g. rows_frame(doc).pivot_table(index="method", columns=["dataset", "scale"], values="value")
    (filter `metric` and `kind` first)."""
    import pandas as pd

    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("images", "crops")} for r in doc["rows"]])
    if df.empty:
        return df
    if "kind" in df:
        df["kind"] = df["kind"].fillna("eval")
    if "scale" in df:
        df["scale_h"] = df["scale"].map(lambda s: float(s[0]))
        df["scale_w"] = df["scale"].map(lambda s: float(s[1]))
        df["scale"] = df["scale"].map(scale_label)
    if "value" in df:
        df["value"] = df["value"].map(float)
    if "skipped" in df:
        df["skipped"] = df["skipped"].map(lambda v: tuple(v) if isinstance(v, list) else v)
    return df
