"""Training data: the images of the named sets in memory, and batches keyed by (seed, iteration, slot).

Every random choice of a sample (image, scale, crop, flips, query pixels) comes from a numpy Generator
seeded by (seed, iteration, slot in the global batch), never from a shared stream. So a batch is a
function of its iteration alone: a resumed run rebuilds exactly the batches it would have seen, any
number of DataLoader workers produce the same batches, and the ranks of a distributed run split
the very batch a single process would have drawn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data import batches
from ..data.datasets import digest, locate
from ..data.io import load_image
from ..errors import EqbenchError, EqbenchWarning
from .batch_kinds import batch_kind
from .recipes import Phase, SamplerSpec

# Stream tags keep the three kinds of draws independent of each other.
_IMAGE, _SCALE, _SAMPLE = 101, 202, 303


@dataclass
class TrainImages:
    names: tuple[str, ...]
    images: list[np.ndarray]
    files: list[str]
    skipped: list[str]
    digest: dict[str, str]

    def describe(self) -> dict:
        return {"datasets": list(self.names), "images": len(self.images),
                "skipped_too_small": len(self.skipped), "skipped": self.skipped, "digest": self.digest}


def load_train_images(names: tuple[str, ...], data_root, min_hw: tuple[int, int], batch: int) -> TrainImages:
    """Load every image of the named sets; skip (with a count) those smaller than the largest crop."""
    if not names:
        raise EqbenchError("no training data: pass --train-data NAME [NAME ...] (datasets.yaml names)")
    images, files, skipped, digests = [], [], [], {}
    for name in names:
        st = locate(name, data_root)
        digests[name] = digest(st.files)
        for path in st.files:
            img = load_image(path)
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            if img.shape[0] < min_hw[0] or img.shape[1] < min_hw[1]:
                skipped.append(f"{name}/{path.name}")
                continue
            images.append(np.ascontiguousarray(img))
            files.append(f"{name}/{path.name}")
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

    def __init__(self, images: list[np.ndarray], sampler: SamplerSpec, seed: int) -> None:
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


def make_loader(images: list[np.ndarray], sampler: SamplerSpec, plan: BatchPlan, workers: int) -> DataLoader:
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
