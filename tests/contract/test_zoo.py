"""The committed CPU zoo: every manifest entry's file is present, matches its checksum, loads strictly
into its method, and has its model card and training log."""

from __future__ import annotations

import re

import pytest

import eqbench
from eqbench.checkpoint import load_weights
from eqbench.zoo import ZOO_DIR, verify, zoo_entries

ENTRIES = zoo_entries()
ZOO_METHODS = ("eqsr", "eqsr-edsr", "liif", "lte", "metasr", "arbsr")


def test_zoo_covers_the_issue_methods():
    assert set(ZOO_METHODS) <= set(ENTRIES)


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_zoo_entry_is_complete(method):
    e = ENTRIES[method]
    path = verify(e)
    model = eqbench.create_method(method, size=e.size, **e.options)
    load_weights(model, path)  # strict: a checkpoint of another architecture is an error
    assert (ZOO_DIR / e.card).is_file() and (ZOO_DIR / e.log).is_file()
    cmd = e.train["command"]
    assert cmd.startswith(("OMP_NUM_THREADS=1 eqbench train", "eqbench train", "OMP_NUM_THREADS=1 torchrun"))
    assert "eqbench train" in cmd
    # the card states how the run used the machine: torchrun's process count is the run's world size
    procs = int(re.search(r"--nproc_per_node[ =](\d+)", cmd).group(1)) if "torchrun" in cmd else 1
    assert e.train.get("processes", 1) == procs
    card = (ZOO_DIR / e.card).read_text()
    assert (f"{procs} torchrun processes" in card) == (procs > 1)


def test_zoo_weights_stay_small():
    total = sum(e.path.stat().st_size for e in ENTRIES.values())
    assert total < 25 * 2**20, f"zoo weights total {total / 2**20:.1f} MB (budget 25 MB)"
