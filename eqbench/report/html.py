"""One self-contained HTML page (jinja2; figures embedded as data URIs; no network assets).

Layout: a table of contents, then foldable sections (<details>): about, method cards, score tables (image
counts per dataset, tiny / random-init models marked, best/second only with >= 3 methods, cells below the
reference flagged), curves, EQ_S, CKA small multiples, profiles grouped by setting, published numbers
(only for methods at the papers' size), provenance.
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

import jinja2

from ..protocol import get_protocol
from . import plots
from .grids import Grid, cards_grid, profile_grids, published_grid
from .methods import method_infos, ordered, reference_method
from .tables import Table, build_table

HERE = Path(__file__).parent
TABLE_TITLES = {
    "psnr-y": "PSNR-Y (dB), the layout of the EQSR paper's Table 1",
    "ssim-y": "SSIM-Y, the layout of the EQSR supplement's Table 3",
    "psnr-rgb": "PSNR-RGB (dB)",
    "eq-s": "EQ_S (dB): PSNR between SR-then-downscale and downscale-then-SR, higher = more equivariant",
}


def _table_ctx(t: Table, title: str, tid: str, labels: dict[str, str], flags: dict[str, str]) -> dict:
    n = t.dataset_images()
    cols = [{"label": s, "ood": s.endswith("*")} for _, s in t.columns]
    groups = [(f"{ds} ({n[ds]})" if ds in n else ds, len(list(g))) for ds, g in groupby(t.columns, key=lambda c: c[0])]
    ranks = {c: t.ranks(c) for c in t.columns}
    rows = []
    for m in t.methods:
        cells = []
        for c in t.columns:
            cls = [{1: "best", 2: "second"}.get(ranks[c].get(m), ""), "ood" if c[1].endswith("*") else "",
                   "below" if t.below_reference(m, c) else ""]
            cells.append({"text": t.fmt(t.get(m, c)), "cls": " ".join(x for x in cls if x)})
        rows.append({"method": m, "label": labels.get(m, m), "flag": flags.get(m, ""), "cells": cells})
    return {"id": tid, "title": title, "protocol": t.protocol, "cols": cols, "groups": groups, "rows": rows,
            "ranked": any(ranks.values()), "reference": t.reference}  # fmt: skip


def score_tables(doc: dict, order: list[str], reference: str | None) -> list[tuple[str, Table]]:
    """(metric id, Table) for every score table the report shows, in the report's order."""
    out = []
    for metric, kind in (("psnr-y", "eval"), ("ssim-y", "eval"), ("psnr-rgb", "eval"), ("eq-s", "equivariance")):
        t = build_table(doc, metric, kind=kind, order=order, reference=reference)
        if t.methods:
            out.append((metric, t))
    return out


def _grid_ctx(g: Grid) -> dict:
    return {"id": g.id, "title": g.title, "note": g.note, "head": g.head, "body": g.text_rows()}


def _fig(fid: str, title: str, uri: str | None, note: str = "") -> list[dict]:
    return [{"id": fid, "title": title, "uri": uri, "note": note}] if uri else []


def _curve_figures(doc, order, labels, ref) -> tuple[list[dict], list[dict]]:
    psnr, eqs = plots.curves(doc, "eval", "psnr-y"), plots.curves(doc, "equivariance", "eq-s")
    kw = {"order": order, "labels": labels}
    scores = _fig("fig-psnr", "PSNR-Y vs scale", plots.curve_figure(psnr, "PSNR-Y (dB)", "PSNR-Y vs scale", **kw))
    if ref:
        scores += _fig("fig-psnr-rel", f"PSNR-Y relative to {ref}", plots.curve_figure(
            psnr, "PSNR-Y (dB)", f"PSNR-Y minus {ref} at the same scale (below 0: worse than {ref})", ref, **kw))
    eq = _fig("fig-eqs", "EQ_S vs scale", plots.curve_figure(eqs, "EQ_S (dB)", "EQ_S vs scale", **kw))
    if ref:
        eq += _fig("fig-eqs-rel", f"EQ_S relative to {ref} (the EQSR paper's Fig. 7b)", plots.curve_figure(
            eqs, "EQ_S (dB)", f"EQ_S minus {ref} at the same scale", ref, **kw))
    return scores, eq


def _cka_pairs(entries: list[dict], pairs: str | None, order: list[str]) -> list[dict]:
    """Between-method entries to show: 'all', or each method vs one reference (`pairs` names it; default:
    the first method, in report order, that has between-method entries)."""
    if pairs == "all":
        return entries
    present = [m for m in order if any(m in e["methods"] for e in entries)]
    ref = pairs if pairs in present else (present[0] if present else None)
    return [e for e in entries if ref in e["methods"]]


def cka_figures(doc: dict, order: list[str], pairs: str | None = None) -> list[dict]:
    cka = [e for e in (doc.get("analyses") or {}).get("cka") or [] if isinstance(e, dict) and "matrix" in e]
    rank = {m: i for i, m in enumerate(order)}
    first = next((e for e in cka if e.get("n_crops")), {})
    note = f"{first['n_crops']} LR crops, {first.get('estimator', '')}." if first else ""
    figs = []
    layers = sorted((e for e in cka if e.get("kind") == "layers-across-scales"),
                    key=lambda e: rank.get(e.get("method"), 99))
    figs += _fig("fig-cka-layers", "CKA of each layer between scales (EQSR Fig. 2a)",
                 plots.layer_lines(layers, "CKA of each layer between scales (1 = the same representation)"), note)
    lbl = [e for e in cka if e.get("kind") == "layer-by-layer"]
    for sc, group in groupby(sorted(lbl, key=lambda e: (e["scales"], rank.get(e["method"], 99))),
                             key=lambda e: tuple(e["scales"])):
        figs += _fig(f"fig-cka-lbl-{'-'.join(sc)}", f"Layer x layer CKA, x{sc[0]} (rows) vs x{sc[1]} (columns)",
                     plots.heatmap_grid(list(group), f"Layer x layer CKA, x{sc[0]} (rows) vs x{sc[1]} (columns)",
                                        lambda e: e["method"]), note)  # fmt: skip
    btw = _cka_pairs([e for e in cka if e.get("kind") == "between-methods"], pairs, order)
    for sc, group in groupby(sorted(btw, key=lambda e: (e["scales"], [rank.get(m, 99) for m in e["methods"]])),
                             key=lambda e: tuple(e["scales"])):
        title = f"CKA between methods at x{sc[0]} (rows: first method's layers)"
        figs += _fig(f"fig-cka-btw-{sc[0]}", title, plots.heatmap_grid(
            list(group), title, lambda e: f"{e['methods'][0]} (rows) vs {e['methods'][1]}"), note)
    return figs


def _provenance(doc: dict) -> list[tuple[str, object]]:
    prov = doc.get("provenance", {})
    flat = [(k, json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in prov.items()]
    flat += [(f"dataset {k}", f"{v.get('n_files')} files, sha256 {(v.get('digest') or '')[:16]}...")
             for k, v in (doc.get("datasets") or {}).items()]
    return flat


def context(doc: dict, *, reference: str | None = None, published: bool = True, cka_pairs: str | None = None) -> dict:
    """Everything the template shows (also the source of the markdown / CSV exports)."""
    an = doc.get("analyses") or {}
    cka = [e for e in an.get("cka") or [] if isinstance(e, dict)]
    methods = list(dict.fromkeys([r["method"] for r in doc["rows"]] + [
        p.get("method") for p in (an.get("profile_details") or {}).values() if isinstance(p, dict) and p.get("method")]
        + [m for e in cka for m in ([e["method"]] if e.get("method") else e.get("methods") or [])]))  # fmt: skip
    infos = method_infos(doc, methods)
    order = ordered(methods, infos)
    ref = reference_method(infos)
    labels = {m: infos[m].label for m in methods}
    flags = {m: infos[m].flag for m in methods}
    rel = reference or ref
    tables = [(metric, t) for metric, t in score_tables(doc, order, ref)]
    paper = [m for m in order if infos[m].size == "paper" and infos[m].source not in ("random-init",)
             and not infos[m].reference]  # fmt: skip
    pub = published_grid(doc, paper + ([ref] if ref and paper else [])) if published else None
    scores_figs, eq_figs = _curve_figures(doc, order, labels, rel)
    return {"infos": infos, "order": order, "reference": ref, "labels": labels, "flags": flags, "tables": tables,
            "cards": cards_grid(infos, order), "profiles": profile_grids(doc, order), "published": pub,
            "paper_methods": paper, "score_figs": scores_figs, "eq_figs": eq_figs,
            "cka_figs": cka_figures(doc, order, cka_pairs), "provenance": _provenance(doc)}  # fmt: skip


def _sections(ctx: dict) -> list[dict]:
    t = {metric: _table_ctx(tab, TABLE_TITLES.get(metric, metric), f"table-{metric}", ctx["labels"], ctx["flags"])
         for metric, tab in ctx["tables"]}  # fmt: skip
    secs = [
        {"id": "methods", "title": "Methods", "cards": [ctx["infos"][m] for m in ctx["order"]]},
        {"id": "scores", "title": "Scores", "tables": [t[k] for k in ("psnr-y", "ssim-y", "psnr-rgb") if k in t],
         "figures": ctx["score_figs"]},
        {"id": "equivariance", "title": "Scale equivariance (EQ_S)", "tables": [t["eq-s"]] if "eq-s" in t else [],
         "figures": ctx["eq_figs"]},
        {"id": "cka", "title": "Layer similarity (CKA)", "figures": ctx["cka_figs"]},
        {"id": "profiles", "title": "Model profiles (the ArbSR paper's Table 3 entries)",
         "grids": [_grid_ctx(g) for g in ctx["profiles"]]},
        {"id": "published", "title": "Published numbers (not measured here)",
         "grids": [_grid_ctx(ctx["published"])] if ctx["published"] else []},
    ]  # fmt: skip
    return [s for s in secs if s.get("cards") or s.get("tables") or s.get("figures") or s.get("grids")]


def render(doc: dict, *, reference: str | None = None, published: bool = True, cka_pairs: str | None = None) -> str:
    protocol = doc.get("config", {}).get("protocol", "?")
    try:
        words = get_protocol(protocol).in_words()
    except Exception:  # a protocol this version does not know: still render, say so
        words = f"{protocol} (not known to this eqbench version)"
    ctx = context(doc, reference=reference, published=published, cka_pairs=cka_pairs)
    marked = sorted({f for f in ctx["flags"].values() if f})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    return env.get_template("report.html").render(
        protocol=protocol, protocol_words=words, sections=_sections(ctx), reference=ctx["reference"],
        marked=marked, paper_methods=ctx["paper_methods"], published=published, provenance=ctx["provenance"])
