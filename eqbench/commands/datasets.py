"""eqbench datasets: list datasets with their status, verify them by pixel digest, or prepare one."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import EqbenchError, unknown_name
from .common import add_data_root

NAME = "datasets"
HELP = "list datasets and their status, verify them, or prepare one from a folder, archive or URL"
EXAMPLES = """examples:
  eqbench datasets --data-root ../shared/datasets
  eqbench datasets verify Set5 --data-root ../shared/datasets
  eqbench datasets prepare Urban100 --from https://cv.snu.ac.kr/research/EDSR/benchmark.tar
  eqbench datasets prepare DF2K --from DIV2K_train_HR.zip --from Flickr2K.tar"""

HEAD = ("dataset", "role", "status", "images", "check", "location")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "verify", "prepare"], default="list")
    p.add_argument("names", nargs="*", help="datasets to verify (default: all), or the one to prepare")
    p.add_argument("--from", dest="sources", action="append", metavar="SOURCE",
                   help="prepare: a folder, .zip, .tar(.gz) or http(s) URL holding the set (repeatable: DF2K)")
    p.add_argument("--force", action="store_true", help="prepare: replace an existing copy of the set")
    p.add_argument("--cache", metavar="DIR", help="prepare: download cache (default ~/.cache/eqbench/downloads)")
    p.add_argument("--no-progress", action="store_true", help="prepare: no download progress bar")
    add_data_root(p)


def run(a: argparse.Namespace) -> int:
    from ..data.datasets import load_catalog, resolve_data_root

    root, origin = resolve_data_root(a.data_root)
    catalog = load_catalog()
    for n in a.names:
        if n not in catalog:
            raise unknown_name("dataset", n, catalog)
    if a.action == "prepare":
        return _prepare(a, catalog, root)
    if a.sources or a.force or a.cache:
        raise EqbenchError("--from, --force and --cache belong to `eqbench datasets prepare NAME --from SOURCE`")
    print(f"data root: {root} (from {origin})")
    return _table(a, catalog, root)


def _table(a: argparse.Namespace, catalog: dict, root: Path) -> int:
    from ..data.datasets import status, verify, verify_set

    bad, rows, notes = 0, [], {}
    for n in a.names or list(catalog):
        spec = catalog[n]
        st = status(spec, root)
        if a.action == "verify":
            state, problems = verify_set(st, root)
        elif spec.checksums and st.found:
            state, problems = verify(st, root)
        else:
            state = ("digests" if spec.digests else "no digests") if st.found or not spec.path else "missing"
            problems = []
        if a.action == "verify" and state in ("mismatch", "missing"):
            bad += 1
        rows.append((n, spec.role, "found" if st.found else "missing", f"{st.count}/{spec.images}", state,
                     str(st.folder)))
        notes[n] = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        for line in notes.get(r[0], []):
            print(f"    {line}")
    if bad:
        raise EqbenchError(f"{bad} dataset(s) failed verification (see above); re-download or re-prepare the "
                           "files named (`eqbench datasets prepare NAME --from SOURCE --force`)")
    return 0


def _prepare(a: argparse.Namespace, catalog: dict, root: Path) -> int:
    from ..data.prepare import prepare

    if len(a.names) != 1 or not a.sources:
        raise EqbenchError("usage: eqbench datasets prepare NAME --from SOURCE (one dataset; SOURCE a folder, "
                           ".zip, .tar(.gz) or http(s) URL)")
    spec = catalog[a.names[0]]
    done = prepare(spec, a.sources, root, cache_dir=Path(a.cache) if a.cache else None, force=a.force,
                   progress=not a.no_progress)
    note = "" if spec.digests else f"; {spec.name} has no digests in the catalogue, so only its count was checked"
    print(f"prepared {spec.name}: {done.images} images in {done.folder}, verified by {done.verified}{note}")
    return 0
