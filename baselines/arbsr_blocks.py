"""ArbSR's plug-in modules (Wang et al., ICCV 2021; LongguangWang/ArbSR@e4f3000 `model/arbrcan.py`).

  * `ScaleAwareAdapt`: F + conv_{p(r)}(F) * M(F). The conv kernel mixes 4 experts with softmax routing
    from (1/r_h, 1/r_w); M is an hourglass mask (conv-BN-ReLU, avg-pool /2, 2 x conv-BN-ReLU, bilinear x2,
    conv-BN, sigmoid). Widths 16 (mask) and 64 (routing MLP) are fixed in the official code.
  * `ScaleAwareUpsample`: per HR pixel an MLP on (1/r_w, 1/r_h, dh, dw) predicts an offset and sigmoid
    (not softmax) gates of 4 compress (C -> C/8) and 4 expand (C/8 -> C) 1x1 experts; LR features are
    sampled bilinearly at the pixel-centre position plus the offset, then out = E(p) C(p) f + f.
Module names follow the official code so its checkpoints load as they are.

Deliberate differences, none changing outputs beyond float round-off:
  * Odd feature sizes crash the official mask (pooling floors, upsampling doubles). Here the mask branch
    replicate-pads its input by one row/column at the bottom/right and crops the mask back, so even sizes
    are untouched and the pooling pairs stay aligned with the top-left corner.
  * The official code builds C/8 x C and C x C/8 matrices per HR pixel; here the gates mix the experts'
    outputs instead of their weights (the same sums, reassociated) and HR rows go in chunks, which keeps
    memory at a few C x H x W maps.
  * Sampling: the official grid is normalised by 2/(w-1) for `grid_sample` as it behaved in PyTorch 1.1
    (align_corners=True), so sample position x (LR pixels, centres at integers) reads pixel x. Here the same
    pixel position is normalised for align_corners=False ((2x+1)/w - 1), which reads the same place and is
    also defined for a one-pixel-wide input, where the official normalisation divides by zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqbench.fastconv import Conv3x3, conv3x3


class ScaleAwareConv(nn.Module):
    def __init__(self, channels: int, num_experts: int = 4, hidden: int = 64) -> None:
        super().__init__()
        self.routing = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(True), nn.Linear(hidden, num_experts),
                                     nn.Softmax(1))
        pool = torch.empty(num_experts, channels, channels, 3, 3)
        for e in range(num_experts):
            nn.init.kaiming_uniform_(pool[e], a=math.sqrt(5))
        self.weight_pool = nn.Parameter(pool)

    def forward(self, x: torch.Tensor, inv_scale: torch.Tensor) -> torch.Tensor:
        p = self.routing(inv_scale).view(-1, 1, 1, 1, 1)  # one routing vector for the whole batch
        return conv3x3(x, (self.weight_pool * p).sum(0))


class ScaleAwareAdapt(nn.Module):
    def __init__(self, channels: int, mask_width: int = 16) -> None:
        super().__init__()
        m = mask_width
        self.mask = nn.Sequential(
            Conv3x3(channels, m), nn.BatchNorm2d(m), nn.ReLU(True), nn.AvgPool2d(2),
            Conv3x3(m, m), nn.BatchNorm2d(m), nn.ReLU(True),
            Conv3x3(m, m), nn.BatchNorm2d(m), nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(m, 1, 3, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.adapt = ScaleAwareConv(channels)

    def forward(self, x: torch.Tensor, inv_scale: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = h % 2, w % 2
        xm = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        mask = self.mask(xm)[..., :h, :w]
        return x + self.adapt(x, inv_scale) * mask


class ScaleAwareUpsample(nn.Module):
    def __init__(self, channels: int, num_experts: int = 4, hidden: int = 64,
                 chunk_pixels: int = 16384) -> None:
        super().__init__()
        self.num_experts, self.channels, self.chunk_pixels = num_experts, channels, chunk_pixels
        comp = torch.empty(num_experts, channels // 8, channels, 1, 1)
        expd = torch.empty(num_experts, channels, channels // 8, 1, 1)
        for e in range(num_experts):
            nn.init.kaiming_uniform_(comp[e], a=math.sqrt(5))
        for e in range(num_experts):
            nn.init.kaiming_uniform_(expd[e], a=math.sqrt(5))
        self.weight_compress = nn.Parameter(comp)
        self.weight_expand = nn.Parameter(expd)
        self.body = nn.Sequential(nn.Conv2d(4, hidden, 1), nn.ReLU(True),
                                  nn.Conv2d(hidden, hidden, 1), nn.ReLU(True))
        self.routing = nn.Sequential(nn.Conv2d(hidden, num_experts, 1), nn.Sigmoid())
        self.offset = nn.Conv2d(hidden, 2, 1)

    @staticmethod
    def _lr_position(n_out: int, r: float, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(position of each HR pixel centre in LR pixels, centres at integers; the MLP's offset input)."""
        t = (torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) / r
        # the official MLP input floors with +1e-3, its sampling grid uses no floor: both kept
        return t - 0.5, t - torch.floor(t + 1e-3) - 0.5

    def forward(self, x: torch.Tensor, out_size: tuple[int, int], r_h: float, r_w: float) -> torch.Tensor:
        n, c, h, w = x.shape
        H, W = out_size
        pos_h, d_h = self._lr_position(H, r_h, x.device)
        pos_w, d_w = self._lr_position(W, r_w, x.device)
        one = torch.ones((), device=x.device, dtype=torch.float32)
        inv_w, inv_h = (one / r_w).to(x.dtype), (one / r_h).to(x.dtype)
        ne, c8 = self.num_experts, self.channels // 8
        w_comp = self.weight_compress.reshape(ne * c8, c, 1, 1)
        w_expd = self.weight_expand.reshape(ne, c, c8, 1, 1)
        out = x.new_empty(n, c, H, W)
        step = max(1, self.chunk_pixels // W)
        for i0 in range(0, H, step):
            rows = slice(i0, min(H, i0 + step))
            R = rows.stop - rows.start
            dh, dw = d_h[rows, None].to(x.dtype), d_w[None, :].to(x.dtype)
            grid_in = torch.stack([v.expand(R, W) for v in (inv_w, inv_h, dh, dw)])  # official channel order
            emb = self.body(grid_in.unsqueeze(0))
            off = self.offset(emb)[0]  # channel 0: along x (width), 1: along y, in LR pixels
            gate = self.routing(emb)  # (1, ne, R, W)
            px = pos_w[None, :].to(x.dtype) + off[0]
            py = pos_h[rows, None].to(x.dtype) + off[1]
            grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), -1).expand(n, -1, -1, -1)
            f0 = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            z = (F.conv2d(f0, w_comp).view(n, ne, c8, R, W) * gate.unsqueeze(2)).sum(1)
            y = f0.clone()
            for e in range(ne):
                y += F.conv2d(z, w_expd[e]) * gate[:, e:e + 1]
            out[:, :, rows] = y
        return out
