"""`eqsr`: EQSR, "Deep Arbitrary-Scale Image Super-Resolution via Scale-Equivariance Pursuit"
(Wang et al., CVPR 2023). Follows the official code neuralchen/EQSR@e10a258 (arch
EQSR/archs/hat_ModMBFormer_Sim_arch.py, test path EQSR/models/hat_model.py); own implementation,
parity with the official outputs to <= 1e-5 is tested (tests/reference/test_eqsr.py, fixture tests/fixtures/eqsr).

Model: HAT-style backbone with an Adaptive Feature Extractor per group (baselines/eqsr_backbone.py,
eqsr_afe.py, eqsr_attention.py) and the Neural Kriging upsampler (eqsr_kriging.py).
`paper`: C=180, 6 groups of [AFE + 4 window blocks + 1 overlapping cross-attention block], window 16,
6 heads, MLP ratio 2, NK width 256: 13,619,510 parameters (as the official model).
`tiny`: C=48, 2 groups of [AFE + 2 window blocks + OCAB], window 8, 3 heads, NK width 64.

Official quirks kept, because published weights expect them (spec: ../shared/spec/methods.md, 1.9):
  1. Scale input: the AFE code is sincos(2 / H_hr), the cell height of the whole query frame, not the
     scale r (training saw 2/(48 r) on 48-pixel windows). `scale_input="ratio"` feeds r_h = H/h
     instead (the paper's Eq. 2): a documented deviation for comparisons, not the official behaviour.
     The width never enters the code; an anisotropic output only changes the query grid.
  2. The sincos encodings (scale code and relative coordinates) use 40 frequencies up to 2^39 pi/10,
     evaluated in float32 exactly as the official expression; other orders change outputs by ~1.
     The same expression gives other values on CUDA (division by a scalar becomes multiplication by
     its reciprocal), so official outputs differ between CPU and GPU. `sincos_arith="cuda"` applies
     the CUDA arithmetic on any device (what the official GPU runs computed; untested on a GPU here).
  3. Input: (x - DIV2K mean), no scaling; reflect padding right/bottom to a multiple of the window
     size (16 for `paper`: the test code pads to `window_size`), features cropped back before the
     upsampler. No image-space skip (no bicubic residual).
  4. Upsampler: nearest LR feature per HR pixel (grid_sample nearest: ties at exact LR-pixel
     boundaries resolve as the official ones do), relative coordinates in LR pixels, distance kernel
     from the 3x3 HR neighbours' LR centres (zero-padded border), ECA without sigmoid pooled over the
     whole query grid (a pixel depends on every queried pixel, so crops of the grid are not equal to
     the full grid), a learnable RBF length-scale shared by both blocks.
  5. The involution (official: CUDA-only CuPy kernel) is computed as its unfold form on any device.
Memory: by default the window attention runs in chunks of windows (eqsr_attention.ATTN_CHUNK_ELEMS) and
the decoder decodes grids above NeuralKriging.ONE_SHOT_ELEMS in row bands, after a pass per block that
collects the ECA statistics of the whole grid: both equal the whole-image computation (up to float
summation of the pooled means, <= 1e-5); x4 of 256x256 with the paper preset needs < 2 GiB instead of
9.3. `band_rows=N` sets the band height (N >= H: one shot). `tile` runs the backbone on LR tiles of that
size with `tile_overlap` context pixels: approximate (windows, shifts and the AFE's SE pooling see the
tile, not the image). On the banded / tiled paths the feature taps fire once per tile / band / pass (with
halo rows): analyses that read taps (CKA, on small crops) get the one-shot path.
Speed: by default the window attention runs through PyTorch's fused attention kernel, the backbone is
channels-last and the Neural Kriging decoder uses the factored head and channels-last blocks
(eqsr_kriging): the same function, rounded differently (<= 1.3e-6 from the official fixture).
`official_order=True` keeps the official order of operations in the attention and the decoder.
Training: `forward_window(lr, out_size, window)` queries only an HR window of the out_size frame, as the
official recipe does (48x48 targets in a 48r x 48r crop; the code sees 2/(48r); window edges are grid
borders and ECA pools over the window).
Ablations (EQSR paper Table 2) via `variant`: "baseline" (scale-blind 3x3 conv in the AFE block, LR
features resampled bicubically to the HR grid, then 1x1 conv-ReLU-1x1 conv), "A" (NK with the data
kernel only), "B" (distance kernel only), "C" (full NK), "D" (C with ArbSR's scale-aware conv,
baselines/arbsr_blocks.ScaleAwareConv routed by (1/r_h, 1/r_w), in the AFE block), "E" (C + AFE =
EQSR). The paper does not specify the baseline tail, the scale-blind conv or where D's conv goes;
these are our choices. Only "E" has official weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from eqbench.checkpoint import load_state_dict_strict
from eqbench.errors import EqbenchError, suggest
from eqbench.method import SRMethod, register_method

from . import recipes
from .eqsr_afe import SINCOS_ARITH, ArbSRConv, ScaleCond, sincos_encoding
from .eqsr_attention import OverlapCrossBlock, WindowAttention
from .eqsr_backbone import EQSRBackbone
from .eqsr_kriging import NeuralKriging
from .eqsr_official import convert, read_basicsr

RGB_MEAN = (0.4488, 0.4371, 0.4040)
SCALE_INPUTS = ("cell", "ratio")


@dataclass(frozen=True)
class EQSRConfig:
    dim: int = 180
    n_groups: int = 6
    depth: int = 5  # per group: 1 AFE + (depth - 1) window blocks + 1 OCAB (official `depths`)
    heads: int = 6
    window: int = 16
    mlp_ratio: float = 2.0
    overlap_ratio: float = 0.5
    latent: int = 256  # Neural Kriging width


PRESETS = {
    "paper": EQSRConfig(),
    "tiny": EQSRConfig(dim=48, n_groups=2, depth=3, heads=3, window=8, latent=64),
}
VARIANTS = {  # name -> (AFE conv, upsampler kernel)
    "baseline": ("plain", None), "A": ("plain", "data"), "B": ("plain", "distance"),
    "C": ("plain", "both"), "D": ("arbsr", "both"), "E": ("mod", "both"),
}


class BicubicFeatureTail(nn.Module):
    """Ablation "baseline": no Neural Kriging."""

    def __init__(self, in_dim: int, latent: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_dim, latent, 1)
        self.to_rgb = nn.Conv2d(latent, 3, 1)

    def forward(self, feat: torch.Tensor, out_size: tuple[int, int], band_rows: int | None = None,
                window: tuple[int, int, int, int] | None = None):
        f = F.interpolate(feat, size=out_size, mode="bicubic", align_corners=False)
        if window is not None:
            f = f[:, :, window[0]:window[0] + window[2], window[1]:window[1] + window[3]]
        return self.to_rgb(F.relu(self.head(f)))


class EQSR(SRMethod):
    """Any scale-conditioned encoder + an upsampler taking (features, out_size, band_rows)."""

    def __init__(self, encoder: nn.Module, upsampler: nn.Module, *, scale_input: str = "cell",
                 tile: int | None = None, tile_overlap: int = 16, band_rows: int | None = None,
                 param_key: str = "params_ema", sincos_arith: str = "native", official: bool = False,
                 official_order: bool = False) -> None:
        super().__init__()
        if sincos_arith not in SINCOS_ARITH:
            raise EqbenchError(f"sincos_arith must be one of {', '.join(SINCOS_ARITH)}, got {sincos_arith!r}")
        if scale_input not in SCALE_INPUTS:
            raise EqbenchError(f"scale_input must be one of {', '.join(SCALE_INPUTS)}, got {scale_input!r}"
                               f"{suggest(str(scale_input), SCALE_INPUTS)}")
        checks = (("tile", tile, 1), ("band_rows", band_rows, 1), ("tile_overlap", tile_overlap, 0))
        for name, v, lo in checks:
            if (v is not None or name == "tile_overlap") and (
                    isinstance(v, bool) or not isinstance(v, int) or v < lo):
                none = "" if name == "tile_overlap" else " or None"
                raise EqbenchError(f"{name} must be an integer >= {lo}{none}, got {v!r}")
        if band_rows is not None and isinstance(upsampler, BicubicFeatureTail):
            raise EqbenchError("band_rows is not available for variant 'baseline' (bicubic feature "
                               "resampling is not banded); leave band_rows=None")
        self.encoder, self.upsampler = encoder, upsampler
        self.scale_input, self.band_rows = scale_input, band_rows
        self.tile, self.tile_overlap = tile, tile_overlap
        self.param_key, self.official, self.sincos_arith = param_key, official, sincos_arith
        if hasattr(upsampler, "sincos_arith"):
            upsampler.sincos_arith = sincos_arith
        if hasattr(upsampler, "official_order"):
            upsampler.official_order = bool(official_order)
        for m in encoder.modules():  # EQSR's window attention: fused kernel unless the official order
            if isinstance(m, (WindowAttention, OverlapCrossBlock)):
                m.fused = not official_order
        # Does the backbone read (r_h, r_w) itself (ablation D's ArbSR conv), not only the scale code?
        self._ratio_aware = any(isinstance(m, ArbSRConv) for m in encoder.modules())
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        up = ("upsampler.head", "upsampler.blocks.0", "upsampler.blocks.1")
        self.feature_taps = tuple(f"encoder.{t}" for t in encoder.taps) + (
            up if isinstance(upsampler, NeuralKriging) else ("upsampler.head",))

    def scale_cond(self, lr: torch.Tensor, out_size: tuple[int, int]) -> ScaleCond:
        b, (h, w), (H, W) = lr.shape[0], lr.shape[-2:], out_size
        if self.scale_input == "cell":
            v = torch.ones(b, 1) * 2 / H  # the official cell[:, 0, 0, 0], float32
        else:
            v = torch.full((b, 1), H / h)
        dtype = self.mean.dtype
        code = sincos_encoding(v.to(device=lr.device, dtype=dtype), arith=self.sincos_arith)
        return ScaleCond(code, (H / h, W / w))

    def features(self, x: torch.Tensor, cond: ScaleCond) -> torch.Tensor:
        if self.tile is None:
            return self.encoder(x, cond)
        (b, _, h, w), t, o = x.shape, self.tile, self.tile_overlap
        out = None
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                ey0, ex0 = max(0, y0 - o), max(0, x0 - o)
                f = self.encoder(x[:, :, ey0:min(h, y1 + o), ex0:min(w, x1 + o)], cond)
                if out is None:
                    out = f.new_empty(b, f.shape[1], h, w)
                out[:, :, y0:y1, x0:x1] = f[:, :, y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]
        return out

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        lr = lr.to(self.mean.dtype)
        cond = self.scale_cond(lr, out_size)
        feat = self.features(lr - self.mean, cond)
        return self.upsampler(feat, out_size, self.band_rows) + self.mean

    def forward_window(self, lr: torch.Tensor, out_size: tuple[int, int],
                       window: tuple[int, int, int, int]) -> torch.Tensor:
        """Training query of the official recipe: only the HR pixels of `window` = (top, left, height,
        width) of the out_size frame (the scale code still sees the whole frame); unclamped RGB."""
        n = lr.shape[0]
        return self.forward_windows(lr, [out_size] * n, [window] * n)

    def forward_windows(self, lr: torch.Tensor, out_sizes: list[tuple[int, int]],
                        windows: list[tuple[int, int, int, int]]) -> torch.Tensor:
        """`forward_window` for a batch whose samples have their own frame and window (the official
        recipe: one scale per sample): one batched backbone pass with per-sample scale codes, then each
        sample's window decoded on its own frame. Equals per-sample `forward_window` up to float
        summation order. Windows must share one size (they are stacked)."""
        n = lr.shape[0]
        if not (len(out_sizes) == len(windows) == n):
            raise EqbenchError(f"forward_windows: {n} images but {len(out_sizes)} frames and {len(windows)} windows")
        for size, win in zip(out_sizes, windows):
            top, left, height, width = win
            if (min(top, left) < 0 or height < 1 or width < 1 or top + height > size[0]
                    or left + width > size[1]):
                raise EqbenchError(f"window {win} (top, left, height, width) is not inside the frame {size}")
        lr = lr.to(self.mean.dtype)
        conds = [self.scale_cond(lr[i:i + 1], tuple(out_sizes[i])) for i in range(n)]
        x = lr - self.mean
        if self._ratio_aware and len({c.scale for c in conds}) > 1:  # ablation D routes by (r_h, r_w)
            feats = [self.features(x[i:i + 1], c) for i, c in enumerate(conds)]
        else:
            feats = self.features(x, ScaleCond(torch.cat([c.code for c in conds]), conds[0].scale)).split(1)
        outs = [self.upsampler(f, tuple(s), self.band_rows, window=tuple(w))
                for f, s, w in zip(feats, out_sizes, windows)]
        return torch.cat(outs) + self.mean

    def load_official(self, path, param_key: str | None = None) -> EQSR:
        """BasicSR checkpoint -> this model (strict). `param_key`: "params_ema" (default, as the
        official test configs) or "params"."""
        if not self.official:
            raise EqbenchError(f"method {self.method_name or 'eqsr'!r} with these options has no official "
                               "checkpoint format (only eqsr variant 'E' was released)")
        sd = convert(read_basicsr(path, param_key or self.param_key), self.encoder, path)
        load_state_dict_strict(self, sd, str(path))
        return self


def build_eqsr(cfg: EQSRConfig, variant: str = "E", **options) -> EQSR:
    if variant not in VARIANTS:
        raise EqbenchError(f"unknown EQSR variant {variant!r}{suggest(str(variant), VARIANTS)}; "
                           f"variants: {', '.join(VARIANTS)}")
    afe, kernel = VARIANTS[variant]
    encoder = EQSRBackbone(cfg.dim, cfg.n_groups, cfg.depth, cfg.heads, cfg.window, cfg.mlp_ratio,
                           cfg.overlap_ratio, afe=afe)
    if kernel is None:
        up: nn.Module = BicubicFeatureTail(cfg.dim, cfg.latent)
    else:
        up = NeuralKriging(cfg.dim, cfg.latent, kernel)
    return EQSR(encoder, up, official=variant == "E", **options)


@register_method("eqsr", recipes=recipes.EQSR,
                 description="EQSR (CVPR 2023): HAT-style backbone with scale-modulated AFE blocks "
                 "+ Neural Kriging upsampler; variants baseline/A-E of the paper's ablation")
def make_eqsr(*, size: str = "paper", variant: str = "E", scale_input: str = "cell", tile: int | None = None,
              tile_overlap: int = 16, band_rows: int | None = None, param_key: str = "params_ema",
              sincos_arith: str = "native", official_order: bool = False) -> EQSR:
    return build_eqsr(PRESETS[size], variant, scale_input=scale_input, tile=tile, tile_overlap=tile_overlap,
                      band_rows=band_rows, param_key=param_key, sincos_arith=sincos_arith,
                      official_order=official_order)
