"""Scale-aware knowledge transfer (ArbSR paper, Sec. 3.3) as a trainer option.

For a batch at an integer scale s (symmetric, s with a teacher), the student's adapted features after
every K blocks are pulled towards those of a frozen fixed-scale network at s:
    L = L_SR + lambda * mean over taps of mean |F_student - F_teacher|      (recipe `knowledge_transfer`)
Other scales add nothing. The method provides the features as a `TransferStudent` (eqbench/method.py;
ArbSR is one):
    method.forward_with_features(lr, out_size) -> (SR in [0, 1] units, unclamped; [feature maps])
    method.make_teacher() -> a module with .features(lr) -> [feature maps] (same taps, frozen) and
                             .load_official_backbone(path) (an official fixed-scale checkpoint)
The teachers' checkpoints are given per scale: --teacher 2=RCAN_BIX2.pt 3=RCAN_BIX3.pt 4=RCAN_BIX4.pt.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import EqbenchError
from ..method import TransferStudent


def make_teachers(method: nn.Module, paths: dict[int, str], device) -> dict[int, nn.Module]:
    name = getattr(method, "method_name", type(method).__name__)
    if not isinstance(method, TransferStudent):
        raise EqbenchError(f"the recipe asks for knowledge transfer, but method {name!r} has no "
                           "forward_with_features / make_teacher; use a recipe without knowledge_transfer")
    if not paths:
        raise EqbenchError("knowledge transfer needs the fixed-scale teachers: --teacher 2=PATH 3=PATH 4=PATH "
                           "(official fixed-scale checkpoints of the same backbone)")
    teachers = {}
    for s, path in sorted(paths.items()):
        t = method.make_teacher().load_official_backbone(path)
        teachers[int(s)] = t.to(device).eval().requires_grad_(False)
    return teachers


def batch_scale(lr: torch.Tensor, out_size: tuple[int, int]) -> int | None:
    """The integer scale of a symmetric batch (HR exactly s times the LR), else None."""
    (h, w), (H, W) = lr.shape[-2:], out_size
    return H // h if H % h == 0 and W % w == 0 and H // h == W // w else None


def transfer_l1(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    if len(student) != len(teacher):
        raise EqbenchError(f"knowledge transfer: {len(student)} student vs {len(teacher)} teacher feature maps")
    return torch.stack([(s - t.detach()).abs().mean() for s, t in zip(student, teacher)]).mean()
