"""The analyses' runner: `eqbench analyze` jobs and the analyses and report of `eqbench run`.

One frozen AnalysisConfig in, results into an AnalysisStore; every job builds one model at a time and
frees it before the next. The analyses of `eqbench run` run after the evaluation on the same models,
datasets and scales (CKA on the methods that declare feature taps; EQ_S always includes bicubic). They
are recomputed on `--resume` (cheap next to the evaluation); the evaluation cells are not.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import NonFiniteOutput, NoScorableImage, report_cell_error
from ..method import method_entry, reference_method
from ..protocol import EvalProtocol
from ..scales import Scale
from .config import ANALYSES, AnalysisOptions, RunConfig
from .models import ModelSpec, resolve_models
from .store import AnalysisStore


@dataclass(frozen=True)
class AnalysisConfig:
    """One analysis job: the resolved models (eqbench.run.models.ModelSpec) and the run's data and options."""

    models: tuple[ModelSpec, ...]
    scales: tuple[Scale, ...]
    datasets: tuple[str, ...]
    protocol: EvalProtocol
    out: Path
    options: AnalysisOptions = AnalysisOptions()
    data_root: str | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m.method for m in self.models)

    def spec(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.method == name)

    def to_dict(self) -> dict:
        d = {"methods": list(self.methods), "scales": [s.as_list() for s in self.scales],
             "datasets": list(self.datasets), "protocol": self.protocol.id, "out": str(self.out),
             "data_root": self.data_root, "limit": self.limit, "device": self.device, "seed": self.seed,
             **self.options.to_dict(),
             "models": {m.method: {"size": m.size, "source": m.source, "weights": m.weights,
                                   "options": dict(m.options)} for m in self.models}}  # fmt: skip
        # The size of the models actually used (the zoo's tiny ones unless --weights/--size said otherwise),
        # not a preset default: one size, or "per model" (see "models") when they differ.
        sizes = {m.size for m in self.models if m.source != "parameter-free"}
        if sizes:
            d["size"] = sizes.pop() if len(sizes) == 1 else "per model"
        return d


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _named_images(cfg: AnalysisConfig, ds: str, store: AnalysisStore):
    """(name, images) of one --datasets entry; a folder given as a path is named by its folder name."""
    from ..data.datasets import locate
    from ..data.io import load_image

    st = locate(ds, cfg.data_root)
    files = list(st.files[: cfg.limit] if cfg.limit else st.files)
    store.add_dataset(st.spec.name, files, str(st.folder), st.spec.source)
    return st.spec.name, [(p.stem, load_image(p)) for p in files]


def _images(cfg: AnalysisConfig, ds: str, store: AnalysisStore):
    return _named_images(cfg, ds, store)[1]


def centre_crop(img, side: int | None):
    """The central (at most) side x side region of an (H, W, ...) image; the image itself for None."""
    if side is None:
        return img
    h, w = img.shape[:2]
    th, tw = min(h, side), min(w, side)
    top, left = (h - th) // 2, (w - tw) // 2
    return img[top:top + th, left:left + tw]


def _build(name: str, cfg: AnalysisConfig):
    return cfg.spec(name).build(cfg.device, cfg.seed)


def run_equivariance(cfg: AnalysisConfig, store: AnalysisStore) -> list[str]:
    """EQ_S curves; returns the cells whose model output was not finite (reported, not scored)."""
    from ..analysis.equivariance import EQ_S_MAX_DB, eq_s_details
    from ..analysis.plots import eq_s_curves

    failed: list[str] = []
    data = {name: [(n, centre_crop(im, cfg.options.eq_crop)) for n, im in images]
            for name, images in (_named_images(cfg, ds, store) for ds in cfg.datasets)}
    curves: dict[str, dict] = {ds: {} for ds in data}
    for m in cfg.methods:
        model = _build(m, cfg)
        for ds, images in data.items():
            c = curves[ds].setdefault(m, {"scale": [], "eq-s": [], "psnr-y": []})
            for s in cfg.scales:
                try:
                    r = eq_s_details(model, images, s, protocol=cfg.protocol, device=cfg.device)
                except (NonFiniteOutput, NoScorableImage) as e:
                    failed.append(report_cell_error(f"equivariance {m} {ds} x{s.label()}", e))
                    continue
                store.add_rows([
                    {"kind": kind, "method": m, "dataset": ds, "scale": s.as_list(), "metric": metric,
                     "value": r.mean(metric), "n_images": len(r.per_image), "protocol": cfg.protocol.id,
                     "images": {k: v[metric] for k, v in r.per_image.items()}, "skipped": r.skipped,
                     "crops": {k: list(v) for k, v in r.crops.items()}}
                    for kind, metric in (("equivariance", "eq-s"), ("equivariance-ref", "psnr-y"))
                ])  # fmt: skip
                c["scale"].append(s.h if s.symmetric else (s.h * s.w) ** 0.5)
                c["eq-s"].append(r.eq_s)
                c["psnr-y"].append(r.psnr_y)
                _log(f"  {m:>10} {ds:>8} x{s.label():<6} EQ_S {r.eq_s:8.4f} dB   PSNR-Y {r.psnr_y:8.4f} dB  "
                     f"({len(r.per_image)} images)")  # fmt: skip
            store.save()
        del model
        gc.collect()
    for ds, c in curves.items():
        figs = eq_s_curves(c, cfg.out / "figures" / f"eq_s_{ds}", title=f"EQ_S on {ds} ({cfg.protocol.id})")
        doc = {"protocol": cfg.protocol.id, "curves": c, "figures": [str(p) for p in figs], "max_db": EQ_S_MAX_DB}
        store.set_analysis("equivariance", ds, doc, cfg.to_dict())
    return failed


def cka_method_pairs(methods: tuple[str, ...], pairs: str | None) -> list[tuple[str, str]]:
    """The between-method CKA pairs: every pair for "all", else each method vs one reference (`pairs` names
    it; None: the first method). One reference keeps n-1 pairs instead of n(n-1)/2."""
    if pairs == "all":
        return [(a, b) for i, a in enumerate(methods) for b in methods[i + 1 :]]
    ref = pairs if pairs in methods else (methods[0] if methods else None)
    return [(ref, m) for m in methods if m != ref]


def run_cka(cfg: AnalysisConfig, store: AnalysisStore) -> list[str]:
    """CKA heatmaps; returns the methods whose features were not finite (reported, left out)."""
    from ..analysis.cka import GramStore
    from ..analysis.taps import collect_grams, sample_crops

    o = cfg.options
    images = [im for ds in cfg.datasets for _, im in _images(cfg, ds, store)]
    crops = sample_crops(images, o.crops, o.crop_size, seed=cfg.seed)
    grams, taps, failed = GramStore(), {}, []
    for m in cfg.methods:
        model = _build(m, cfg)
        try:
            taps[m] = collect_grams(grams, m, model, crops, cfg.scales, batch_size=o.batch_size, device=cfg.device)
        except NonFiniteOutput as e:
            failed.append(report_cell_error(f"cka {m}", e))
        del model
        gc.collect()
    common = {"n_crops": o.crops, "estimator": "minibatch linear CKA (unbiased HSIC_1)",
              "config": cfg.to_dict(), "provenance": store.provenance}  # fmt: skip
    entries = [e | common for m in taps for e in _cka_within(cfg, grams, m, taps[m])]
    if o.between_methods:
        entries += [e | common for e in _cka_between(cfg, grams, taps)]
    for e in entries:
        e["figures"] = [str(p) for p in e.pop("_draw")()]
    store.put_entries("cka", entries, ("kind", "method", "methods", "scales"))
    return failed


def _heatmap(entry: dict, stem: str, out: Path, **labels) -> dict:
    """`entry` with a `_draw` closure that writes its heatmap (the figures are drawn after the entries)."""
    from ..analysis.plots import cka_heatmap

    def draw():
        return cka_heatmap(entry["matrix"], entry["ylabels"], entry["xlabels"], out / "figures" / stem,
                           title=entry["title"], **labels)

    return entry | {"_draw": draw}


def _cka_within(cfg: AnalysisConfig, grams, m: str, taps) -> list[dict]:
    """One method across scales: each layer between every pair of scales, and layer x layer per pair."""
    from ..analysis.plots import layer_scale_heatmap
    from ..analysis.taps import scale_cka

    res = scale_cka(grams, m, taps, cfg.scales, cfg.options.crops)
    rows = [f"x{p.replace('-', ' vs x')}" for p in res.per_layer]

    def draw():
        return layer_scale_heatmap(res.per_layer, res.taps, cfg.out / "figures" / f"cka_{m}_layers_across_scales",
                                   title=f"{m}: CKA of each layer between scales")

    out = [{"kind": "layers-across-scales", "method": m, "title": f"{m}: CKA of each layer between scales "
            "(EQSR Fig. 2a)", "matrix": list(res.per_layer.values()), "ylabels": rows, "xlabels": list(res.taps),
            "scale_pairs": list(res.per_layer), "_draw": draw}]  # fmt: skip
    for pair, mat in res.matrices.items():
        sa, sb = pair.split("-")
        out.append(_heatmap({"kind": "layer-by-layer", "method": m, "scales": [sa, sb], "matrix": mat,
                             "title": f"{m}: layer x layer CKA, x{sa} (rows) vs x{sb}", "ylabels": list(res.taps),
                             "xlabels": list(res.taps)}, f"cka_{m}_x{sa}_vs_x{sb}", cfg.out, ylabel=f"x{sa}",
                            xlabel=f"x{sb}"))  # fmt: skip
        _log(f"  {m:>10} x{pair:<6} " + " ".join(f"{v:.3f}" for v in res.per_layer[pair]))
    return out


def _cka_between(cfg: AnalysisConfig, grams, taps: dict) -> list[dict]:
    """The chosen pairs of methods (`cka_method_pairs`) at each scale: layer x layer CKA."""
    from ..analysis.taps import cross_matrix

    out = []
    for ma, mb in cka_method_pairs(tuple(taps), cfg.options.cka_pairs):  # the methods whose features were finite
        for s in cfg.scales:
            lab = s.label()
            out.append(_heatmap({"kind": "between-methods", "methods": [ma, mb], "scales": [lab, lab],
                                 "matrix": cross_matrix(grams, (ma, lab), taps[ma], (mb, lab), taps[mb]),
                                 "title": f"CKA {ma} (rows) vs {mb}, x{lab}", "ylabels": list(taps[ma]),
                                 "xlabels": list(taps[mb])}, f"cka_{ma}_vs_{mb}_x{lab}", cfg.out, ylabel=ma,
                                xlabel=mb))  # fmt: skip
    return out


def run_profile(cfg: AnalysisConfig, store: AnalysisStore) -> list[str]:
    from ..analysis.profile import ProfileConfig, profile_method, profile_row, table3
    from ..protocol import get_protocol

    o = cfg.options
    if any(cfg.spec(m).weights for m in cfg.methods):
        _log("eqbench: note: profiles use random weights (cost does not depend on them)")
    tname, timing = _named_images(cfg, cfg.datasets[0], store) if o.timing else ("", ())
    timing = tuple(timing)[: o.timing_limit]
    profiles = []
    for m in cfg.methods:
        spec = cfg.spec(m)
        pcfg = ProfileConfig(
            method=m, size=spec.size, options=spec.options,
            flop_inputs=tuple((n, n) for n in o.input_sizes), flop_scales=cfg.scales,
            memory_input=(o.memory_input, o.memory_input), memory_scale=o.memory_scale,
            timing_scale=o.timing_scale, timing_images=timing, timing_dataset=tname if timing else "",
            protocol=get_protocol(cfg.protocol), min_run_time=o.min_run_time,
            min_measurements=o.min_measurements, device=cfg.device, seed=cfg.seed,
        )  # fmt: skip
        prof = profile_method(pcfg)
        profiles.append(prof)
        store.set_analysis("profile_details", f"{m}@{pcfg.size}", prof, cfg.to_dict())
        store.put_entries("profile", [profile_row(prof)], ("method", "size"))
        store.save()
    table = table3(profiles)
    store.doc["analyses"]["profile_table"] = {"text": table, "methods": [p["method"] for p in profiles]}
    print(table)
    return []


# The job of each analysis named in config.ANALYSES (the one list of names, which the CLI offers).
JOBS: dict[str, Callable[[AnalysisConfig, AnalysisStore], list[str]]] = {
    "equivariance": run_equivariance, "cka": run_cka, "profile": run_profile}
if tuple(JOBS) != ANALYSES:
    raise AssertionError(f"run/analyses.py JOBS {tuple(JOBS)} != run/config.py ANALYSES {ANALYSES}")


def analysis_config(cfg: RunConfig, name: str) -> AnalysisConfig | None:
    """The job of analysis `name` in run `cfg`: EQ_S with the reference method first when the run lacks it;
    in the main job (`cfg.evaluate`), CKA on its learned methods only (a parameter-free method has no
    layers), while `eqbench analyze cka` takes the methods as named. None: nothing to analyse."""
    models = cfg.models
    if name == "cka" and cfg.evaluate:
        models = tuple(m for m in models if method_entry(m.method).learned)
    ref = reference_method()
    if name == "equivariance" and ref is not None and ref not in cfg.methods:
        models = (*resolve_models([ref], weights={}), *models)
    if not models:
        return None
    return AnalysisConfig(models=models, scales=cfg.scales, datasets=cfg.datasets, protocol=cfg.protocol, out=cfg.out,
                          options=cfg.analysis_options, data_root=cfg.data_root, limit=cfg.limit, device=cfg.device,
                          seed=cfg.seed)  # fmt: skip


def run_analyses(cfg: RunConfig) -> list[str]:
    """Each analysis under the output lock; returns the cells that failed (each reported on its line)."""
    from ..lock import make_out_folder, output_lock

    failed: list[str] = []
    make_out_folder(cfg.out)
    with output_lock(cfg.out, cfg.results_name, what="eqbench analyses"):
        for name in cfg.analyses:
            failed += _run_analysis(cfg, name)
    return failed


def _run_analysis(cfg: RunConfig, name: str) -> list[str]:
    acfg = analysis_config(cfg, name)
    if acfg is None:
        print(f"eqbench: {name} skipped: no method in this run it applies to", file=sys.stderr)
        return []
    print(f"eqbench: analysis {name} ({', '.join(acfg.methods)})", file=sys.stderr)
    store = AnalysisStore(cfg.out, device=cfg.device, seed=cfg.seed, config={"analysis": name, **acfg.to_dict()},
                          name=cfg.results_name)
    failed = JOBS[name](acfg, store)
    store.save()
    return failed


def write_report(results: Path, output: Path | None = None) -> Path:
    from ..lock import output_lock
    from ..report.html import render
    from ..results import load_results, write_text_atomic

    out = output or results.with_name("report.html" if results.name == "results.json" else results.stem + ".html")
    with output_lock(out.parent, out.name, what="eqbench report"):
        write_text_atomic(out, render(load_results(results)))
    return out
