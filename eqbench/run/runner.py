"""The evaluation runner: method x dataset x scale under one protocol, results written atomically.

Every name is validated before any work starts; after each finished cell results.json is rewritten
atomically, so an interrupted run keeps what it finished and `--resume` skips it.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from .. import provenance
from ..data.datasets import digest, load_catalog, locate
from ..data.io import load_image
from ..errors import CellErrors, EqbenchError, EqbenchWarning, NonFiniteOutput, NoScorableImage, report_cell_error
from ..lock import output_lock
from ..method import method_entry
from ..results import load_results, new_results, write_json_atomic
from ..scoring import EVAL_METRICS
from .cells import CellCache
from .config import RunConfig
from .evaluate import CellResult, evaluate_images


def validate(cfg: RunConfig) -> None:
    """Fail before any work: unknown names, missing data, unusable output folder."""
    for m in cfg.methods:
        method_entry(m)
    catalog = load_catalog()
    named: dict[str, str] = {}
    for d in cfg.datasets:
        name = locate(d, cfg.data_root, catalog).spec.name
        if name in named:
            raise EqbenchError(f"--datasets {named[name]} and {d} are both named {name!r} (a folder is named by "
                               "its folder name); give one of them, or rename the folder")
        named[name] = d
    if cfg.out.exists() and not cfg.out.is_dir():
        raise EqbenchError(f"--out {cfg.out} exists and is not a folder")
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EqbenchError(f"cannot create the output folder {cfg.out}: {e.strerror}") from None
    if not os.access(cfg.out, os.W_OK):
        raise EqbenchError(f"the output folder {cfg.out} is not writable")


def _check_existing(cfg: RunConfig) -> None:
    results = cfg.results_path
    if results.exists() and not (cfg.resume or cfg.force):
        raise EqbenchError(f"{results} already holds a run; pass --resume to continue it, --force to "
                           "overwrite it, or choose another --out")


def _identity(model: dict) -> tuple:
    """What must not change between a run and its --resume: weights, size, a plugin's module file."""
    return model.get("sha256"), model.get("size"), (model.get("plugin") or {}).get("module_sha256")


def _cell_key(row: dict) -> tuple:
    return (row["method"], row["dataset"], tuple(row["scale"]), row["protocol"])


def run(cfg: RunConfig, *, progress=None) -> dict:
    """Evaluate every cell under the output lock; a cell whose model outputs NaN/Inf is not scored and
    raises `CellErrors` after the other cells are written."""
    validate(cfg)
    with output_lock(cfg.out, cfg.results_name, what="eqbench run"):
        _check_existing(cfg)
        return _run_locked(cfg, progress)


def _run_locked(cfg: RunConfig, progress) -> dict:
    path = cfg.results_path
    if cfg.resume and path.exists():
        doc = load_results(path)
        if doc["config"].get("protocol") != cfg.protocol.id:
            raise EqbenchError(f"{path} was made under {doc['config'].get('protocol')}, not {cfg.protocol.id}; "
                               "use another --out")
    else:
        doc = new_results(provenance.collect(cfg.device, cfg.seed), cfg.to_dict())
    failed: list[str] = []
    done = {_cell_key(r) for r in doc["rows"] if r.get("kind", "eval") == "eval"}
    catalog = load_catalog()
    models = doc.setdefault("models", {})
    for spec in cfg.models:
        new = spec.describe()
        old = models.get(spec.method)
        if old and _identity(old) != _identity(new) and not cfg.force:
            raise EqbenchError(f"{path} holds {spec.method} results from other weights, size or plugin code "
                               f"({old.get('weights')}, {old.get('size')}); use --force to overwrite them or "
                               "another --out")
        models[spec.method] = new
    doc["provenance"]["weights_sha256"] = {m: d["sha256"] for m, d in models.items() if d.get("sha256")}
    cache = CellCache(cfg.cell_cache, cfg.device) if cfg.cell_cache else None
    for ds_arg in cfg.datasets:
        st = locate(ds_arg, cfg.data_root, catalog)
        ds = st.spec.name  # a folder given as a path is named by its folder name
        files = list(st.files[: cfg.limit] if cfg.limit else st.files)
        if st.spec.images != st.count:
            warnings.warn(f"dataset {ds}: found {st.count} images in {st.folder}, datasets.yaml expects "
                          f"{st.spec.images}", EqbenchWarning, stacklevel=2)
        before = doc["datasets"].get(ds, {}).get("folder")
        if before and Path(before).resolve() != Path(st.folder).resolve():
            raise EqbenchError(f"{path} holds {ds} results from the folder {before}, not {st.folder}; use another "
                               "--out (or --force to start over)")
        doc["datasets"][ds] = {"digest": digest(files), "n_files": len(files), "folder": str(st.folder),
                               "source": st.spec.source}
        images = [(p.stem, load_image(p)) for p in files]
        for spec in cfg.models:
            todo = [s for s in cfg.scales if (spec.method, ds, tuple(s.as_list()), cfg.protocol.id) not in done]
            failed += _run_cells(cfg, doc, spec, ds, images, todo, cache, progress)
    if cache is not None:
        doc["provenance"]["cell_cache"] = cache.summary()
    if doc["rows"] or path.exists():  # a run that scored nothing leaves no results file behind
        write_json_atomic(path, doc)
    if failed:
        raise CellErrors(failed, str(path), doc)
    return doc


def _run_cells(cfg: RunConfig, doc: dict, spec, ds: str, images: list, todo: list, cache, progress) -> list[str]:
    """Evaluate (or take from the cell cache) one model's cells on one dataset; save after each cell.
    Returns the cells whose model output was not finite or that had no scorable image (each reported)."""
    mname = spec.method
    keys, failed = {}, []
    if cache is not None:
        module = method_entry(mname).factory.__module__
        model_doc = doc["models"][mname]
        for scale in todo:
            keys[scale] = cache.key(model_doc, module, doc["datasets"][ds]["digest"], cfg.limit, scale.as_list(),
                                    cfg.protocol.id, cfg.seed)
    model = None
    for scale in todo:
        hit = cache.get(keys[scale]) if cache is not None else None
        if hit is not None:
            cell = CellResult(scale, hit["per_image"], list(hit["skipped"]))
        else:
            model = model if model is not None else spec.build(cfg.device, cfg.seed)
            bar = _bar(images, f"{mname} {ds} x{scale.label()}", cfg.progress)
            try:
                cell = evaluate_images(model, bar, scale, cfg.protocol, device=cfg.device)
            except (NonFiniteOutput, NoScorableImage) as e:
                failed.append(report_cell_error(f"{mname} {ds} x{scale.label()}", e))
                continue
            finally:
                bar.close()
            if cache is not None:
                cache.put(keys[scale], cell.per_image, cell.skipped)
        _add_cell(doc, mname, ds, cell, cfg.protocol.id)
        write_json_atomic(cfg.results_path, doc)
        if progress:
            progress(mname, ds, scale, cell)
    return failed


def _add_cell(doc: dict, mname: str, ds: str, cell: CellResult, protocol: str) -> None:
    for metric in EVAL_METRICS:
        doc["rows"].append({
            "kind": "eval", "method": mname, "dataset": ds, "scale": cell.scale.as_list(), "metric": metric,
            "value": cell.mean(metric), "n_images": len(cell.per_image), "protocol": protocol,
            "images": {k: v[metric] for k, v in cell.per_image.items()}, "skipped": cell.skipped,
        })
    doc["provenance"]["finished"] = provenance.now_iso()


def _bar(images: list, desc: str, enabled: bool):
    """A per-image progress bar on stderr (only on a terminal; logs get the per-cell lines instead)."""
    from tqdm import tqdm

    return tqdm(images, desc=desc, unit="img", leave=False, file=sys.stderr, dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()))
