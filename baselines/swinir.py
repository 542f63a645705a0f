"""SwinIR (Liang et al., ICCVW 2021) as an encoder, in the form the LTE repository uses it.

Follows jaewon-lee-b/lte `models/swinir.py` (the module names match its state_dict):
conv_first -> patch_embed (LayerNorm) -> RSTB x L (Swin blocks, conv, residual) -> LayerNorm ->
conv_after_body, + conv_first output -> `conv_before_upsample` (conv to 64 channels + LeakyReLU 0.01).
Known behaviour kept for parity: no mean/range normalisation of the input; the encoder reflect-pads
its input to a multiple of the window and never crops back, so callers pad first (LTE's test pads by
(n // 8 + 1) * 8 - n with mirrored rows; see baselines/implicit.symmetric_pad) and query inside the
padded frame. Differences: the relative-position index and attention masks are non-persistent
buffers recomputed from the input size (official checkpoints carry them; load_official drops them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def transformer_init(m: nn.Module) -> None:
    """Swin/HAT init: Linear trunc_normal(0.02), bias 0; LayerNorm (1, 0); convs keep PyTorch defaults."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class DropPath(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)


def relative_position_index(ws: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def shift_mask(H: int, W: int, ws: int, shift: int, device=None) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) attention mask: -100 between tokens from different regions of a shifted window."""
    img = torch.zeros(1, H, W, 1, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = window_partition(img, ws).view(-1, ws * ws)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int) -> None:
        super().__init__()
        self.ws, self.heads = ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        Bw, N, C = x.shape
        qkv = self.qkv(x).reshape(Bw, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(Bw // nW, nW, self.heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, N, N)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(Bw, N, C))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ws: int, shift: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        H, W = size
        B, L, C = x.shape
        h = self.norm1(x).view(B, H, W, C)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = window_partition(h, self.ws).view(-1, self.ws * self.ws, C)
        mask = shift_mask(H, W, self.ws, self.shift, x.device).to(x.dtype) if self.shift else None
        h = window_reverse(self.attn(win, mask).view(-1, self.ws, self.ws, C), self.ws, H, W)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(h.reshape(B, L, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class _Blocks(nn.Module):
    def __init__(self, blocks: list[SwinBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, size):
        for b in self.blocks:
            x = b(x, size)
        return x


class RSTB(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, ws: int, mlp_ratio: float, dpr: list[float]) -> None:
        super().__init__()
        self.residual_group = _Blocks([SwinBlock(dim, heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio, dpr[i])
                                       for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        B, L, C = x.shape
        y = self.residual_group(x, size).transpose(1, 2).view(B, C, *size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


class SwinIREncoder(nn.Module):
    """SwinIR body without upsampler -> (N, 64, h', w') where h', w' are the window-padded sizes."""

    def __init__(self, embed_dim: int = 180, depths=(6, 6, 6, 6, 6, 6), num_heads=(6, 6, 6, 6, 6, 6),
                 window_size: int = 8, mlp_ratio: float = 2.0, drop_path_rate: float = 0.1, out_dim: int = 64) -> None:
        super().__init__()
        self.window_size = window_size
        self.out_dim = out_dim
        self.conv_first = nn.Conv2d(3, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList(
            RSTB(embed_dim, d, h, window_size, mlp_ratio, dpr[sum(depths[:i]): sum(depths[: i + 1])])
            for i, (d, h) in enumerate(zip(depths, num_heads)))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, out_dim, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.apply(transformer_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ws = self.window_size
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws), mode="reflect")
        first = self.conv_first(x)
        size = first.shape[-2:]
        t = self.patch_embed(first)
        for layer in self.layers:
            t = layer(t, size)
        t = self.norm(t).transpose(1, 2).view(first.shape)
        return self.conv_before_upsample(self.conv_after_body(t) + first)

    @property
    def taps(self) -> tuple[str, ...]:
        return ("conv_first",) + tuple(f"layers.{i}" for i in range(len(self.layers))) + ("conv_before_upsample",)


SWINIR_PRESETS = {
    "swinir": dict(embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=8),
    "swinir-tiny": dict(embed_dim=24, depths=(2, 2), num_heads=(2, 2), window_size=8),
}
