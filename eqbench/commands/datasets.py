"""eqbench datasets: list datasets with found/missing/count/checksum status, or verify checksums."""

from __future__ import annotations

import argparse

from ..errors import EqbenchError, unknown_name
from .common import add_data_root

NAME = "datasets"
HELP = "list datasets and their status, or verify checksums"
EXAMPLES = """examples:
  eqbench datasets --data-root ../shared/datasets
  eqbench datasets verify Set5 --data-root ../shared/datasets"""

HEAD = ("dataset", "role", "status", "images", "checksums", "location")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "verify"], default="list")
    p.add_argument("names", nargs="*", help="datasets to verify (default: all)")
    add_data_root(p)


def run(a: argparse.Namespace) -> int:
    from ..data.datasets import load_catalog, resolve_data_root, status, verify

    root, origin = resolve_data_root(a.data_root)
    catalog = load_catalog()
    for n in a.names:
        if n not in catalog:
            raise unknown_name("dataset", n, catalog)
    names = a.names or list(catalog)
    print(f"data root: {root} (from {origin})")
    bad, rows = 0, []
    for n in names:
        spec = catalog[n]
        st = status(spec, root)
        if a.action == "verify" or (spec.checksums and st.found):
            state, problems = verify(st, root)
        else:
            state, problems = ("-" if st.found else "missing"), []
        if a.action == "verify" and state in ("mismatch", "missing"):
            bad += 1
        rows.append((n, spec.role, "found" if st.found else "missing", f"{st.count}/{spec.images}", state,
                     str(st.folder)))
        rows.extend(("", "", "", "", pr, "") for pr in problems[:10])
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if bad:
        raise EqbenchError(f"{bad} dataset(s) failed verification (see above); re-download the files named")
    return 0
