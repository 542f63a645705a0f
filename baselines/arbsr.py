"""`arbsr`: ArbSR (Wang et al., "Learning A Single Network for Scale-Arbitrary Super-Resolution", ICCV 2021).

A fixed-scale backbone without its upsampler (RCAN 10 groups x 20 RCABs x 64, or EDSR 32 blocks x 256,
res_scale 0.1) with a scale-aware feature adaption block after every K backbone blocks (K=1 for RCAN, 2 for
EDSR) and a scale-aware upsampler (baselines/arbsr_blocks.py). Works in [0, 255] with the DIV2K mean shift
(frozen 1x1 convs, loaded from the checkpoint). Follows LongguangWang/ArbSR@e4f3000 `model/arbrcan.py`; only
ArbRCAN is released there, ArbEDSR is built the same way (the paper's Table 3 lists 41.9M parameters for it;
this one has 76,863,889 because every adapter holds 4 expert 3x3 kernels of 256 x 256: see the report).
Scales are per axis (r_h, r_w); see baselines/scale_arg.py for how they follow from out_size.

Scale-aware knowledge transfer (paper Sec. 3.3) is a training option: for integer scales 2, 3, 4, an L1 loss
ties the adapted features after every K blocks (`forward_with_features`) to those of a fixed-scale network of
the same backbone at that scale (`FixedScaleTeacher`, loaded from an official RCAN/EDSR checkpoint). The loss
itself is the trainer's (eqbench/train/transfer.py), the same for any method with these two hooks.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from eqbench.checkpoint import load_state_dict_strict, torch_load_safe
from eqbench.errors import EqbenchError, suggest
from eqbench.method import SRMethod, register_method

from . import recipes
from .arbsr_blocks import ScaleAwareAdapt, ScaleAwareUpsample
from .encoders import EDSR_PRESETS, MeanShift, ResBlock, channels_last, conv3
from .rcan import RCAN_PRESETS, ResidualGroup
from .scale_arg import resolve_scale

BACKBONES = ("rcan", "edsr")


def backbone_blocks(backbone: str, size: str) -> tuple[list[nn.Module], int, int]:
    """(blocks, n_feats, K) of a preset."""
    if backbone == "rcan":
        cfg = RCAN_PRESETS["rcan" if size == "paper" else "rcan-tiny"]
        blocks = [ResidualGroup(cfg["n_feats"], cfg["reduction"], cfg["n_resblocks"])
                  for _ in range(cfg["n_resgroups"])]
        return blocks, cfg["n_feats"], 1
    cfg = EDSR_PRESETS["edsr" if size == "paper" else "edsr-tiny"]
    return [ResBlock(cfg["n_feats"], cfg["res_scale"]) for _ in range(cfg["n_resblocks"])], cfg["n_feats"], 2


class ArbSR(SRMethod):
    def __init__(self, blocks: list[nn.Module], n_feats: int, K: int, backbone: str = "rcan") -> None:
        super().__init__()
        if len(blocks) % K:
            raise ValueError(f"{len(blocks)} backbone blocks are not a multiple of K={K}")
        self.backbone, self.K = backbone, K
        self.sub_mean = MeanShift(-1)
        self.add_mean = MeanShift(+1)
        self.head = nn.Sequential(conv3(3, n_feats))
        self.body = nn.Sequential(*blocks, conv3(n_feats, n_feats))
        # key `tail.1`: slot 0 held the fixed-scale upsampler in RCAN, whose final conv ArbRCAN reuses
        self.tail = nn.ModuleDict({"1": conv3(n_feats, 3)})
        self.sa_adapt = nn.Sequential(*[ScaleAwareAdapt(n_feats) for _ in range(len(blocks) // K)])
        self.sa_upsample = ScaleAwareUpsample(n_feats)
        n = len(blocks)
        self.feature_taps = ("head",) + tuple(f"sa_adapt.{i}" for i in range(n // K)) + (f"body.{n}",)

    def forward_with_features(self, lr: torch.Tensor, out_size: tuple[int, int], scale=None):
        """(SR in [0, 1] units, not clamped; adapted features after every K blocks)."""
        r_h, r_w = resolve_scale(lr.shape[-2:], out_size, scale)
        one = torch.ones(1, 1, device=lr.device, dtype=torch.float32)
        inv = torch.cat((one / r_h, one / r_w), 1).to(lr.dtype)  # adapter routing input (1/r_h, 1/r_w)
        x = self.head(channels_last(self.sub_mean(lr * 255.0)))
        res, feats = x, []
        for i, block in enumerate(self.body[:-1]):
            res = block(res)
            if (i + 1) % self.K == 0:
                res = self.sa_adapt[i // self.K](res, inv)
                feats.append(res)
        res = (self.body[-1](res) + x).contiguous()
        up = self.sa_upsample(res, out_size, r_h, r_w)
        return self.add_mean(self.tail["1"](up)) / 255.0, feats

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int], scale=None) -> torch.Tensor:
        return self.forward_with_features(lr, out_size, scale)[0]

    def make_teacher(self) -> FixedScaleTeacher:
        return FixedScaleTeacher(self)

    def load_official(self, path) -> ArbSR:
        """A plain state_dict as the official code saves it (`experiment/ArbRCAN/model/model_150.pt`)."""
        sd = torch_load_safe(path)
        if isinstance(sd, dict) and isinstance(sd.get("model"), dict):
            raise EqbenchError(f"{path} is a LIIF-style checkpoint ({{'model': ...}}), "
                               "not an ArbSR state_dict")
        load_state_dict_strict(self, sd, str(path))
        return self

    def load_fixed_scale_backbone(self, path) -> ArbSR:
        """Initialise the backbone from an official fixed-scale RCAN/EDSR checkpoint (ArbSR starts from
        RCAN_BIX4.pt); the adapters and the upsampler keep their values."""
        _load_backbone(self, path, exclude=("sa_adapt.", "sa_upsample."))
        return self


class FixedScaleTeacher(nn.Module):
    """The backbone of an ArbSR without adapters: the fixed-scale network whose features after every K
    blocks supervise the student's adapted features at its scale. Frozen; weights from an official
    fixed-scale checkpoint via `load_official_backbone`."""

    def __init__(self, student: ArbSR) -> None:
        super().__init__()
        self.K = student.K
        self.sub_mean = copy.deepcopy(student.sub_mean)
        self.head = copy.deepcopy(student.head)
        self.body = copy.deepcopy(student.body)
        self.requires_grad_(False)
        self.eval()

    @torch.no_grad()
    def features(self, lr: torch.Tensor) -> list[torch.Tensor]:
        res, feats = self.head(channels_last(self.sub_mean(lr * 255.0))), []  # the student's layout
        for i, block in enumerate(self.body[:-1]):
            res = block(res)
            if (i + 1) % self.K == 0:
                feats.append(res)
        return feats

    def load_official_backbone(self, path) -> FixedScaleTeacher:
        _load_backbone(self, path)
        return self


def _load_backbone(module: nn.Module, path, exclude: tuple[str, ...] = ()) -> None:
    """Every key of `module` outside `exclude` must be in the file; the file's other keys (its upsampler
    `tail.0.*`, `add_mean` for a teacher) are ignored."""
    sd = torch_load_safe(path)
    if not isinstance(sd, dict):
        raise EqbenchError(f"{path}: expected a state_dict of a fixed-scale RCAN/EDSR")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    own = {k: v for k, v in module.state_dict().items() if not k.startswith(exclude)}
    picked = {k: sd[k] for k in own if k in sd}
    missing = [k for k in own if k not in sd]
    if missing:
        raise EqbenchError(f"{path} lacks {len(missing)} backbone keys (e.g. {missing[0]}): "
                           "not a fixed-scale checkpoint of this backbone and size")
    full = dict(module.state_dict())
    full.update(picked)
    load_state_dict_strict(module, full, str(path))


@register_method("arbsr", recipes=recipes.ARBSR,
                 description="ArbSR (ICCV 2021): scale-aware adapters + upsampler on a fixed-scale "
                 "backbone; backbone rcan (ArbRCAN) | edsr (ArbEDSR)")
def make_arbsr(*, size: str = "paper", backbone: str = "rcan") -> ArbSR:
    if backbone not in BACKBONES:
        raise EqbenchError(f"unknown arbsr backbone {backbone!r}{suggest(backbone, BACKBONES)}; "
                           f"backbones: {', '.join(BACKBONES)}")
    blocks, n_feats, K = backbone_blocks(backbone, size)
    return ArbSR(blocks, n_feats, K, backbone)
