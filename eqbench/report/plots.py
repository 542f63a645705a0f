"""Figures for the report, from results rows alone (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..scales import Scale  # noqa: E402


def to_data_uri(fig, tight: bool = True) -> str:
    # bbox_inches="tight" draws the figure twice; the curve panels set their margins instead (speed).
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _value(v) -> float:
    return float(v) if isinstance(v, str) else v


def curves(doc: dict, kind: str, metric: str) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """dataset -> method -> sorted [(scale, value)] over symmetric scales."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in doc["rows"]:
        if r.get("kind", "eval") != kind or r["metric"] != metric:
            continue
        s = Scale(float(r["scale"][0]), float(r["scale"][1]))
        if not s.symmetric:
            continue
        out.setdefault(r["dataset"], {}).setdefault(r["method"], []).append((s.h, _value(r["value"])))
    for ds in out.values():
        for m in ds:
            ds[m].sort()
    return out


def curve_figure(data: dict[str, dict[str, list[tuple[float, float]]]], ylabel: str, title: str,
                 reference: str | None = None) -> str | None:
    """One panel per dataset; with `reference`, values minus the reference method's at the same scale."""
    panels = {d: m for d, m in data.items() if any(len(v) > 1 for v in m.values())}
    if reference is not None:  # a relative plot needs the reference and at least one other method
        panels = {d: m for d, m in panels.items() if reference in m and len(m) > 1}
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    fig.subplots_adjust(left=0.6 / len(panels), right=1 - 0.1 / len(panels), bottom=0.16, top=0.9, wspace=0.3)
    for ax, (ds, methods) in zip(axes[0], panels.items()):
        ref = dict(methods.get(reference, [])) if reference else None
        for m, pts in methods.items():
            if ref is not None:
                pts = [(s, v - ref[s]) for s, v in pts if s in ref and math.isfinite(v) and math.isfinite(ref[s])]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=m)
        ax.axvline(4.0, color="0.7", lw=0.8, ls="--")
        ax.set_title(ds)
        ax.set_xlabel("scale (x; dashed: training range limit)")
        ax.set_ylabel(ylabel if ref is None else f"{ylabel} - {reference}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    return to_data_uri(fig, tight=False)


def heatmap(matrix: list[list[float]], xlabels: list[str], ylabels: list[str], title: str) -> str:
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(0.45 * len(xlabels) + 2.5, 0.35 * len(ylabels) + 1.8))
    sns.heatmap(matrix, ax=ax, vmin=0, vmax=1, cmap="magma", xticklabels=xlabels, yticklabels=ylabels,
                annot=len(xlabels) <= 8, fmt=".2f", cbar_kws={"label": "CKA"})
    ax.set_title(title, fontsize=9)
    return to_data_uri(fig)
