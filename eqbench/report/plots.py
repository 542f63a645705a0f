"""Figures for the report, from results rows alone (matplotlib, Agg backend).

Sized for reading: full axis labels, legends outside the data, the training range (x1-x4) shaded,
asymmetric scales drawn at their area-equivalent scale sqrt(h*w) with a hollow marker and labelled.
Each figure is embedded as SVG or PNG, whichever is smaller (line plots: SVG; heatmaps: PNG).
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..scales import Scale  # noqa: E402

PNG_DPI = 90
TRAIN_RANGE = (1.0, 4.0)
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})  # SVG text stays text: smaller, searchable


SVG_ALWAYS_BELOW = 120_000  # bytes: an SVG this small is kept without trying PNG (saves a second render)


def _save(fig, kind: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=kind, dpi=PNG_DPI, bbox_inches="tight", metadata={"Date": None} if kind == "svg" else None)
    return buf.getvalue()


def to_data_uri(fig, fmt: str = "auto") -> str:
    """The figure as a data URI: fmt 'svg', 'png', or 'auto' (SVG, unless the PNG at PNG_DPI is smaller)."""
    out = {k: _save(fig, k) for k in (("svg",) if fmt == "auto" else (fmt,))}
    if fmt == "auto" and len(out["svg"]) > SVG_ALWAYS_BELOW:
        out["png"] = _save(fig, "png")
    plt.close(fig)
    kind = min(out, key=lambda k: len(out[k]))
    mime = "image/svg+xml" if kind == "svg" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(out[kind]).decode("ascii")


def curves(doc: dict, kind: str, metric: str) -> dict[str, dict[str, list[tuple[float, float, str]]]]:
    """dataset -> method -> [(x, value, label)] sorted by x; x is the scale, or sqrt(h*w) for an
    asymmetric scale (label '1.5x4'; '' for symmetric ones)."""
    out: dict[str, dict[str, list[tuple[float, float, str]]]] = {}
    for r in doc["rows"]:
        if r.get("kind", "eval") != kind or r["metric"] != metric:
            continue
        s = Scale(float(r["scale"][0]), float(r["scale"][1]))
        x, lab = (s.h, "") if s.symmetric else (math.sqrt(s.h * s.w), s.label())
        out.setdefault(r["dataset"], {}).setdefault(r["method"], []).append((x, float(r["value"]), lab))
    for ds in out.values():
        for m in ds:
            ds[m].sort()
    return out


def _relative(pts, ref_pts):
    ref = {(x, lab): v for x, v, lab in ref_pts}
    return [(x, v - ref[(x, lab)], lab) for x, v, lab in pts
            if (x, lab) in ref and math.isfinite(v) and math.isfinite(ref[(x, lab)])]


def _panel(ax, methods: dict, reference: str | None, order: list[str], labels: dict[str, str]) -> None:
    ref_pts = methods.get(reference, []) if reference else None
    asym: dict[float, str] = {}
    for i, m in enumerate(order):
        if m not in methods or (ref_pts is not None and m == reference):
            continue
        pts = methods[m] if ref_pts is None else _relative(methods[m], ref_pts)
        sym = [(x, v) for x, v, lab in pts if not lab]
        color = f"C{i % 10}"
        if sym:
            ax.plot([p[0] for p in sym], [p[1] for p in sym], marker="o", ms=3.5, color=color, label=labels.get(m, m))
        for x, v, lab in (p for p in pts if p[2]):
            ax.plot([x], [v], marker="D", ms=6, mfc="none", color=color, ls="none",
                    label=None if sym else labels.get(m, m))
            asym[x] = lab
    for x, lab in asym.items():  # one dotted line and label per asymmetric scale, at the top of the panel
        ax.axvline(x, color="0.5", lw=0.7, ls=":")
        ax.annotate(f"{lab}", (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                    textcoords="offset points", fontsize=7, color="0.3")
    ax.axvspan(*TRAIN_RANGE, color="0.85", alpha=0.5, lw=0, label="training range x1-x4")
    ax.set_xlabel("scale factor (HxW scales at sqrt(H*W): hollow diamonds)")
    ax.grid(alpha=0.3)


def curve_figure(data: dict, ylabel: str, title: str, reference: str | None = None,
                 order: list[str] | None = None, labels: dict[str, str] | None = None) -> str | None:
    """One panel per dataset; with `reference`, each method minus the reference method at the same scale."""
    panels = {d: m for d, m in data.items() if any(len(v) > 1 for v in m.values())}
    if reference is not None:  # a relative plot needs the reference and at least one other method
        panels = {d: m for d, m in panels.items() if reference in m and len(m) > 1}
    if not panels:
        return None
    order = order or sorted({m for ms in panels.values() for m in ms})
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n + 1.8, 3.6), squeeze=False)
    for ax, (ds, methods) in zip(axes[0], panels.items()):
        _panel(ax, methods, reference, order, labels or {})
        ax.set_title(ds)
        ax.set_ylabel(ylabel if reference is None else f"{ylabel}, minus {reference}")
        if reference is not None:
            ax.axhline(0.0, color="0.3", lw=1.0, label=f"{labels.get(reference, reference) if labels else reference}"
                       " (= 0)")
    handles, names = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(names, handles))
    fig.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_data_uri(fig)


def _grid(n: int, cols: int = 4):
    cols = max(1, min(cols, n))
    return cols, math.ceil(n / cols)


def layer_lines(entries: list[dict], title: str) -> str | None:
    """CKA of each layer between scales: one small panel per method, one line per scale pair."""
    if not entries:
        return None
    cols, rows = _grid(len(entries))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(entries):]:
        ax.axis("off")
    for ax, e in zip(axes.flat, entries):
        for pair, vals in zip(e["ylabels"], e["matrix"]):
            ax.plot(range(len(vals)), vals, marker="o", ms=3, label=pair)
        ax.set_title(e.get("method", ""), fontsize=9)
        ax.set_xticks(range(len(e["xlabels"])))
        ax.set_xticklabels([_short(x) for x in e["xlabels"]], rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("CKA")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_ylim(min(0.99, min(min(r) for r in e["matrix"]) - 0.001), 1.0005)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, title="scales", title_fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_data_uri(fig)


def _short(name: str, n: int = 18) -> str:
    return name if len(name) <= n else "…" + name[-(n - 1):]


def heatmap_grid(entries: list[dict], title: str, panel_title) -> str | None:
    """Small multiples of CKA heatmaps (one panel per entry), one shared colour scale [0, 1]."""
    if not entries:
        return None
    cols, rows = _grid(len(entries))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols + 0.8, 3.0 * rows), squeeze=False)
    im = None
    for ax in axes.flat[len(entries):]:
        ax.axis("off")
    for ax, e in zip(axes.flat, entries):
        im = ax.imshow(e["matrix"], vmin=0, vmax=1, cmap="magma", aspect="auto", interpolation="nearest")
        ax.set_title(panel_title(e), fontsize=8)
        ax.set_xticks(range(len(e["xlabels"])))
        ax.set_xticklabels([_short(x, 14) for x in e["xlabels"]], rotation=70, ha="right", fontsize=5)
        ax.set_yticks(range(len(e["ylabels"])))
        ax.set_yticklabels([_short(x, 14) for x in e["ylabels"]], fontsize=5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    cax = fig.add_axes((0.945, 0.15, 0.012, 0.7))
    fig.colorbar(im, cax=cax, label="CKA")
    return to_data_uri(fig)
