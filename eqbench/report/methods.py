"""What each method in a results file is: size preset, weights source, parameters, training data.

Read from the results alone (doc["models"] written by `eqbench run`, config["models"] by `eqbench analyze`,
provenance["weights_sha256"], analyses["profile_details"]) plus the zoo manifest shipped with eqbench
(training data and recipe of a zoo file, matched by sha256). Older files without these say "not recorded".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent.parent / "zoo" / "manifest.json"
# results' "source" -> what the report calls the weights
SOURCE_WORDS = {"zoo": "zoo", "user": "file", "random": "random-init", "parameter-free": "none (parameter-free)",
                "plugin": "plugin"}  # fmt: skip


@dataclass
class MethodInfo:
    name: str
    size: str | None = None
    source: str | None = None  # zoo | file | random-init | plugin | none (parameter-free) | None (not recorded)
    weights: str | None = None
    sha256: str | None = None
    params: int | None = None
    spec: str | None = None  # a plugin's pkg.mod:attr
    training: dict = field(default_factory=dict)

    @property
    def reference(self) -> bool:
        return self.source == SOURCE_WORDS["parameter-free"]

    @property
    def flag(self) -> str:
        """The visible marker next to the method's name in every table ('' for paper-size trained models)."""
        if self.source == "random-init":
            return "random-init"
        return self.size if self.size and self.size != "paper" and not self.reference else ""

    @property
    def label(self) -> str:
        return f"{self.name} [{self.flag}]" if self.flag else self.name


def _models(doc: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for src in ((doc.get("config") or {}).get("models"), doc.get("models")):
        for m, d in (src or {}).items():
            if isinstance(d, dict):
                out[m] = {**out.get(m, {}), **{k: v for k, v in d.items() if v is not None}}
    return out


def _zoo_training(sha: str | None) -> dict:
    if not sha or not MANIFEST.is_file():
        return {}
    for entry in json.loads(MANIFEST.read_text()).get("models", {}).values():
        if entry.get("sha256") == sha:
            t = entry.get("train") or {}
            data = (t.get("data") or {}).get("main") or {}
            return {"data": " + ".join(data.get("datasets") or []) + (f" ({data['images']} images)"
                                                                       if data.get("images") else ""),
                    "recipe": t.get("recipe"), "iterations": t.get("iterations"), "command": t.get("command")}
    return {}


def _profiled(doc: dict) -> dict[str, dict]:
    out = {}
    for key, p in ((doc.get("analyses") or {}).get("profile_details") or {}).items():
        if isinstance(p, dict) and isinstance(p.get("params"), dict):
            out[p.get("method", key.split("@")[0])] = p
    return out


def method_infos(doc: dict, methods: list[str]) -> dict[str, MethodInfo]:
    models, profiled = _models(doc), _profiled(doc)
    params = {m: p["params"].get("total") for m, p in profiled.items()}
    shas = (doc.get("provenance") or {}).get("weights_sha256") or {}
    out = {}
    for m in methods:
        d = models.get(m, {})
        src = d.get("source")
        info = MethodInfo(m, d.get("size"), SOURCE_WORDS.get(src, src), d.get("weights"),
                          d.get("sha256") or shas.get(m), params.get(m), d.get("spec") or d.get("plugin"))
        if info.source is None and _is_reference(m):
            info.source = SOURCE_WORDS["parameter-free"]
        elif info.source is None and m in profiled:  # only profiled: profiles build random weights
            info.size = info.size or profiled[m].get("size")
            info.source = "random-init (profile only)"
        if info.reference and info.params is None:
            info.params = 0
        if src == "zoo":
            info.training = _zoo_training(info.sha256)
        out[m] = info
    return out


def _is_reference(name: str) -> bool:
    from ..method import is_reference

    return is_reference(name)


def reference_method(infos: dict[str, MethodInfo]) -> str | None:
    """The parameter-free reference (from the results' models, else the method registry)."""
    return next((m for m, i in infos.items() if i.reference), None)


def ordered(methods: list[str], infos: dict[str, MethodInfo]) -> list[str]:
    """The reference first, then the rest alphabetically (stable across runs and files)."""
    ref = reference_method(infos)
    return ([ref] if ref in methods else []) + sorted(m for m in methods if m != ref)
