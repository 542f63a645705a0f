"""One self-contained HTML page (jinja2; images embedded as data URIs; no network assets)."""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

import jinja2

from ..protocol import get_protocol
from . import plots
from .tables import OOD_LIMIT, Table, build_table

HERE = Path(__file__).parent
TABLE_TITLES = {
    "psnr-y": "PSNR-Y (dB), the layout of the EQSR paper's Table 1",
    "ssim-y": "SSIM-Y, the layout of the EQSR supplement's Table 3",
    "eq-s": "EQ_S (dB): PSNR between SR-then-downscale and downscale-then-SR, higher = more equivariant",
}


def _table_ctx(t: Table, title: str, tid: str) -> dict:
    cols = [{"label": s, "ood": s.endswith("*")} for _, s in t.columns]
    groups = [(ds, len(list(g))) for ds, g in groupby(t.columns, key=lambda c: c[0])]
    rows = []
    ranks = {c: t.ranks(c) for c in t.columns}
    for m in t.methods:
        cells = []
        for c in t.columns:
            r = ranks[c].get(m)
            cls = {1: "best", 2: "second"}.get(r, "")
            cells.append({"text": t.fmt(t.get(m, c)), "cls": (cls + (" ood" if c[1].endswith("*") else "")).strip()})
        rows.append({"method": m, "cells": cells})
    return {"id": tid, "title": f"{title} [{t.protocol}]", "cols": cols, "groups": groups, "rows": rows}


def _published(doc: dict) -> dict | None:
    """The published numbers for the dataset x scale cells this run measured, clearly labelled."""
    data = json.loads((HERE / "data" / "published.json").read_text())
    cells = {(r["dataset"], round(float(r["scale"][0]), 4)) for r in doc["rows"]
             if r.get("kind", "eval") == "eval" and r["scale"][0] == r["scale"][1]}
    rows = [r for r in data["rows"] if (r["dataset"], round(r["scale"], 4)) in cells]
    if not rows:
        return None
    order = list(dict.fromkeys(r["dataset"] for r in doc["rows"]))
    cols = sorted({(r["dataset"], r["scale"]) for r in rows}, key=lambda c: (order.index(c[0]), c[1]))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    val = {(r["method"], r["dataset"], r["scale"]): r["value"] for r in rows}
    head = ["method (published)"] + [f"{d} x{s:g}{'*' if s > OOD_LIMIT else ''}" for d, s in cols]
    body = [[m] + [f"{val[(m, d, s)]:.2f}" if (m, d, s) in val else "-" for d, s in cols] for m in methods]
    return {"title": "Published PSNR-Y (not measured here)", "cls": "published", "head": head, "body": body,
            "note": "As printed in the EQSR paper's Table 1, each paper under its own evaluation conventions: "
                    "not comparable to the last digit with the measured tables above. " + data["note"]}


def _cka_figures(an: dict) -> list[dict]:
    figures = []
    for key, entry in (an.get("cka") or {}).items():
        if not isinstance(entry, dict):
            continue
        if "per_layer" in entry and entry.get("taps"):
            pairs = list(entry["per_layer"])
            matrix = [[entry["per_layer"][p][i] for p in pairs] for i in range(len(entry["taps"]))]
            title = f"{key}: CKA of each layer between scales (the EQSR paper's Fig. 2a)"
            figures.append({"id": f"cka-{key}", "title": title, "uri": plots.heatmap(
                matrix, [f"x{p.replace('-', ' vs x')}" for p in pairs], entry["taps"], title),
                "note": f"{entry.get('n_crops', '?')} LR crops, {entry.get('estimator', 'minibatch unbiased')} CKA."})
        for pair, m in (entry.get("matrices") or {}).items():
            rows = entry.get("rows") or entry.get("taps") or [str(i) for i in range(len(m))]
            cols = entry.get("cols") or entry.get("taps") or [str(i) for i in range(len(m[0]))]
            title = f"{key}: layer-by-layer CKA ({pair})"
            figures.append({"id": f"cka-{key}-{pair}", "title": title, "note": None,
                            "uri": plots.heatmap(m, cols, rows, title)})
    return figures


def _profile_table(an: dict) -> dict | None:
    prof = an.get("profile") or {}
    body = []
    for key, e in prof.items():
        if not isinstance(e, dict):
            continue
        params = (e.get("params") or {}).get("total")
        flops = (e.get("flops") or [{}])[0]
        lat = e.get("latency") or {}
        mem = e.get("memory") or {}
        body.append([key, f"{params:,}" if isinstance(params, int) else "-",
                     f"{flops.get('flops', 0) / 1e9:.2f} G{e.get('flops_unit', 'FLOPs')} ({flops.get('lr')} -> "
                     f"{flops.get('out')})" if flops else "-",
                     _fmt_num(mem["peak_bytes"] / 2**20 if mem.get("peak_bytes") is not None else None,
                              f" MB ({mem.get('lr')} x{mem.get('scale', ['?'])[0]})"),
                     _fmt_num(lat["mean_median_s"] * 1000 if lat.get("mean_median_s") is not None else None,
                              f" ms (mean over {lat.get('dataset', '?')})")])
    if not body:
        return None
    return {"title": "Model profiles (the ArbSR paper's Table 3 layout)", "cls": "profile", "note": None,
            "head": ["method", "params", "FLOPs", "peak memory", "time (median)"], "body": body}


def _fmt_num(v, unit: str) -> str:
    return "-" if v in (None, "") else f"{float(v):.1f}{unit}"


def _analysis_blocks(doc: dict) -> tuple[list[dict], list[dict]]:
    an = doc.get("analyses") or {}
    prof = _profile_table(an)
    return _cka_figures(an), [prof] if prof else []


def render(doc: dict, *, reference: str | None = None, published: bool = True) -> str:
    protocol = doc.get("config", {}).get("protocol", "?")
    try:
        words = get_protocol(protocol).in_words()
    except Exception:  # a protocol this version does not know: still render, say so
        words = f"{protocol} (not known to this eqbench version)"
    tables = []
    for metric in ("psnr-y", "ssim-y"):
        t = build_table(doc, metric)
        if t.methods:
            tables.append(_table_ctx(t, TABLE_TITLES[metric], metric))
    eq = build_table(doc, "eq-s", kind="equivariance")
    if eq.methods:
        tables.append(_table_ctx(eq, TABLE_TITLES["eq-s"], "eq-s"))
    methods = list(dict.fromkeys(r["method"] for r in doc["rows"]))
    ref = reference or next((m for m in methods if m != "bicubic"), methods[0] if methods else None)
    figures = []
    psnr = plots.curves(doc, "eval", "psnr-y")
    for fid, title, data, r in (
        ("psnr", "PSNR-Y vs scale", psnr, None),
        ("psnr-drop", f"PSNR-Y relative to {ref} (the EQSR paper's Fig. 1)", psnr, ref),
        ("eqs", "EQ_S vs scale", plots.curves(doc, "equivariance", "eq-s"), None),
        ("eqs-delta", f"EQ_S relative to {ref} (the EQSR paper's Fig. 7b)", plots.curves(doc, "equivariance", "eq-s"),
         ref),
    ):
        uri = plots.curve_figure(data, "dB", title, reference=r)
        if uri:
            figures.append({"id": fid, "title": title, "uri": uri, "note": None})
    afig, atab = _analysis_blocks(doc)
    figures += afig
    extra = atab
    if published and (p := _published(doc)):
        extra.append(p)
    prov = doc.get("provenance", {})
    flat = [(k, json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in prov.items()]
    flat += [(f"dataset {k}", f"{v.get('n_files')} files, sha256 {v.get('digest', '')[:16]}...")
             for k, v in (doc.get("datasets") or {}).items()]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    return env.get_template("report.html").render(
        protocol=protocol, protocol_words=words, tables=tables, figures=figures, extra_tables=extra,
        provenance=flat)
