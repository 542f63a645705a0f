"""Analysis results in results.json: the evaluation's schema, shared with `eqbench run`.

An analysis adds to the results.json in its output folder (creating it if absent), so one folder can
hold an evaluation and its analyses. EQ_S values are tidy rows (kind "equivariance", metric "eq-s",
and the matching PSNR-Y rows, kind "equivariance-ref"); a new row replaces an old one with the same
(kind, method, dataset, scale, metric, protocol). Under doc["analyses"]: "cka" and "profile" are lists
of entries the HTML report renders (heatmaps: matrix / xlabels / ylabels / title; Table 3 rows of
display strings), "profile_details" and "equivariance" documents keyed by method@size and dataset;
each carries the job's configuration and provenance (see eqbench/results.py).
"""

from __future__ import annotations

from pathlib import Path

from .. import provenance
from ..data.datasets import digest
from ..results import load_results, new_results, write_json_atomic


def _key(row: dict) -> tuple:
    return (
        row.get("kind"),
        row.get("method"),
        row.get("dataset"),
        tuple(row.get("scale") or ()),
        row.get("metric"),
        row.get("protocol"),
    )


class AnalysisStore:
    def __init__(self, out: Path, *, device: str, seed: int, config: dict, name: str = "results.json") -> None:
        self.path = Path(out) / name
        prov = provenance.collect(device, seed)
        if self.path.exists():
            self.doc = load_results(self.path)
            self.doc.setdefault("analyses", {})
        else:
            self.doc = new_results(prov, {"command": "analyze", **config})
        self.provenance = prov

    def add_dataset(self, name: str, files, folder: str, source: str) -> None:
        """Record the images an analysis read. An evaluation's record of the same dataset with other
        images (an analysis under --limit) is kept: the subset goes under its "subsets" list, so the
        evaluation rows keep the digest they were measured on (eqbench compare checks it)."""
        entry = {"digest": digest(files), "n_files": len(files), "folder": folder, "source": source}
        old = self.doc["datasets"].get(name)
        if old and old.get("digest") not in (None, entry["digest"]):
            subsets = old.setdefault("subsets", [])
            if not any(s.get("digest") == entry["digest"] for s in subsets):
                subsets.append({"digest": entry["digest"], "n_files": entry["n_files"]})
            return
        self.doc["datasets"][name] = entry

    def add_rows(self, rows: list[dict]) -> None:
        new = {_key(r) for r in rows}
        self.doc["rows"] = [r for r in self.doc["rows"] if _key(r) not in new] + rows

    def set_analysis(self, kind: str, name: str, value: dict, config: dict) -> None:
        section = self.doc["analyses"].setdefault(kind, {})
        section[name] = {**value, "config": config, "provenance": self.provenance}

    def put_entries(self, kind: str, entries: list[dict], key: tuple[str, ...]) -> None:
        """Append to the list analyses[kind], replacing entries equal on the `key` fields."""
        old = self.doc["analyses"].get(kind)
        old = old if isinstance(old, list) else []
        new = {tuple(repr(e.get(k)) for k in key) for e in entries}
        self.doc["analyses"][kind] = [e for e in old if tuple(repr(e.get(k)) for k in key) not in new] + entries

    def save(self) -> Path:
        self.doc["provenance"]["finished"] = provenance.now_iso()
        write_json_atomic(self.path, self.doc)
        return self.path
