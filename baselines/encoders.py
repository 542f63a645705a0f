"""Shared convolutional encoders (feature extractors without an upsampler).

Module names follow the official code (EDSR/RDN as LIIF, LTE and MetaSR ship them), so official
checkpoints map onto these modules with a prefix change only.

  * EDSR (Lim et al. 2017): head conv, n_resblocks x (conv-ReLU-conv, x res_scale, +skip), body conv,
    global skip from the head. `edsr-baseline` = 16 blocks x 64 channels, res_scale 1.
  * RDN (Zhang et al. 2018), config B: 16 residual dense blocks x 8 dense layers, growth 64.
The MeanShift modules of the official EDSR are left out: LIIF/LTE never apply them in forward
(24 frozen parameters: 1,220,440 official vs 1,220,416 here for edsr-baseline).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqbench import fastconv
from eqbench.fastconv import Conv3x3


def conv3(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    """A k x k convolution with 'same' padding; 3x3 ones run by Winograd in CPU inference
    (eqbench/fastconv.py; EQBENCH_CONV=direct for oneDNN's direct convolution)."""
    return Conv3x3(cin, cout) if k == 3 else nn.Conv2d(cin, cout, k, padding=k // 2)


def fuse_conv_relu(seq: nn.Sequential, x: torch.Tensor, scope: nn.Module | None = None) -> bool:
    """Whether seq = (3x3 conv, ReLU, ...) may run as seq[0](x, relu=True): Winograd applies (the ReLU goes
    into its output transform) and no forward hook sits on `scope` (default seq; a caller fusing more passes
    its block) or below (else the modules run as they are, so every hook fires)."""
    conv = seq[0]
    return (isinstance(conv, Conv3x3) and fastconv.applies(x, conv.weight, conv.bias)
            and not has_hooks(seq if scope is None else scope))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) laid out channels-last in memory (same values and shape). oneDNN then runs 3x3
    convolutions without reordering to and from its blocked layout: 1.5x faster on CPU for a stack of
    64-channel convs at 128x128 (0.103 vs 0.155 s, 1 thread); results differ by float rounding only."""
    return x.contiguous(memory_format=torch.channels_last)


class ResBlock(nn.Module):
    def __init__(self, n_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3(n_feats, n_feats), nn.ReLU(True), conv3(n_feats, n_feats))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body[2](self.body[0](x, relu=True)) if fuse_conv_relu(self.body, x) else self.body(x)
        return x + y * self.res_scale if self.res_scale != 1 else x + y


class EDSREncoder(nn.Module):
    """EDSR without upsampler: (N, 3, h, w) -> (N, n_feats, h, w). Input normalisation is the caller's."""

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64, res_scale: float = 1.0, n_colors: int = 3) -> None:
        super().__init__()
        self.out_dim = n_feats
        self.head = nn.Sequential(conv3(n_colors, n_feats))
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  conv3(n_feats, n_feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(channels_last(x))
        return (self.body(x) + x).contiguous()

    @property
    def taps(self) -> tuple[str, ...]:
        n = len(self.body) - 1
        return ("head",) + tuple(f"body.{i}" for i in range(n)) + (f"body.{n}",)


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv3(cin, growth, k), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv[0](x, relu=True) if fuse_conv_relu(self.conv, x) else self.conv(x)), 1)


class RDB(nn.Module):
    def __init__(self, g0: int, growth: int, n_layers: int, k: int = 3) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[_DenseLayer(g0 + c * growth, growth, k) for c in range(n_layers)])
        self.LFF = nn.Conv2d(g0 + n_layers * growth, g0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fuse_conv_relu(self.convs[0].conv, x, scope=self):
            return pointwise_cl(self._dense_in_place(x), self.LFF) + x
        return self.LFF(self.convs(x)) + x

    def _dense_in_place(self, x: torch.Tensor) -> torch.Tensor:
        """What self.convs(x) returns, without its concatenations: every layer reads the channels so far of
        one channels-last buffer and writes its growth channels after them (the cats copied the growing
        map once per layer: 0.9 s of Meta-RDN's 4.2 s at 128x128 x2)."""
        n, c, h, w = x.shape
        total = c + sum(layer.conv[0].out_channels for layer in self.convs)
        buf = torch.empty((n, total, h, w), dtype=x.dtype, memory_format=torch.channels_last)
        buf[:, :c].copy_(x)
        for layer in self.convs:
            conv = layer.conv[0]
            conv(buf[:, :c], relu=True, out=buf[:, c:c + conv.out_channels])
            c += conv.out_channels
        return buf


def pointwise_cl(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution of a channels-last x as one matrix product over its pixel rows (channels-last
    result). torch sends a 1x1 convolution of a wide channels-last input to its slow path, which first
    copies the input to NCHW (Meta-RDN's 576 -> 64 fusions: 16 ms per call at 128x128, 1 thread)."""
    rows = F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)
    return rows.permute(0, 3, 1, 2)


def has_hooks(module: nn.Module) -> bool:
    """Whether a forward hook is registered on `module` or below it (a fused path would skip them)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


class RDNEncoder(nn.Module):
    """RDN without upsampler. Config B: D=16 blocks, C=8 layers, G=64 growth, G0=64."""

    def __init__(self, G0: int = 64, D: int = 16, C: int = 8, G: int = 64, k: int = 3, n_colors: int = 3) -> None:
        super().__init__()
        self.out_dim = G0
        self.SFENet1 = conv3(n_colors, G0, k)
        self.SFENet2 = conv3(G0, G0, k)
        self.RDBs = nn.ModuleList([RDB(G0, G, C, k) for _ in range(D)])
        self.GFF = nn.Sequential(nn.Conv2d(D * G0, G0, 1), conv3(G0, G0, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.SFENet1(channels_last(x))
        x = self.SFENet2(f1)
        outs = []
        for rdb in self.RDBs:
            x = rdb(x)
            outs.append(x)
        return (self.GFF(torch.cat(outs, 1)) + f1).contiguous()

    @property
    def taps(self) -> tuple[str, ...]:
        return ("SFENet2",) + tuple(f"RDBs.{i}" for i in range(len(self.RDBs))) + ("GFF",)


EDSR_PRESETS = {
    "edsr-baseline": dict(n_resblocks=16, n_feats=64, res_scale=1.0),
    "edsr": dict(n_resblocks=32, n_feats=256, res_scale=0.1),
    "edsr-tiny": dict(n_resblocks=4, n_feats=32, res_scale=1.0),
}
RDN_PRESETS = {
    "rdn": dict(G0=64, D=16, C=8, G=64),
    "rdn-tiny": dict(G0=32, D=3, C=3, G=16),
}


class MeanShift(nn.Conv2d):
    """1x1 conv adding sign * rgb_range * mean (EDSR-family codes shift [0, 255] inputs by the DIV2K mean).

    A conv rather than a constant because official checkpoints store it as one (and MetaSR's official
    code even trains it), so loaded values may differ from the nominal mean.
    """

    DIV2K_MEAN = (0.4488, 0.4371, 0.4040)

    def __init__(self, sign: int, rgb_range: float = 255.0, mean=DIV2K_MEAN, trainable: bool = False) -> None:
        super().__init__(3, 3, 1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean))
        self.weight.requires_grad_(trainable)
        self.bias.requires_grad_(trainable)
