"""Training images streamed from disk: the same samples as images held in memory, nothing held between samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from eqbench.train.data import ImageStore, KeyedSamples, load_train_images
from eqbench.train.recipes import SamplerSpec


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(7)
    d = tmp_path / "imgs"
    d.mkdir()
    arrays = []
    for i in range(5):
        a = rng.integers(0, 256, (200 + 3 * i, 210, 3), dtype=np.uint8)
        if i == 2:
            a = a[:, :, 0].copy()  # a greyscale file: replicated to 3 channels, as in memory
        Image.fromarray(a).save(d / f"{i}.png")
        arrays.append(np.repeat(a[:, :, None], 3, 2) if a.ndim == 2 else a)
    return d, arrays


@pytest.mark.parametrize("kind", ["liif", "eqsr", "pairs"])
@pytest.mark.parametrize("cached", [True, False])
def test_streamed_samples_equal_in_memory_samples(folder, tmp_path, kind, cached):
    d, arrays = folder
    store = ImageStore(sorted(d.glob("*.png")), tmp_path / "cache" if cached else None)
    sampler = SamplerSpec(kind=kind, scales=((2.0, 2.0), (3.0, 3.0)))
    mem, disk = KeyedSamples(arrays, sampler, 5), KeyedSamples(store, sampler, 5)
    for _ in range(2):  # the first pass decodes (and writes the cache), the second maps the cache files
        for key in [(s, k, s % 5, 2.0, 2.0) for s in range(6) for k in range(2)]:
            a, b = mem[key], disk[key]
            assert a.keys() == b.keys() and all(torch.equal(a[x], b[x]) for x in a)
    if cached:
        assert len(list((tmp_path / "cache").glob("*.npy"))) == 5
        assert isinstance(store[0], np.memmap)  # served from the cache file, not held in memory


@pytest.mark.filterwarnings("ignore:skipping 1 training image")
def test_load_train_images_keeps_no_pixels(folder, tmp_path, monkeypatch):
    d, arrays = folder
    (tmp_path / "cat.yaml").write_text("version: 1\ndatasets:\n  F: {role: train, path: imgs, images: 5}\n")
    monkeypatch.setenv("EQBENCH_DATASETS_YAML", str(tmp_path / "cat.yaml"))
    monkeypatch.setenv("EQBENCH_DECODED_CACHE", str(tmp_path / "dec"))
    ti = load_train_images(("F",), tmp_path, (201, 100), batch=2)
    assert ti.describe()["images"] == 4 and ti.skipped == ["F/0.png"]  # 200 rows < 201: skipped, from the header
    assert not (tmp_path / "dec").exists()  # nothing decoded yet
    assert np.array_equal(ti.images[1], arrays[2])
    monkeypatch.setenv("EQBENCH_DECODED_CACHE", "off")
    off = load_train_images(("F",), tmp_path, (201, 100), batch=2)
    assert off.images.cache_dir is None and np.array_equal(off.images[3], arrays[4])
    monkeypatch.setenv("EQBENCH_DECODED_CACHE", str(tmp_path / "dec"))
    monkeypatch.setenv("EQBENCH_DECODED_CACHE_GB", "0.0001")  # a set above the budget is decoded per sample
    assert load_train_images(("F",), tmp_path, (201, 100), batch=2).images.cache_dir is None
