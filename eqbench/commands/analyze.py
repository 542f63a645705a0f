"""eqbench analyze: scale equivariance (EQ_S), layer similarity across scales (CKA), model profiles.

Results go into results.json in --out (the schema `eqbench run` writes; an existing file there gets
the analysis added), figures into --out/figures as PNG and SVG.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from ..errors import EqbenchError
from .common import add_data_root, parse_weights
from .run import PARAMETER_FREE, default_datasets

NAME = "analyze"
HELP = "EQ_S equivariance curves, CKA across scales, model profiles"
EXAMPLES = """examples:
  eqbench analyze equivariance --methods bicubic --datasets Set5 --scales 2 3 4 \\
      --data-root ../shared/datasets --out out/eq
  eqbench analyze cka --methods liif --size tiny --weights liif=liif_tiny.safetensors --dataset Set14 \\
      --scales 2 3 4 --crops 64 --data-root ../shared/datasets --out out/cka
  eqbench analyze cka --methods liif lte --size tiny --random-init --scales 2 3 4 --out out/cka-smoke
  eqbench analyze profile --methods bicubic liif --input-sizes 48 100 --scales 2 4 --dataset Set5 \\
      --data-root ../shared/datasets --out out/profile"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("analysis", choices=["equivariance", "cka", "profile"])
    p.add_argument("--methods", nargs="+", required=True, help="method names (equivariance always adds bicubic)")
    p.add_argument("--scales", nargs="+", default=["2", "3", "4"], help="2, 2.5, or HxW like 1.5x4")
    p.add_argument("--size", default="paper", help="model preset: paper or tiny")
    p.add_argument(
        "--weights",
        nargs="*",
        default=[],
        metavar="METHOD=PATH",
        help="weights per method (equivariance, cka; profiles use random weights)",
    )
    p.add_argument(
        "--datasets",
        "--dataset",
        nargs="+",
        default=["Set5"],
        dest="datasets",
        help="datasets: EQ_S per dataset; CKA crops and profile timing images from them",
    )
    p.add_argument("--protocol", default="matlab", help="evaluation protocol for f and scoring (EQ_S, timing)")
    p.add_argument("--limit", type=int, help="at most N images per dataset")
    p.add_argument("--crops", type=int, default=64, help="cka: number of LR crops")
    p.add_argument("--crop-size", type=int, default=48, help="cka: LR crop side in pixels")
    p.add_argument("--batch-size", type=int, default=16, help="cka: crops per minibatch (>= 4)")
    p.add_argument("--input-sizes", nargs="+", type=int, default=[100], help="profile: square LR sides for FLOPs")
    p.add_argument("--memory-input", type=int, default=100, help="profile: square LR side for peak memory")
    p.add_argument("--memory-scale", default="4", help="profile: scale for peak memory")
    p.add_argument("--timing-scale", default="4", help="profile: scale of the timed dataset LR images")
    p.add_argument("--min-run-time", type=float, default=0.2, help="profile: seconds of timing per image")
    p.add_argument("--no-timing", action="store_true", help="profile: skip the latency measurement")
    p.add_argument(
        "--random-init",
        action="store_true",
        help="equivariance/cka: analyse learned methods without --weights (smoke tests)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (results.json and figures/ go there)")
    add_data_root(p)


def _images(a, ds: str, store=None):
    from ..data.datasets import locate
    from ..data.io import load_image

    st = locate(ds, a.data_root)
    files = list(st.files[: a.limit] if a.limit else st.files)
    if store is not None:
        store.add_dataset(ds, files, str(st.folder), st.spec.source)
    return [(p.stem, load_image(p)) for p in files]


def _build(name: str, a, weights: dict):
    from ..method import create_method

    model = create_method(name, size=a.size if name != "bicubic" else "paper")
    if name in weights:
        from ..checkpoint import load_weights

        load_weights(model, weights[name])
    return model.to(a.device).eval()


def _validate(a) -> tuple[list[str], dict, list]:
    from ..method import method_entry
    from ..scales import parse_scale

    methods = list(dict.fromkeys(a.methods))
    for m in methods:
        method_entry(m)
    weights = dict(parse_weights(a.weights))
    for m in weights:
        if m not in methods:
            raise EqbenchError(f"--weights names {m!r}, which is not among --methods {' '.join(methods)}")
    if a.analysis != "profile" and not a.random_init:
        # EQ_S and CKA of untrained weights say nothing about a method: no silent random initialisation.
        missing = [m for m in methods if m not in PARAMETER_FREE and m not in weights]
        if missing:
            raise EqbenchError(
                f"no weights for {', '.join(missing)}: pass --weights {missing[0]}=PATH "
                "(or --random-init to analyse untrained weights, e.g. for a smoke test)"
            )
    if a.limit is not None and a.limit < 1:
        raise EqbenchError("--limit must be a positive number of images")
    scales = list(dict.fromkeys(parse_scale(s) for s in a.scales))
    a.datasets = list(dict.fromkeys(a.datasets or default_datasets(a.data_root)))
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise EqbenchError(f"--out {out} exists and is not a folder")
    return methods, weights, scales


def _config(a, methods, scales) -> dict:
    keep = ("analysis", "size", "datasets", "protocol", "limit", "device", "seed")
    return {
        "analysis": a.analysis,
        "methods": methods,
        "scales": [s.as_list() for s in scales],
        **{k: getattr(a, k) for k in keep if k != "analysis"},
    }


def run(a: argparse.Namespace) -> int:
    from ..analysis.store import AnalysisStore

    methods, weights, scales = _validate(a)
    store = AnalysisStore(Path(a.out), device=a.device, seed=a.seed, config=_config(a, methods, scales))
    {"equivariance": _equivariance, "cka": _cka, "profile": _profile}[a.analysis](a, methods, weights, scales, store)
    print(f"wrote {store.save()}")
    return 0


def _equivariance(a, methods, weights, scales, store) -> None:
    from ..analysis.equivariance import EQ_S_MAX_DB, eq_s_details
    from ..analysis.plots import eq_s_curves
    from ..protocol import get_protocol

    protocol = get_protocol(a.protocol)
    methods = methods if "bicubic" in methods else ["bicubic", *methods]
    data = {ds: _images(a, ds, store) for ds in a.datasets}
    curves: dict[str, dict] = {ds: {} for ds in data}
    for m in methods:
        model = _build(m, a, weights)
        for ds, images in data.items():
            c = curves[ds].setdefault(m, {"scale": [], "eq-s": [], "psnr-y": []})
            for s in scales:
                r = eq_s_details(model, images, s, protocol=protocol, device=a.device)
                for kind, metric in (("equivariance", "eq-s"), ("equivariance-ref", "psnr-y")):
                    store.add_rows(
                        [
                            {
                                "kind": kind,
                                "method": m,
                                "dataset": ds,
                                "scale": s.as_list(),
                                "metric": metric,
                                "value": r.mean(metric),
                                "n_images": len(r.per_image),
                                "protocol": protocol.id,
                                "images": {k: v[metric] for k, v in r.per_image.items()},
                                "skipped": r.skipped,
                                "crops": {k: list(v) for k, v in r.crops.items()},
                            }
                        ]
                    )
                c["scale"].append(s.h if s.symmetric else (s.h * s.w) ** 0.5)
                c["eq-s"].append(r.eq_s)
                c["psnr-y"].append(r.psnr_y)
                print(
                    f"  {m:>10} {ds:>8} x{s.label():<6} EQ_S {r.eq_s:8.4f} dB   PSNR-Y {r.psnr_y:8.4f} dB  "
                    f"({len(r.per_image)} images)",
                    file=sys.stderr,
                )
            store.save()
        del model
        gc.collect()
    for ds, c in curves.items():
        figs = eq_s_curves(c, Path(a.out) / "figures" / f"eq_s_{ds}", title=f"EQ_S on {ds} ({protocol.id})")
        doc = {"protocol": protocol.id, "curves": c, "figures": [str(p) for p in figs], "max_db": EQ_S_MAX_DB}
        store.set_analysis(
            "equivariance",
            ds,
            doc,
            {"methods": methods, "weights": weights, "size": a.size, "random_init": a.random_init, "limit": a.limit},
        )


def _cka(a, methods, weights, scales, store) -> None:
    import torch

    from ..analysis.cka import GramStore
    from ..analysis.plots import cka_heatmap, layer_scale_heatmap
    from ..analysis.taps import collect_grams, cross_matrix, sample_crops, scale_cka

    images = [im for ds in a.datasets for _, im in _images(a, ds, store)]
    crops = sample_crops(images, a.crops, a.crop_size, seed=a.seed)
    grams, taps = GramStore(), {}
    for m in methods:
        torch.manual_seed(a.seed)
        model = _build(m, a, weights)
        taps[m] = collect_grams(grams, m, model, crops, scales, batch_size=a.batch_size, device=a.device)
        del model
        gc.collect()
    fig_dir = Path(a.out) / "figures"
    cfg = {
        "datasets": a.datasets,
        "crops": a.crops,
        "crop_size": a.crop_size,
        "batch_size": a.batch_size,
        "seed": a.seed,
        "size": a.size,
    }
    for m in methods:
        res = scale_cka(grams, m, taps[m], scales, a.crops)
        figs = layer_scale_heatmap(
            res.per_layer,
            res.taps,
            fig_dir / f"cka_{m}_layers_across_scales",
            title=f"{m}: CKA of each layer between scales",
        )
        for pair, mat in res.matrices.items():
            sa, sb = pair.split("-")
            figs += cka_heatmap(
                mat,
                res.taps,
                res.taps,
                fig_dir / f"cka_{m}_x{sa}_vs_x{sb}",
                title=f"{m}: layer x layer CKA, x{sa} vs x{sb}",
                ylabel=f"x{sa}",
                xlabel=f"x{sb}",
            )
        store.set_analysis(
            "cka", m, res.to_dict() | {"figures": [str(p) for p in figs]}, {**cfg, "weights": weights.get(m)}
        )
        for pair, vals in res.per_layer.items():
            print(f"  {m:>10} x{pair:<6} " + " ".join(f"{v:.3f}" for v in vals), file=sys.stderr)
    for i, ma in enumerate(methods):
        for mb in methods[i + 1 :]:
            mats = {}
            for s in scales:
                lab = s.label()
                mats[lab] = cross_matrix(grams, (ma, lab), taps[ma], (mb, lab), taps[mb])
                cka_heatmap(
                    mats[lab],
                    taps[ma],
                    taps[mb],
                    fig_dir / f"cka_{ma}_vs_{mb}_x{lab}",
                    title=f"CKA {ma} vs {mb}, x{lab}",
                    ylabel=ma,
                    xlabel=mb,
                )
            store.set_analysis(
                "cka",
                f"{ma}~{mb}",
                {"rows": list(taps[ma]), "cols": list(taps[mb]), "matrices": mats},
                {**cfg, "weights": None},
            )


def _profile(a, methods, weights, scales, store) -> None:
    from ..analysis.profile import ProfileConfig, profile_method, table3
    from ..protocol import get_protocol
    from ..scales import parse_scale

    if weights:
        print("eqbench: note: profiles use random weights; --weights is ignored", file=sys.stderr)
    timing = () if a.no_timing else tuple(_images(a, a.datasets[0], store))
    profiles = []
    for m in methods:
        cfg = ProfileConfig(
            method=m,
            size=a.size if m != "bicubic" else "paper",
            flop_inputs=tuple((n, n) for n in a.input_sizes),
            flop_scales=tuple(scales),
            memory_input=(a.memory_input, a.memory_input),
            memory_scale=parse_scale(a.memory_scale),
            timing_scale=parse_scale(a.timing_scale),
            timing_images=timing,
            timing_dataset=a.datasets[0] if timing else "",
            protocol=get_protocol(a.protocol),
            min_run_time=a.min_run_time,
            device=a.device,
            seed=a.seed,
        )
        prof = profile_method(cfg)
        profiles.append(prof)
        store.set_analysis(
            "profile",
            f"{m}@{cfg.size}",
            prof,
            {
                "input_sizes": a.input_sizes,
                "memory_input": a.memory_input,
                "memory_scale": a.memory_scale,
                "timing_scale": a.timing_scale,
                "min_run_time": a.min_run_time,
            },
        )
        store.save()
    table = table3(profiles)
    store.doc["analyses"]["profile_table"] = {"text": table, "methods": [p["method"] for p in profiles]}
    print(table)
