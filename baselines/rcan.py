"""RCAN building blocks (Zhang et al., ECCV 2018): residual groups of residual channel-attention blocks.

Module names follow the official RCAN / ArbSR code (`body.{b}.body.{0,2}` convs, `body.{b}.body.3.conv_du`
channel attention, group tail conv at index n_blocks), so their checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqbench import fastconv

from .encoders import conv3, fuse_conv_relu, has_hooks


class ChannelAttention(nn.Module):
    def __init__(self, n_feats: int, reduction: int) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(n_feats, n_feats // reduction, 1), nn.ReLU(True),
                                     nn.Conv2d(n_feats // reduction, n_feats, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean((2, 3), keepdim=True))

    def attention_of_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """conv_du(mean) for mean (N, C, 1, 1), the two 1x1 convolutions as linears (torch's conv path
        costs ~0.1 ms per call on a 1x1 map, 40 ms over ArbRCAN's 200 blocks)."""
        if has_hooks(self.conv_du):
            return self.conv_du(mean)
        c1, relu, c2, gate = self.conv_du
        v = F.linear(mean.flatten(1), c1.weight.flatten(1), c1.bias)
        v = gate(F.linear(relu(v), c2.weight.flatten(1), c2.bias))
        return v.view(mean.shape)


class RCAB(nn.Module):
    def __init__(self, n_feats: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(n_feats, n_feats), nn.ReLU(True), conv3(n_feats, n_feats),
                                  ChannelAttention(n_feats, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.body
        if fuse_conv_relu(body, x, scope=self):
            # the attention's average pool comes out of the second convolution's output transform, and
            # x + y * a is one pass (torch.addcmul): two passes over the map fewer per block
            y, mean = fastconv.conv3x3_mean(body[0](x, relu=True), body[2].weight, body[2].bias)
            return torch.addcmul(x, y, body[3].attention_of_mean(mean))
        return x + body(x)


class ResidualGroup(nn.Module):
    """n_blocks RCABs and a conv, with a skip over the whole group."""

    def __init__(self, n_feats: int, reduction: int, n_blocks: int) -> None:
        super().__init__()
        blocks = [RCAB(n_feats, reduction) for _ in range(n_blocks)]
        self.body = nn.Sequential(*blocks, conv3(n_feats, n_feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


RCAN_PRESETS = {
    "rcan": dict(n_resgroups=10, n_resblocks=20, n_feats=64, reduction=16),
    "rcan-tiny": dict(n_resgroups=2, n_resblocks=3, n_feats=32, reduction=8),
}
