"""The analyses' runner: `eqbench analyze` jobs and the analyses and report of `eqbench run`.

One frozen AnalysisConfig in, results into an AnalysisStore; every job builds one model at a time and
frees it before the next. The analyses of `eqbench run` run after the evaluation on the same models,
datasets and scales (CKA on the methods that declare feature taps; EQ_S always includes bicubic). They
are recomputed on `--resume` (cheap next to the evaluation); the evaluation cells are not.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..protocol import EvalProtocol
from ..scales import Scale
from .store import AnalysisStore

if TYPE_CHECKING:
    from .config import RunConfig


@dataclass(frozen=True)
class AnalysisConfig:
    methods: tuple[str, ...]
    scales: tuple[Scale, ...]
    datasets: tuple[str, ...]
    protocol: EvalProtocol
    out: Path
    size: str = "paper"
    weights: tuple[tuple[str, str], ...] = ()
    data_root: str | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    random_init: bool = False
    # equivariance: centre-crop each HR image to at most this side first (None: whole images). EQ_S
    # super-resolves x itself, so a 512^2 photo at x4 means a 2048^2 output; crops keep it affordable.
    eq_crop: int | None = None
    # cka
    crops: int = 64
    crop_size: int = 48
    batch_size: int = 16
    # between-method CKA: "all" pairs, or each method vs one reference method (a name; None: the first method)
    cka_pairs: str | None = None
    # profile
    input_sizes: tuple[int, ...] = (100,)
    memory_input: int = 100
    memory_scale: Scale = Scale(4.0, 4.0)
    timing_scale: Scale = Scale(4.0, 4.0)
    min_run_time: float = 0.2
    min_measurements: int = 3
    timing: bool = True
    timing_limit: int | None = None  # time on the first N images only (None: all, after `limit`)
    # Resolved models (eqbench.run.models.ModelSpec); when empty, built from methods/size/weights.
    models: tuple = ()

    def spec(self, name: str):
        from .models import PARAMETER_FREE, ModelSpec

        for m in self.models:
            if m.method == name:
                return m
        weights = dict(self.weights).get(name)
        if name in PARAMETER_FREE:
            return ModelSpec(name, "paper", "parameter-free")
        return ModelSpec(name, self.size, "user" if weights else "random", weights)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d |= {"scales": [s.as_list() for s in self.scales], "protocol": self.protocol.id, "out": str(self.out),
              "memory_scale": self.memory_scale.as_list(), "timing_scale": self.timing_scale.as_list(),
              "weights": dict(self.weights)}  # fmt: skip
        d["models"] = {m.method: {"size": m.size, "source": m.source, "weights": m.weights,
                                  "options": dict(m.options)} for m in self.models}  # fmt: skip
        # The size of the models actually used (the zoo's tiny ones unless --weights/--size said otherwise),
        # not the preset default: one size, or "per model" (see "models") when they differ.
        sizes = {m.size for m in self.models if m.source != "parameter-free"}
        if sizes:
            d["size"] = sizes.pop() if len(sizes) == 1 else "per model"
        return d


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _images(cfg: AnalysisConfig, ds: str, store: AnalysisStore):
    from ..data.datasets import locate
    from ..data.io import load_image

    st = locate(ds, cfg.data_root)
    files = list(st.files[: cfg.limit] if cfg.limit else st.files)
    store.add_dataset(ds, files, str(st.folder), st.spec.source)
    return [(p.stem, load_image(p)) for p in files]


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


def run_equivariance(cfg: AnalysisConfig, store: AnalysisStore) -> None:
    from ..analysis.equivariance import EQ_S_MAX_DB, eq_s_details
    from ..analysis.plots import eq_s_curves

    methods = cfg.methods if "bicubic" in cfg.methods else ("bicubic", *cfg.methods)
    data = {ds: [(n, centre_crop(im, cfg.eq_crop)) for n, im in _images(cfg, ds, store)] for ds in cfg.datasets}
    curves: dict[str, dict] = {ds: {} for ds in data}
    for m in methods:
        model = _build(m, cfg)
        for ds, images in data.items():
            c = curves[ds].setdefault(m, {"scale": [], "eq-s": [], "psnr-y": []})
            for s in cfg.scales:
                r = eq_s_details(model, images, s, protocol=cfg.protocol, device=cfg.device)
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


def cka_method_pairs(methods: tuple[str, ...], pairs: str | None) -> list[tuple[str, str]]:
    """The between-method CKA pairs: every pair for "all", else each method vs one reference (`pairs` names
    it; None: the first method). One reference keeps n-1 pairs instead of n(n-1)/2."""
    if pairs == "all":
        return [(a, b) for i, a in enumerate(methods) for b in methods[i + 1 :]]
    ref = pairs if pairs in methods else (methods[0] if methods else None)
    return [(ref, m) for m in methods if m != ref]


def run_cka(cfg: AnalysisConfig, store: AnalysisStore) -> None:
    from ..analysis.cka import GramStore
    from ..analysis.plots import cka_heatmap, layer_scale_heatmap
    from ..analysis.taps import collect_grams, cross_matrix, sample_crops, scale_cka

    images = [im for ds in cfg.datasets for _, im in _images(cfg, ds, store)]
    crops = sample_crops(images, cfg.crops, cfg.crop_size, seed=cfg.seed)
    grams, taps = GramStore(), {}
    for m in cfg.methods:
        model = _build(m, cfg)
        taps[m] = collect_grams(grams, m, model, crops, cfg.scales, batch_size=cfg.batch_size, device=cfg.device)
        del model
        gc.collect()
    figs_dir, entries = cfg.out / "figures", []
    common = {"n_crops": cfg.crops, "estimator": "minibatch linear CKA (unbiased HSIC_1)",
              "config": cfg.to_dict(), "provenance": store.provenance}  # fmt: skip

    def add(entry: dict, stem: str, **labels) -> None:
        paths = cka_heatmap(entry["matrix"], entry["ylabels"], entry["xlabels"], figs_dir / stem,
                            title=entry["title"], **labels)  # fmt: skip
        entries.append(entry | common | {"figures": [str(p) for p in paths]})

    for m in cfg.methods:
        res = scale_cka(grams, m, taps[m], cfg.scales, cfg.crops)
        rows = [f"x{p.replace('-', ' vs x')}" for p in res.per_layer]
        paths = layer_scale_heatmap(res.per_layer, res.taps, figs_dir / f"cka_{m}_layers_across_scales",
                                    title=f"{m}: CKA of each layer between scales")  # fmt: skip
        entries.append({"kind": "layers-across-scales", "method": m, "title": f"{m}: CKA of each layer between "
                        "scales (EQSR Fig. 2a)", "matrix": list(res.per_layer.values()), "ylabels": rows,
                        "xlabels": list(res.taps), "scale_pairs": list(res.per_layer)} | common
                       | {"figures": [str(p) for p in paths]})  # fmt: skip
        for pair, mat in res.matrices.items():
            sa, sb = pair.split("-")
            add({"kind": "layer-by-layer", "method": m, "scales": [sa, sb], "matrix": mat,
                 "title": f"{m}: layer x layer CKA, x{sa} (rows) vs x{sb}", "ylabels": list(res.taps),
                 "xlabels": list(res.taps)}, f"cka_{m}_x{sa}_vs_x{sb}", ylabel=f"x{sa}", xlabel=f"x{sb}")  # fmt: skip
            _log(f"  {m:>10} x{pair:<6} " + " ".join(f"{v:.3f}" for v in res.per_layer[pair]))
    for ma, mb in cka_method_pairs(cfg.methods, cfg.cka_pairs):
        for s in cfg.scales:
            lab = s.label()
            add({"kind": "between-methods", "methods": [ma, mb], "scales": [lab, lab],
                 "matrix": cross_matrix(grams, (ma, lab), taps[ma], (mb, lab), taps[mb]),
                 "title": f"CKA {ma} (rows) vs {mb}, x{lab}", "ylabels": list(taps[ma]),
                 "xlabels": list(taps[mb])}, f"cka_{ma}_vs_{mb}_x{lab}", ylabel=ma, xlabel=mb)  # fmt: skip
    store.put_entries("cka", entries, ("kind", "method", "methods", "scales"))


def run_profile(cfg: AnalysisConfig, store: AnalysisStore) -> None:
    from ..analysis.profile import ProfileConfig, profile_method, profile_row, table3
    from ..protocol import get_protocol

    if any(cfg.spec(m).weights for m in cfg.methods):
        _log("eqbench: note: profiles use random weights (cost does not depend on them)")
    timing = tuple(_images(cfg, cfg.datasets[0], store))[: cfg.timing_limit] if cfg.timing else ()
    profiles = []
    for m in cfg.methods:
        spec = cfg.spec(m)
        pcfg = ProfileConfig(
            method=m, size=spec.size, options=spec.options,
            flop_inputs=tuple((n, n) for n in cfg.input_sizes), flop_scales=cfg.scales,
            memory_input=(cfg.memory_input, cfg.memory_input), memory_scale=cfg.memory_scale,
            timing_scale=cfg.timing_scale, timing_images=timing, timing_dataset=cfg.datasets[0] if timing else "",
            protocol=get_protocol(cfg.protocol), min_run_time=cfg.min_run_time,
            min_measurements=cfg.min_measurements, device=cfg.device, seed=cfg.seed,
        )  # fmt: skip
        prof = profile_method(pcfg)
        profiles.append(prof)
        store.set_analysis("profile_details", f"{m}@{pcfg.size}", prof, cfg.to_dict())
        store.put_entries("profile", [profile_row(prof)], ("method", "size"))
        store.save()
    table = table3(profiles)
    store.doc["analyses"]["profile_table"] = {"text": table, "methods": [p["method"] for p in profiles]}
    print(table)

# The main job's analysis sizes: small enough that `eqbench run --methods all` stays within minutes on two
# CPU cores; a YAML `analysis_options:` block changes them.
RUN_ANALYSIS_DEFAULTS = {
    "eq_crop": 128, "crops": 16, "crop_size": 48, "batch_size": 8, "input_sizes": (100,), "memory_input": 48,
    "min_run_time": 0.05, "min_measurements": 1, "timing_limit": 2,
}  # fmt: skip


def analysis_config(cfg: RunConfig, methods: tuple[str, ...]):
    from ..scales import parse_scale

    opts = {**RUN_ANALYSIS_DEFAULTS, **dict(cfg.analysis_options)}
    for k in ("memory_scale", "timing_scale"):
        if k in opts:
            opts[k] = parse_scale(str(opts[k]))
    if "input_sizes" in opts:
        opts["input_sizes"] = tuple(int(n) for n in opts["input_sizes"])
    return AnalysisConfig(
        methods=methods, scales=cfg.scales, datasets=cfg.datasets, protocol=cfg.protocol, out=cfg.out,
        data_root=cfg.data_root, limit=cfg.limit, device=cfg.device, seed=cfg.seed,
        models=tuple(m for m in cfg.models if m.method in methods), **opts,
    )  # fmt: skip


def run_analyses(cfg: RunConfig) -> None:

    for name in cfg.analyses:
        methods = cfg.methods
        if name == "cka":
            # Parameter-free methods (bicubic) have no layers to compare.
            methods = tuple(m.method for m in cfg.models if m.source != "parameter-free")
            if not methods:
                print("eqbench: cka skipped: no method with feature taps in this run", file=sys.stderr)
                continue
        acfg = analysis_config(cfg, methods)
        print(f"eqbench: analysis {name} ({', '.join(methods)})", file=sys.stderr)
        store = AnalysisStore(cfg.out, device=cfg.device, seed=cfg.seed, config={"analysis": name, **acfg.to_dict()},
                              name=cfg.results_name)
        {"equivariance": run_equivariance, "cka": run_cka, "profile": run_profile}[name](acfg, store)
        store.save()


def write_report(results: Path, output: Path | None = None) -> Path:
    from ..report.html import render
    from ..results import load_results, write_text_atomic

    out = output or results.with_name("report.html" if results.name == "results.json" else results.stem + ".html")
    write_text_atomic(out, render(load_results(results)))
    return out
