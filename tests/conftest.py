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


@pytest.fixture
def tiny_root(tmp_path):
    """A data root with a 3-image Set5 made of random images (no shared data needed)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    d = tmp_path / "data" / "Set5"
    d.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)).save(d / f"im{i}.png")
    return tmp_path / "data"


@pytest.fixture(scope="session", autouse=True)
def _decoded_image_cache(tmp_path_factory):
    """Training streams images through a decoded-image cache; keep the tests' copies out of ~/.cache."""
    old = os.environ.get("EQBENCH_DECODED_CACHE")
    os.environ["EQBENCH_DECODED_CACHE"] = str(tmp_path_factory.mktemp("decoded"))
    yield
    if old is None:
        os.environ.pop("EQBENCH_DECODED_CACHE", None)
    else:
        os.environ["EQBENCH_DECODED_CACHE"] = old
