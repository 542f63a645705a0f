"""Multi-process data-parallel training under `torchrun` (DDP: nccl on GPUs, gloo on CPU).

`torchrun --nproc_per_node N -m eqbench train ...` sets WORLD_SIZE/RANK/LOCAL_RANK; each process then
trains on its 1/N slice of every global batch (see data.BatchPlan), DDP averages the gradients, and
rank 0 alone writes checkpoints, logs and validation. A single process is the world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _device(name: str, local_rank: int, distributed: bool) -> torch.device:
    from ..devices import check_device

    dev = torch.device(check_device(name))
    if dev.type == "cuda":
        if distributed and dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


def setup(device: str = "cpu") -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=_device(device, 0, False))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local, True)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank=rank, size=size, local_rank=local, device=dev)


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def mean(world: World, value: float) -> float:
    """The mean of a scalar over the ranks (for logging the global loss)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def gather(world: World, obj):
    """Every rank's object, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast(world: World, obj):
    """Rank 0's object on every rank (e.g. an error raised while preparing the output folder)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(module: torch.nn.Module, world: World) -> torch.nn.Module:
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)
