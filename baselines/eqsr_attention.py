"""EQSR's window attention: (shifted) window self-attention blocks and the overlapping cross-attention
block, as the official HAT-derived code builds them (neuralchen/EQSR@e10a258, `HAB`, `OCAB`,
`calculate_rpi_sa/oca`, `calculate_mask`); own implementation.

Layout: tokens as (B, H, W, C), H and W multiples of the window size (the caller pads).
  * WindowBlock: LN -> window MSA (shift = window/2 on odd blocks, relative-position bias, -100 mask for
    tokens that come from different image regions after the cyclic shift) -> +; LN -> MLP -> +.
    HAT's convolution branch (CAB) is absent in EQSR, so it is absent here.
  * OverlapCrossBlock: queries from ws x ws windows, keys/values from (ws + ws/2)^2 windows around them
    (zero-padded unfold of the projected keys/values), own relative-position bias; proj + skip; LN-MLP-skip.
Relative-position indices and the shift mask depend only on sizes; the model computes them once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rel_index_self(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) index into a (2ws-1)^2 table: (dy + ws-1)*(2ws-1) + (dx + ws-1), d = pos_i - pos_j."""
    p = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    d = p[:, :, None] - p[:, None, :] + (ws - 1)
    return d[0] * (2 * ws - 1) + d[1]


def rel_index_overlap(ws: int, wse: int) -> torch.Tensor:
    """(ws*ws, wse*wse) index into a (ws+wse-1)^2 table for query window ws and key window wse."""
    po = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    pe = torch.stack(torch.meshgrid(torch.arange(wse), torch.arange(wse), indexing="ij")).flatten(1)
    d = pe[:, None, :] - po[:, :, None] + (ws - wse + 1)
    return d[0] * (ws + wse - 1) + d[1]


def to_windows(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, ws*ws, C), windows in row-major order per image."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def from_windows(win: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.view(b, h // ws, w // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, -1)


def shift_mask(h: int, w: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) additive mask: 0 within a region, -100 across the wrap-around of the shift."""
    region = torch.zeros(1, h, w, 1, device=device)
    bounds = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for rs in bounds:
        for cs in bounds:
            region[:, rs, cs, :] = label
            label += 1
    r = to_windows(region, ws).squeeze(-1)
    diff = r[:, None, :] - r[:, :, None]
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


# Attention scores of at most this many elements exist at once (64 MiB in float32): windows are independent,
# so computing them in chunks of windows gives the same result as all at once (an LR 256x256 paper-size
# overlapping cross-attention would otherwise hold 256 windows x 6 heads x 256 x 576 scores, 0.9 GB, x3).
ATTN_CHUNK_ELEMS = 2 ** 24


def _attend(q, k, v, bias, mask, heads: int, scale: float, fused: bool = False) -> torch.Tensor:
    """q (b_, nq, C), k/v (b_, nk, C) -> (b_, nq, C); bias (heads, nq, nk); mask (nW, nq, nk) or None
    (window i of the batch uses mask[i % nW]). Evaluated in chunks of windows (ATTN_CHUNK_ELEMS).
    fused: PyTorch's fused attention kernel (softmax(q k^T * scale + bias + mask) v without materialising
    the scores; the same function, rounded differently); else the official order of operations."""
    b_, nq, _ = q.shape
    attend = _attend_fused if fused else _attend_all
    step = max(1, ATTN_CHUNK_ELEMS // (heads * nq * k.shape[1]))
    if step >= b_:
        return attend(q, k, v, bias, mask, heads, scale)
    out = q.new_empty(q.shape)
    for s in range(0, b_, step):
        e = min(b_, s + step)
        m = None if mask is None else mask[torch.arange(s, e, device=mask.device) % mask.shape[0]]
        out[s:e] = attend(q[s:e], k[s:e], v[s:e], bias, m, heads, scale)
    return out


def _attend_fused(q, k, v, bias, mask, heads: int, scale: float) -> torch.Tensor:
    """`_attend_all` through F.scaled_dot_product_attention, the bias and mask as its additive mask."""
    b_, nq, c = q.shape
    nk = k.shape[1]
    # the fused kernel wants unit stride along the head dimension (else it falls back to the unfused one)
    q, k, v = (t.reshape(b_, -1, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (k, v))
    add = bias.contiguous().unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        add = (add + mask[:, None]).unsqueeze(0).expand(b_ // nw, -1, -1, -1, -1).reshape(b_, heads, nq, nk)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=add.to(q.dtype), scale=scale)
    return out.transpose(1, 2).reshape(b_, nq, c)


def _attend_all(q, k, v, bias, mask, heads: int, scale: float) -> torch.Tensor:
    """`_attend` on all windows at once; here mask (m, nq, nk) repeats along the batch (b_ % m == 0)."""
    b_, nq, c = q.shape
    nk = k.shape[1]
    q = q.reshape(b_, nq, heads, c // heads).transpose(1, 2) * scale
    k = k.reshape(b_, nk, heads, c // heads).transpose(1, 2)
    v = v.reshape(b_, nk, heads, c // heads).transpose(1, 2)
    attn = q @ k.transpose(-2, -1) + bias.unsqueeze(0)
    if mask is not None:
        nw = mask.shape[0]
        attn = (attn.view(b_ // nw, nw, heads, nq, nk) + mask[None, :, None]).view(b_, heads, nq, nk)
    return (attn.softmax(-1) @ v).transpose(1, 2).reshape(b_, nq, c)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int) -> None:
        super().__init__()
        self.heads, self.ws = heads, ws
        self.scale = (dim // heads) ** -0.5
        self.rel_bias = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.fused = True  # fused attention kernel (False: the official order; set by the owning model)

    def forward(self, win: torch.Tensor, rel_index: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n = win.shape[1]
        q, k, v = self.qkv(win).chunk(3, dim=-1)
        bias = self.rel_bias[rel_index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)
        return self.proj(_attend(q, k, v, bias, mask, self.heads, self.scale, self.fused))


class WindowBlock(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, rel_index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(to_windows(y, self.ws), rel_index, mask if self.shift else None)
        y = from_windows(y, self.ws, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


class OverlapCrossBlock(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int, overlap_ratio: float, mlp_ratio: float) -> None:
        super().__init__()
        self.ws, self.heads = ws, heads
        self.wse = ws + int(ws * overlap_ratio)
        self.scale = (dim // heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel_bias = nn.Parameter(torch.zeros((ws + self.wse - 1) ** 2, heads))
        nn.init.trunc_normal_(self.rel_bias, std=0.02)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.fused = True  # as WindowAttention.fused

    def forward(self, x: torch.Tensor, rel_index: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, wse = self.ws, self.wse
        qkv = self.qkv(self.norm1(x))  # (B, H, W, 3C): q, k, v
        # key/value windows of wse x wse around each ws x ws query window, zeros outside the image (the
        # official F.unfold with padding (wse - ws) / 2, taken from the channels-last tensor so that every
        # window row copies contiguous 2C-vectors)
        p = (wse - ws) // 2
        kv = F.pad(qkv[..., c:], (0, 0, p, p, p, p)).unfold(1, wse, ws).unfold(2, wse, ws)
        kv = kv.permute(0, 1, 2, 4, 5, 3).reshape(-1, wse * wse, 2 * c)  # (B * nW, wse*wse, 2C)
        bias = self.rel_bias[rel_index.reshape(-1)].view(ws * ws, wse * wse, -1).permute(2, 0, 1)
        y = _attend(to_windows(qkv[..., :c], ws), kv[..., :c], kv[..., c:], bias, None, self.heads, self.scale,
                    self.fused)
        x = x + self.proj(from_windows(y, ws, h, w))
        return x + self.mlp(self.norm2(x))
