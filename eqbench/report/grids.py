"""The report's non-score tables as plain grids of values (numbers stay numbers; formatted when rendered):
method cards, profiles grouped by setting (input size, scale), published numbers. Shared by the HTML page
and the markdown / CSV exports (`eqbench report --format md|csv --metric all`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..scales import Scale
from .methods import MethodInfo
from .tables import OOD_LIMIT

HERE = Path(__file__).parent


@dataclass
class Grid:
    id: str
    title: str
    head: list[str]
    rows: list[list]  # cells: str, int, float or None
    note: str = ""
    units: dict[int, str] = field(default_factory=dict)  # column index -> "si" | "bytes" | "s" | "dB"

    def text(self, j: int, v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, str) or isinstance(v, bool):
            return str(v)
        unit = self.units.get(j)
        if unit == "si":
            return si(v)
        if unit == "bytes":
            return si(v, "B")
        if unit == "s":
            return f"{v:.3g} s"
        if unit == "dB":
            return f"{v:.2f}"
        return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"

    def text_rows(self) -> list[list[str]]:
        return [[self.text(j, v) for j, v in enumerate(r)] for r in self.rows]


def si(v: float, unit: str = "") -> str:
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}{unit}"
    return f"{v:.3g}{unit}"


def cards_grid(infos: dict[str, MethodInfo], order: list[str]) -> Grid:
    rows = []
    for m in order:
        i = infos[m]
        t = i.training
        recipe = ", ".join(str(x) for x in (t.get("recipe"), t.get("iterations") and f"{t['iterations']} iterations")
                           if x)  # fmt: skip
        rows.append([m, i.size or "not recorded", i.params, i.source or "not recorded",
                     Path(i.weights).name if i.weights else (i.spec or None), i.sha256, t.get("data"), recipe or None])
    return Grid("methods", "Methods: size, weights and training", ["method", "size", "parameters", "weights source",
                "weights file / plugin", "sha256", "training data", "recipe"], rows,
                "Training data and recipe from the zoo manifest (matched by sha256); 'not recorded' where the "
                "results file does not say.")  # fmt: skip


def _at(lr, scale) -> str:
    return f"{lr[0]}x{lr[1]} input, x{Scale(*[float(v) for v in scale]).label()}"


def profile_grids(doc: dict, order: list[str]) -> list[Grid]:
    """Profiles from analyses["profile_details"] (numbers in every results file version), one table for
    parameters and latency and one per setting (LR input size, scale) for FLOPs and peak memory."""
    details = [p for p in ((doc.get("analyses") or {}).get("profile_details") or {}).values() if isinstance(p, dict)]
    if not details:
        return []
    rank = {m: i for i, m in enumerate(order)}
    details.sort(key=lambda p: (rank.get(p.get("method"), len(rank)), p.get("method", ""), p.get("size", "")))

    def name(p):  # the size profiled (profiles use random weights at the method's size)
        m, size = p.get("method", "?"), p.get("size")
        return m if size in (None, "paper") or size == "none" else f"{m} [{size}]"

    rows = []
    for p in details:
        lat = p.get("latency") or {}
        where = f"{lat.get('dataset') or 'dataset'} x{Scale(*lat['scale']).label()}" if lat.get("scale") else None
        rows.append([name(p), (p.get("params") or {}).get("total"), lat.get("mean_median_s"), where,
                     lat.get("n_images"), f"{p.get('device', '?')}, {p.get('threads', '?')} threads"])
    out = [Grid("profile-params", "Parameters and latency", ["method", "parameters", "latency (mean of per-image "
                "medians)", "timed on", "images", "device"], rows,
                "Latency: torch.utils.benchmark median per image, averaged over the timed images.",
                {1: "si", 2: "s"})]  # fmt: skip
    settings: dict[tuple, dict[str, list]] = {}
    for p in details:
        for f in p.get("flops") or []:
            settings.setdefault((tuple(f["lr"]), tuple(f["scale"])), {}).setdefault(name(p), [None, None])[0] = \
                f["flops"]
        mem = p.get("memory")
        if mem:
            settings.setdefault((tuple(mem["lr"]), tuple(mem["scale"])), {}).setdefault(name(p), [None, None])[1] = \
                mem["peak_bytes"]
    unit = next((p.get("flops_unit") for p in details if p.get("flops_unit")), "FLOPs")
    for (lr, scale), vals in sorted(settings.items()):
        gid = f"profile-{lr[0]}x{lr[1]}-x{Scale(*scale).label()}"
        out.append(Grid(gid, f"FLOPs and peak memory at {_at(lr, scale)}", ["method", "FLOPs", "peak memory"],
                        [[m, *v] for m, v in vals.items()], unit, {1: "si", 2: "bytes"}))
    return out


def published_grid(doc: dict, paper_methods: list[str]) -> Grid | None:
    """The published PSNR-Y numbers for the cells this run measured, only for the methods this run
    evaluated at the papers' (`paper`) size."""
    data = json.loads((HERE / "data" / "published.json").read_text())
    cells = {(r["dataset"], round(float(r["scale"][0]), 4)) for r in doc["rows"]
             if r.get("kind", "eval") == "eval" and r["scale"][0] == r["scale"][1]}  # fmt: skip
    wanted = {m.lower() for m in paper_methods}
    rows = [r for r in data["rows"] if (r["dataset"], round(r["scale"], 4)) in cells and r["method"].lower() in wanted]
    if not rows:
        return None
    order = list(dict.fromkeys(r["dataset"] for r in doc["rows"]))
    cols = sorted({(r["dataset"], r["scale"]) for r in rows}, key=lambda c: (order.index(c[0]), c[1]))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    val = {(r["method"], r["dataset"], r["scale"]): r["value"] for r in rows}
    head = ["method (published)"] + [f"{d} x{s:g}{'*' if s > OOD_LIMIT else ''}" for d, s in cols]
    body = [[m] + [val.get((m, d, s)) for d, s in cols] for m in methods]
    return Grid("published", "Published PSNR-Y (dB), not measured here", head, body,
                "As printed in the EQSR paper's Table 1, each paper under its own evaluation conventions, for the "
                "methods this run evaluated at the papers' size: not comparable to the last digit with the measured "
                "tables. " + data["note"], {j: "dB" for j in range(1, len(head))})  # fmt: skip
