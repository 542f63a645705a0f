"""One training forward through the method contract, and the EMA of the weights.

How a method is supervised on each kind of batch is the batch kind's `predict` (batch_kinds.py).
Scale-aware knowledge transfer (ArbSR, recipe field `knowledge_transfer`, transfer.py) runs inside
the same forward on `pairs` batches, so DDP synchronises its gradients too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import EqbenchError
from ..method import check_input
from .batch_kinds import batch_kind
from .transfer import batch_scale, transfer_l1


def predict(method, batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """The prediction matching batch['gt'] (same shape), in [0, 1] units, unclamped."""
    return batch_kind(kind).predict(method, batch)


class TrainForward(nn.Module):
    """What DDP wraps: batch -> (prediction, extra loss). Holds the method as `method`."""

    def __init__(self, method: nn.Module, kind: str, teachers: dict[int, nn.Module] | None = None) -> None:
        super().__init__()
        self.method, self.kind = method, batch_kind(kind)
        if teachers and not self.kind.per_batch_scale:
            raise EqbenchError(f"knowledge transfer needs the pairs sampler (one scale per batch), not {kind!r}")
        # A plain dict, not submodules: frozen teachers are neither trained, synchronised nor checkpointed.
        self.teachers = dict(teachers or {})

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.teachers:
            return self.kind.predict(self.method, batch), None
        lr = batch["lr"]
        out_size = tuple(int(v) for v in batch["hr_size"][0].tolist())
        check_input(lr, out_size)
        pred, feats = self.method.forward_with_features(lr, out_size)
        s = batch_scale(lr, out_size)
        if s not in self.teachers:
            return pred, None  # the scale is the batch's, so every rank takes the same branch
        return pred, transfer_l1(feats, self.teachers[s].features(lr))


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], recipe,
               lr: float) -> float:
    """One optimisation step of `model` (a TrainForward, maybe DDP-wrapped); returns the loss."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    pred, extra = model(batch)
    loss = (pred - batch["gt"]).abs().mean() * recipe.loss_weight
    if extra is not None:
        loss = loss + recipe.knowledge_transfer * extra
    # Always step, even on a non-finite loss: under DDP every rank must join the gradient all-reduce;
    # the trainer stops all ranks together when the (all-reduced) loss is not finite.
    loss.backward()
    optimizer.step()
    return loss.item()


class EMA:
    """Exponential moving average of the parameters, updated after every step as BasicSR's model_ema.

    Buffers (BatchNorm statistics) are copied from the model; BasicSR leaves the EMA copy's initial ones
    (no EQSR module has such buffers that change)."""

    def __init__(self, method: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.model = copy.deepcopy(method).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, method: nn.Module) -> None:
        ema = dict(self.model.named_parameters())
        for name, p in method.named_parameters():
            ema[name].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)
        ema_b = dict(self.model.named_buffers())
        for name, b in method.named_buffers():
            ema_b[name].copy_(b)

    @torch.no_grad()
    def reset(self, method: nn.Module) -> None:
        self.model.load_state_dict(method.state_dict())
