"""Training data: the images of the named sets, streamed from disk, and batches keyed by (seed, iteration, slot).

Images are not held in memory. `ImageStore[i]` decodes image i on its first use into an uncompressed
cache file (`.npy`, in $EQBENCH_DECODED_CACHE or ~/.cache/eqbench/decoded) and afterwards memory-maps
that file: a sample reads only the rows of its crop, and nothing stays resident between samples, so
the memory of `eqbench train` does not grow with the number of training images. The pixels are the
ones `load_image` decodes, so batches are bit-identical to holding every image in memory. A set whose
decoded size exceeds the cache budget ($EQBENCH_DECODED_CACHE_GB, default 64) is decoded afresh for
every sample instead (use DataLoader --workers); EQBENCH_DECODED_CACHE=off does that for every set.

Every random choice of a sample (image, scale, crop, flips, query pixels) comes from a numpy Generator
seeded by (seed, iteration, slot in the global batch), never from a shared stream. So a batch is a
function of its iteration alone: a resumed run rebuilds exactly the batches it would have seen, any
number of DataLoader workers produce the same batches, and the ranks of a distributed run split
the very batch a single process would have drawn.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data import batches
from ..data.datasets import default_cache_root, digest, locate
from ..data.io import image_size, load_image
from ..errors import EqbenchError, EqbenchWarning
from .batch_kinds import batch_kind
from .recipes import Phase, SamplerSpec

# Stream tags keep the three kinds of draws independent of each other.
_IMAGE, _SCALE, _SAMPLE = 101, 202, 303


def decoded_cache_dir() -> Path | None:
    env = os.environ.get("EQBENCH_DECODED_CACHE")
    if env and env.lower() == "off":
        return None
    return Path(env).expanduser() if env else default_cache_root().parent / "decoded"


def _decode(path: Path) -> np.ndarray:
    img = load_image(path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


class ImageStore(Sequence):
    """Training images (H, W, 3) uint8 by index, read from disk on demand (see the module docstring)."""

    def __init__(self, paths: list[Path], cache_dir: Path | None) -> None:
        self.paths = [Path(p) for p in paths]
        self.cache_dir = cache_dir
        self._keys: list[str | None] = [None] * len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def _raw(self, i: int) -> Path:
        if self._keys[i] is None:
            st = self.paths[i].stat()
            ident = f"{self.paths[i].resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()
            self._keys[i] = hashlib.sha256(ident).hexdigest()[:32]
        return self.cache_dir / f"{self._keys[i]}.npy"

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cache_dir is None:
            return _decode(self.paths[i])
        raw = self._raw(i)
        try:
            return np.load(raw, mmap_mode="r")
        except (FileNotFoundError, ValueError, OSError):
            pass  # not cached yet (or a broken cache file): decode and (re)write it
        img = _decode(self.paths[i])
        tmp = raw.with_name(f".{raw.stem}.{os.getpid()}.{id(img)}.tmp")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, img)
            os.replace(tmp, raw)
        except OSError as e:  # disk full / read-only: train on, decoding every time
            tmp.unlink(missing_ok=True)
            warnings.warn(f"cannot write the decoded-image cache {self.cache_dir} ({e}); decoding every sample",
                          EqbenchWarning, stacklevel=2)
            self.cache_dir = None
        return img


@dataclass
class TrainImages:
    names: tuple[str, ...]
    images: ImageStore
    files: list[str]
    skipped: list[str]
    digest: dict[str, str]

    def describe(self) -> dict:
        return {"datasets": list(self.names), "images": len(self.images),
                "skipped_too_small": len(self.skipped), "skipped": self.skipped, "digest": self.digest}


def load_train_images(names: tuple[str, ...], data_root, min_hw: tuple[int, int], batch: int) -> TrainImages:
    """The images of the named sets, streamed; skip (with a count) those smaller than the largest crop."""
    if not names:
        raise EqbenchError("no training data: pass --train-data NAME [NAME ...] (datasets.yaml names)")
    paths, files, skipped, digests, decoded = [], [], [], {}, 0
    for name in names:
        st = locate(name, data_root)
        digests[name] = digest(st.files)
        for path in st.files:
            h, w = image_size(path)
            rel = path.relative_to(st.folder).as_posix()
            if h < min_hw[0] or w < min_hw[1]:
                skipped.append(f"{name}/{rel}")
                continue
            paths.append(path)
            files.append(f"{name}/{rel}")
            decoded += h * w * 3
    cache = decoded_cache_dir()
    if cache is not None and decoded > float(os.environ.get("EQBENCH_DECODED_CACHE_GB", 64)) * 2**30:
        cache = None
    images = ImageStore(paths, cache)
    need = f"{min_hw[1]}x{min_hw[0]}"
    if skipped:
        warnings.warn(f"skipping {len(skipped)} training image(s) smaller than the largest crop {need} "
                      f"(e.g. {skipped[0]})", EqbenchWarning, stacklevel=2)
    if not images:
        raise EqbenchError(f"no usable training image in {', '.join(names)}: all {len(skipped)} are smaller "
                           f"than the largest crop {need}; use larger images or a smaller scale range")
    if len(images) < batch:
        raise EqbenchError(f"only {len(images)} usable training image(s) in {', '.join(names)} "
                           f"({len(skipped)} skipped as smaller than {need}) for a batch of {batch}: "
                           "add images or lower --batch-size")
    return TrainImages(tuple(names), images, files, skipped, digests)


def min_image_size(sampler: SamplerSpec, phase: Phase) -> tuple[int, int]:
    return batch_kind(sampler.kind).largest_crop(sampler, phase.scales or sampler.scales)


@lru_cache(maxsize=8)
def _permutation(seed: int, phase: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, _IMAGE, phase, epoch]).permutation(n)


def batch_scale(seed: int, step: int, scales: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """The one scale a `pairs` batch uses, drawn per iteration (the same on every rank)."""
    rng = np.random.default_rng([seed, _SCALE, step])
    return scales[int(rng.integers(len(scales)))]


class BatchPlan:
    """Yields, per iteration in [start, stop), this rank's keys (step, slot, image, scale_h, scale_w)."""

    def __init__(self, *, seed: int, phase_index: int, phase_start: int, start: int, stop: int,
                 global_batch: int, rank: int, world: int, n_images: int,
                 scales: tuple[tuple[float, float], ...]) -> None:
        if global_batch % world:
            raise EqbenchError(f"the batch size {global_batch} must be divisible by the number of processes "
                               f"{world}")
        self.__dict__.update(seed=seed, phase_index=phase_index, phase_start=phase_start, start=start,
                             stop=stop, B=global_batch, n=n_images, scales=scales)
        local = global_batch // world
        self.slots = range(rank * local, (rank + 1) * local)

    def __len__(self) -> int:
        return self.stop - self.start

    def keys(self, step: int) -> list[tuple]:
        sh, sw = batch_scale(self.seed, step, self.scales) if self.scales else (0.0, 0.0)
        out = []
        for k in self.slots:
            # Images: a fresh permutation per pass over the data (an "epoch"), as a shuffled loader.
            g = (step - self.phase_start) * self.B + k
            img = int(_permutation(self.seed, self.phase_index, g // self.n, self.n)[g % self.n])
            out.append((step, k, img, sh, sw))
        return out

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.keys(step)


class KeyedSamples(Dataset):
    """dataset[(step, slot, image, sh, sw)] -> one sample of the sampler's kind."""

    def __init__(self, images: Sequence[np.ndarray], sampler: SamplerSpec, seed: int) -> None:
        self.images, self.s, self.seed = images, sampler, seed
        self.kind = batch_kind(sampler.kind)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple) -> dict[str, torch.Tensor]:
        step, slot, img, sh, sw = key
        rng = np.random.default_rng([self.seed, _SAMPLE, step, slot])
        return self.kind.sample(self.images[img], rng, self.s, (sh, sw))


def _worker_init(worker_id: int) -> None:
    # Samples do not use global RNGs; seeding them anyway keeps any library-internal draw reproducible.
    info = torch.utils.data.get_worker_info()
    np.random.seed(info.seed % 2**32)


def make_loader(images: Sequence[np.ndarray], sampler: SamplerSpec, plan: BatchPlan, workers: int) -> DataLoader:
    # Its own generator: creating a loader iterator draws a base seed, which must not advance the
    # global torch RNG (a resumed run creates its iterator at another step than the original run).
    gen = torch.Generator().manual_seed(plan.seed * 100_003 + plan.start)
    return DataLoader(KeyedSamples(images, sampler, plan.seed), batch_sampler=plan, num_workers=workers,
                      collate_fn=batches.collate, worker_init_fn=_worker_init if workers else None,
                      persistent_workers=False, generator=gen)


def single_threaded(loader: DataLoader):
    """Iterate a worker-less loader with one intra-op thread while it builds each batch.

    Building a sample is many small tensor ops (MATLAB resize matmuls, flips); with the trainer's
    intra-op threads on a busy machine each one waits for a thread hand-off (measured 47 ms vs 0.7 ms
    per `pairs` sample on 2 loaded cores). DataLoader workers already run single-threaded, so batches
    are also bit-identical with and without workers.
    """
    it = iter(loader)
    threads = torch.get_num_threads()
    while True:
        torch.set_num_threads(1)
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch
