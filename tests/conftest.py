"""Shared fixtures: the benchmark images (skipped with a reason when absent) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def shared_data_root() -> Path | None:
    for cand in (os.environ.get("EQBENCH_DATA"), REPO.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "Set5").is_dir():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("benchmark images not found: set EQBENCH_DATA or place ../shared/datasets beside the repo")
    return root


@pytest.fixture(scope="session")
def load_set(data_root):
    from eqbench.data.io import load_image

    cache: dict[str, list] = {}

    def load(name: str):
        if name not in cache:
            files = sorted((data_root / name).glob("*.png"))
            cache[name] = [(p.stem, load_image(p)) for p in files]
        return cache[name]

    return load


@pytest.fixture
def rng():
    return np.random.default_rng(0)
