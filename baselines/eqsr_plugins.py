"""`eqsr-edsr`, `eqsr-swinir`: EQSR's AFE blocks and Neural Kriging upsampler on other backbones, the
EDSR* and SwinIR* rows of the EQSR paper's Table 3. No official code exists for these; the placement
is ours and follows EQSR's own design: an AFE block opens every stage, inside the stage's residual
where the backbone has one.

  * eqsr-edsr: EDSR-baseline (16 residual blocks x 64, baselines/encoders.py); an AFE block before
    every 4 residual blocks (4 AFE blocks; EDSR has no per-stage residual, so they sit in the stream),
    then NK (width 256) on the 64-channel features. `tiny`: edsr-tiny (4 x 32), AFE every 2, NK 64 (EQSR-tiny's width).
  * eqsr-swinir: SwinIR as LTE uses it (baselines/swinir.py: 6 RSTB x 6 Swin blocks, C=180, window 8,
    64-channel output conv); in every RSTB the AFE block runs before the Swin blocks, inside the RSTB
    residual (as in EQSR's groups); NK (width 256). `tiny`: swinir-tiny, NK 64.
Input normalisation, padding (reflect to a multiple of the window, features cropped back) and the
scale code are EQSR's (baselines/eqsr.py), as are the `scale_input`, `tile` and `band_rows` options.
"""

from __future__ import annotations

import torch
from torch import nn

from eqbench.method import register_method

from . import recipes
from .encoders import EDSR_PRESETS, EDSREncoder, channels_last
from .eqsr import EQSR
from .eqsr_afe import AFEBlock, ModulatedConv2d, ScaleCond
from .eqsr_backbone import reflect_pad
from .eqsr_kriging import NeuralKriging
from .swinir import SWINIR_PRESETS, SwinIREncoder, transformer_init


def _afe(dim: int) -> AFEBlock:
    block = AFEBlock(dim, ModulatedConv2d(dim))
    block.apply(transformer_init)
    return block


class EDSRWithAFE(nn.Module):
    def __init__(self, preset: str = "edsr-baseline", every: int = 4) -> None:
        super().__init__()
        self.edsr = EDSREncoder(**EDSR_PRESETS[preset])
        self.n_blocks, self.every = len(self.edsr.body) - 1, every
        self.out_dim = self.edsr.out_dim
        self.afe = nn.ModuleList(_afe(self.out_dim) for _ in range(0, self.n_blocks, every))

    @property
    def taps(self) -> tuple[str, ...]:
        taps: list[str] = ["edsr.head"]
        for i in range(self.n_blocks):
            taps += [f"afe.{i // self.every}"] if i % self.every == 0 else []
            taps.append(f"edsr.body.{i}")
        return tuple(taps) + (f"edsr.body.{self.n_blocks}",)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        f = self.edsr.head(channels_last(x))  # EDSREncoder's layout
        t = f
        for i in range(self.n_blocks):
            if i % self.every == 0:
                t = self.afe[i // self.every](t, cond)
            t = self.edsr.body[i](t)
        return (self.edsr.body[self.n_blocks](t) + f).contiguous()


class SwinIRWithAFE(nn.Module):
    def __init__(self, preset: str = "swinir") -> None:
        super().__init__()
        self.swinir = SwinIREncoder(**SWINIR_PRESETS[preset])
        dim = self.swinir.conv_first.out_channels
        self.out_dim, self.window = self.swinir.out_dim, self.swinir.window_size
        self.afe = nn.ModuleList(_afe(dim) for _ in self.swinir.layers)
        # named points for feature hooks: the RSTB outputs (the RSTBs are run piecewise below)
        self.group_out = nn.ModuleList(nn.Identity() for _ in self.swinir.layers)

    @property
    def taps(self) -> tuple[str, ...]:
        n = len(self.group_out)
        groups = tuple(f"group_out.{i}" for i in range(n))
        return ("swinir.conv_first",) + groups + ("swinir.conv_before_upsample",)

    def forward(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        s, ws = self.swinir, self.window
        h, w = x.shape[-2:]
        x = reflect_pad(x, -h % ws, -w % ws)
        first = s.conv_first(x)
        b, c, hp, wp = first.shape
        t = s.patch_embed(first)  # tokens (B, L, C)
        for afe, layer, tap in zip(self.afe, s.layers, self.group_out):
            img = t.transpose(1, 2).reshape(b, c, hp, wp)
            y = layer.residual_group(afe(img, cond).flatten(2).transpose(1, 2), (hp, wp))
            t = tap(layer.conv(y.transpose(1, 2).reshape(b, c, hp, wp)).flatten(2).transpose(1, 2) + t)
        t = s.norm(t).transpose(1, 2).reshape(b, c, hp, wp)
        return s.conv_before_upsample(s.conv_after_body(t) + first)[:, :, :h, :w]


PLUGIN_PRESETS = {  # size -> (backbone preset, NK width)
    "eqsr-edsr": {"paper": ("edsr-baseline", 256), "tiny": ("edsr-tiny", 64)},
    "eqsr-swinir": {"paper": ("swinir", 256), "tiny": ("swinir-tiny", 64)},
}


def build_plugin(name: str, size: str, **options) -> EQSR:
    preset, latent = PLUGIN_PRESETS[name][size]
    if name == "eqsr-edsr":
        encoder: nn.Module = EDSRWithAFE(preset, every=4 if size == "paper" else 2)
    else:
        encoder = SwinIRWithAFE(preset)
    return EQSR(encoder, NeuralKriging(encoder.out_dim, latent), **options)


@register_method("eqsr-edsr", recipes=recipes.EQSR_EDSR,
                 description="EDSR-baseline + EQSR's AFE blocks + Neural Kriging (EQSR Table 3)")
def make_eqsr_edsr(*, size: str = "paper", scale_input: str = "cell", tile: int | None = None,
                   tile_overlap: int = 16, band_rows: int | None = None, official_order: bool = False) -> EQSR:
    return build_plugin("eqsr-edsr", size, scale_input=scale_input, tile=tile, tile_overlap=tile_overlap,
                        band_rows=band_rows, official_order=official_order)


@register_method("eqsr-swinir", recipes=recipes.EQSR_SWINIR,
                 description="SwinIR (LTE's) + EQSR's AFE blocks + Neural Kriging (EQSR Table 3)")
def make_eqsr_swinir(*, size: str = "paper", scale_input: str = "cell", tile: int | None = None,
                     tile_overlap: int = 16, band_rows: int | None = None, official_order: bool = False) -> EQSR:
    return build_plugin("eqsr-swinir", size, scale_input=scale_input, tile=tile, tile_overlap=tile_overlap,
                        band_rows=band_rows, official_order=official_order)
