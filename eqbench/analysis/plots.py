"""Figures for the analyses: CKA heatmaps and EQ_S curves, each saved as PNG and SVG.

Figures are built on matplotlib `Figure` objects directly (no pyplot state, no display needed: the
Agg canvas renders them), with seaborn for the heatmaps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import output_error


def _save(fig, stem: Path) -> list[Path]:
    """PNG and SVG, each written to a temporary file and renamed (a full disk leaves old figures intact)."""
    # Plugin specs (mypkg.models:make) and folder names may hold '.' and ':': not in a file stem or an href.
    safe = re.sub(r"[^A-Za-z0-9_+=-]+", "_", stem.name)
    paths = [stem.with_name(safe + ".png"), stem.with_name(safe + ".svg")]
    # The tight bounding box once for both formats (bbox_inches="tight" lays the figure out again for
    # each savefig, so two formats cost four layouts): one layout pass, then one render per format. The
    # PNG is pixel-identical; the SVG's margins differ from its own tight box by up to ~2 pt (text
    # extents at 150 dpi, inside the 7.2 pt padding).
    from matplotlib import rcParams

    fig.set_dpi(150)  # the PNG's resolution: text extents (hence the box) depend on it
    fig.draw_without_rendering()
    bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(rcParams["savefig.pad_inches"])
    for p in paths:
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(tmp, dpi=150, bbox_inches=bbox, format=p.suffix[1:])
            os.replace(tmp, p)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise output_error(p, e) from None
    return paths


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def cka_heatmap(
    matrix,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    stem: Path,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
) -> list[Path]:
    """One CKA matrix as an annotated heatmap (colour range fixed to [0, 1] so figures compare)."""
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    fig = _figure(1.2 + 0.55 * m.shape[1], 1.0 + 0.45 * m.shape[0])
    ax = fig.add_subplot(1, 1, 1)
    sns.heatmap(
        m,
        ax=ax,
        vmin=0.0,
        vmax=1.0,
        cmap="magma",
        annot=m.size <= 400,
        fmt=".2f",
        xticklabels=list(col_labels),
        yticklabels=list(row_labels),
        cbar_kws={"label": "linear CKA"},
        annot_kws={"fontsize": 6},
    )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.tick_params(axis="y", labelrotation=0, labelsize=7)
    return _save(fig, stem)


def layer_scale_heatmap(
    per_layer: dict[str, Sequence[float]], taps: Sequence[str], stem: Path, *, title: str = ""
) -> list[Path]:
    """Rows: scale pairs; columns: layers; value: CKA of a layer's features between the two scales."""
    pairs = list(per_layer)
    m = np.array([per_layer[p] for p in pairs], dtype=float)
    return cka_heatmap(
        m,
        [f"x{p.replace('-', ' vs x')}" for p in pairs],
        list(taps),
        stem,
        title=title,
        xlabel="layer (feature tap)",
        ylabel="scale pair",
    )


def eq_s_curves(curves: dict[str, dict[str, Sequence[float]]], stem: Path, *, title: str = "") -> list[Path]:
    """curves[method] = {"scale": [...], "eq-s": [...], "psnr-y": [...]}: EQ_S solid, PSNR-Y dashed."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for i, (method, c) in enumerate(curves.items()):
        color = f"C{i % 10}"
        ax.plot(c["scale"], c["eq-s"], "o-", color=color, label=f"{method} EQ_S")
        ax.plot(c["scale"], c["psnr-y"], "s--", color=color, alpha=0.6, label=f"{method} PSNR-Y")
    ax.set_xlabel("scale r")
    ax.set_ylabel("dB (higher = better)")
    ax.set_title(title or "EQ_S = PSNR(phi(f(x)), f(phi(x))) and PSNR-Y")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, stem)
