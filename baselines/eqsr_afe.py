"""EQSR's scale encoding and Adaptive Feature Extractor (AFE) block.

Follows neuralchen/EQSR@e10a258 (`ModMBConv`, `Conv2DMod`, `pos_enc` in
EQSR/archs/hat_ModMBFormer_Sim_arch.py); own implementation, parity shown by tests/reference/test_eqsr.py.

  * `sincos_encoding`: [v, sin(2^0 pi v/10), cos(2^0 pi v/10), ..., sin(2^39 pi v/10), cos(...)].
    Quirk kept for parity: the argument is evaluated exactly as `(2**i) * pi * v / 10`, in the input
    dtype, in that order. Frequencies up to 2^39 pi/10 are far beyond float32 resolution, so any other
    order (or float64) changes the official outputs by up to ~1.5 with the same weights.
  * `ModulatedConv2d`: StyleGAN2-style 3x3 conv; the scale code scales each input-channel slice of the
    kernel by (1 + style), then every output filter is renormalised (demodulation, eps 1e-8).
  * `AFEBlock`: 1x1 conv, then + modulated conv of GELU(LN(.)), then + 1x1 conv of SE(GELU(LN(.))).
    Quirk kept: no skip from the block input (the 1x1 conv output is the residual base).
The 3x3 conv of the block is pluggable for the ablations (EQSR paper Table 2): "mod" (AFE, the official
block), "plain" (a scale-blind conv, ablation baseline/A/B/C) or a scale-aware conv from ArbSR (D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_FREQ = 40  # official: 40 frequencies, divisor 10, for both the scale code and the relative coordinates
CODE_DIM = 1 + 2 * N_FREQ


SINCOS_ARITH = ("native", "cuda")


def sincos_encoding(v: torch.Tensor, n_freq: int = N_FREQ, arith: str = "native") -> torch.Tensor:
    """Concatenate along dim 1: v, then sin and cos of each frequency (all channels of v per term).

    arith "native": the official expression as the running device evaluates it (on CPU, `/ 10` is a
    division; PyTorch's CUDA kernel turns division by a scalar into multiplication by its float32
    reciprocal). "cuda": that CUDA arithmetic on any device, i.e. what the official code computes on
    the GPUs it was trained and tested on."""
    parts = [v]
    for i in range(n_freq):
        # keep `(2 ** i) * math.pi * v / 10` verbatim: see the module docstring (fp32 parity)
        if arith == "cuda":
            a = (2 ** i) * math.pi * v * 0.1
            parts += [torch.sin(a), torch.cos(a)]
        else:
            parts.append(torch.sin((2 ** i) * math.pi * v / 10))
            parts.append(torch.cos((2 ** i) * math.pi * v / 10))
    return torch.cat(parts, 1)


@dataclass(frozen=True)
class ScaleCond:
    """What the scale-aware parts of a backbone see: the encoded scale input (B, 81) and (r_h, r_w)."""

    code: torch.Tensor
    scale: tuple[float, float]


def channel_layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """nn.LayerNorm over the channels of an NCHW tensor (returned channels-last in memory)."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ModulatedConv2d(nn.Module):
    def __init__(self, dim: int, code_dim: int = CODE_DIM, k: int = 3, eps: float = 1e-8) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim, k, k))
        nn.init.kaiming_normal_(self.weight, a=0, mode="fan_in", nonlinearity="leaky_relu")
        self.style = nn.Linear(code_dim, dim)
        self.eps = eps

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.style(cond.code)  # (B, C_in)
        wt = self.weight[None] * (s[:, None, :, None, None] + 1)
        wt = wt * torch.rsqrt((wt ** 2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        k = self.weight.shape[-1]
        out = F.conv2d(x.reshape(1, b * c, h, w), wt.reshape(b * c, c, k, k), padding=k // 2, groups=b)
        return out.reshape(b, c, h, w)


class PlainConv2d(nn.Conv2d):
    """Scale-blind 3x3 conv in place of the modulated one (ablations without AFE)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)


class SqueezeExcite(nn.Module):
    def __init__(self, dim: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean(dim=(2, 3))))))
        return x * g[:, :, None, None]


class AFEBlock(nn.Module):
    """NCHW -> NCHW. `conv` is one of ModulatedConv2d / PlainConv2d / ArbSR's scale-aware conv."""

    def __init__(self, dim: int, conv: nn.Module) -> None:
        super().__init__()
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.norm1 = nn.LayerNorm(dim)
        self.conv = conv
        self.norm2 = nn.LayerNorm(dim)
        self.se = SqueezeExcite(dim)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        t = self.proj_in(x)
        t = t + self.conv(F.gelu(channel_layer_norm(t, self.norm1)), cond)
        return t + self.proj_out(self.se(F.gelu(channel_layer_norm(t, self.norm2))))


def make_afe_conv(kind: str, dim: int) -> nn.Module:
    """The 3x3 conv inside the AFE block: "mod" (EQSR), "plain" (no scale input) or "arbsr"."""
    if kind == "mod":
        return ModulatedConv2d(dim)
    if kind == "plain":
        return PlainConv2d(dim)
    if kind == "arbsr":
        return ArbSRConv(dim)
    raise ValueError(f"unknown AFE conv kind {kind!r}")


class ArbSRConv(nn.Module):
    """ArbSR's scale-aware conv (4 expert kernels mixed by a routing MLP of (1/r_h, 1/r_w); shared with
    baselines/arbsr.py) in place of the modulated conv: ablation D."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        from .arbsr_blocks import ScaleAwareConv

        self.sa_conv = ScaleAwareConv(dim)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        r_h, r_w = cond.scale
        return self.sa_conv(x, torch.tensor([[1 / r_h, 1 / r_w]], dtype=x.dtype, device=x.device))
