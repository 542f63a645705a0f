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


def _analysis_blocks(doc: dict) -> tuple[list[dict], list[dict]]:
    """CKA heatmaps and the profile table, in the layout eqbench/results.py documents."""
    figures, tables = [], []
    an = doc.get("analyses") or {}
    for i, entry in enumerate(an.get("cka") or []):
        if isinstance(entry, dict) and {"matrix", "xlabels", "ylabels"} <= set(entry):
            title = entry.get("title", "CKA")
            note = f"{entry['n_crops']} LR crops, {entry.get('estimator', '')}" if entry.get("n_crops") else None
            figures.append({"id": f"cka-{i}", "title": title, "note": note,
                            "uri": plots.heatmap(entry["matrix"], entry["xlabels"], entry["ylabels"], title)})
    prof = [row for row in an.get("profile") or [] if isinstance(row, dict)]
    if prof:
        keys = list(dict.fromkeys(k for row in prof for k in row))
        tables.append({"title": "Model profiles (the ArbSR paper's Table 3 layout)", "cls": "profile", "note": None,
                       "head": keys, "body": [[row.get(k, "-") for k in keys] for row in prof]})
    return figures, tables


def _learned(doc: dict, method: str) -> bool:
    """Whether `method` has learned weights, as the results record it (else as the method registry says)."""
    models = doc.get("models") or doc.get("config", {}).get("models") or {}
    source = models.get(method, {}).get("source")
    if source is not None:
        return source != "parameter-free"
    from ..method import METHODS, method_entry

    return method not in METHODS or method_entry(method).learned


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
    ref = reference or next((m for m in methods if _learned(doc, m)), methods[0] if methods else None)
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
