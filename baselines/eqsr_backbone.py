"""EQSR's feature extractor: a HAT-style transformer with one AFE block per group
(neuralchen/EQSR@e10a258, class `EQSR` up to `conv_after_body`); own implementation.

  x -> conv_first (3 -> C) -> LN -> n_groups x Group -> LN -> conv_after_body -> + conv_first output
  Group: AFE block, (depth - 1) window blocks (shift ws/2 on odd ones), overlapping cross-attention
         block, 3x3 conv, + group input.     (official `depths=[5]*6` = AFE + 4 window blocks + OCAB)
Quirk kept: the input is reflect-padded right/bottom to a multiple of the window size (the official
test path, `HATModel.pre_process`) and the features are cropped back before upsampling. Where the
official padding fails (a side shorter than the pad + 1), reflection is repeated, then replicated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import channels_last
from .eqsr_afe import AFEBlock, ScaleCond, make_afe_conv
from .eqsr_attention import OverlapCrossBlock, WindowBlock, rel_index_overlap, rel_index_self, shift_mask
from .swinir import transformer_init


def reflect_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Right/bottom reflect padding; repeated when the pad exceeds the side (official would raise)."""
    while pad_h > 0 or pad_w > 0:
        step_h, step_w = min(pad_h, x.shape[2] - 1), min(pad_w, x.shape[3] - 1)
        if step_h == 0 and step_w == 0:  # a side of 1 pixel cannot be reflected
            return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = F.pad(x, (0, step_w, 0, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


class Group(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, ws: int, mlp_ratio: float, overlap_ratio: float,
                 afe: str) -> None:
        super().__init__()
        self.afe = AFEBlock(dim, make_afe_conv(afe, dim))
        self.wsa = nn.ModuleList(
            [WindowBlock(dim, ws, heads, 0 if i % 2 == 0 else ws // 2, mlp_ratio) for i in range(depth - 1)])
        self.oca = OverlapCrossBlock(dim, ws, heads, overlap_ratio, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: ScaleCond, ctx: dict) -> torch.Tensor:
        t = self.afe(x, cond).permute(0, 2, 3, 1)
        for blk in self.wsa:
            t = blk(t, ctx["rel_self"], ctx["mask"])
        t = self.oca(t, ctx["rel_overlap"])
        return x + self.conv(t.permute(0, 3, 1, 2))  # tokens (B, H, W, C) are an NCHW channels-last view


class EQSRBackbone(nn.Module):
    """(B, 3, h, w) normalised image + scale condition -> (B, C, h, w) features (pad, run, crop)."""

    def __init__(self, dim: int = 180, n_groups: int = 6, depth: int = 5, heads: int = 6, window: int = 16,
                 mlp_ratio: float = 2.0, overlap_ratio: float = 0.5, afe: str = "mod") -> None:
        super().__init__()
        self.out_dim, self.window = dim, window
        self.conv_first = nn.Conv2d(3, dim, 3, padding=1)
        self.embed_norm = nn.LayerNorm(dim)
        self.groups = nn.ModuleList(
            [Group(dim, depth, heads, window, mlp_ratio, overlap_ratio, afe) for _ in range(n_groups)])
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        wse = window + int(window * overlap_ratio)
        self.register_buffer("rel_self", rel_index_self(window), persistent=False)
        self.register_buffer("rel_overlap", rel_index_overlap(window, wse), persistent=False)
        self.apply(transformer_init)  # as the official (HAT/Swin) code

    @property
    def taps(self) -> tuple[str, ...]:
        return ("conv_first",) + tuple(f"groups.{i}" for i in range(len(self.groups))) + ("conv_after_body",)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        h, w = x.shape[-2:]
        ws = self.window
        x = reflect_pad(x, -h % ws, -w % ws)
        hp, wp = x.shape[-2:]
        ctx = {"rel_self": self.rel_self, "rel_overlap": self.rel_overlap,
               "mask": shift_mask(hp, wp, ws, ws // 2, device=x.device).to(x.dtype)}
        # channels-last throughout: convolutions run without layout reorders, and the token view (B, H, W, C)
        # of a feature map is a free permute (see encoders.channels_last)
        feat = self.conv_first(channels_last(x))
        t = self.embed_norm(feat.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        for g in self.groups:
            t = g(t, cond, ctx)
        t = self.norm(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return (self.conv_after_body(t) + feat)[:, :, :h, :w].contiguous()
