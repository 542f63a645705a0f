"""`metasr`: Meta-SR (Hu et al., "Meta-SR: A Magnification-Arbitrary Network for Super-Resolution",
CVPR 2019).

An encoder (RDN, or EDSR-baseline) makes LR features; for every HR pixel a small MLP (Pos2Weight,
3 -> hidden -> C*9*3) predicts the weights of a 3x3 x C -> 3 convolution applied at the LR pixel the HR
pixel falls in (corner geometry: HR row i -> LR row floor(i / r), offset frac(i / r)). No bias.

Two variants, whose weights do not transfer (methods.md 4.1, 4.2):
  * `official`: XuecaiHu/Meta-SR-Pytorch@8aec6e1 MetaRDN. Input in [0, 255] shifted by the DIV2K mean
    (learned 1x1 convs: the official MeanShift never freezes them), MLP input (1/r, dh, dw) with the
    offsets computed in float32 as the official `input_matrix_wpn` does.
  * `liif`: the re-implementation in yinboc/liif@4c833f8 (`models/misc.py`) that the LIIF and LTE
    papers report. Input (x - 0.5) / 0.5, MLP input (dh, dw, 1/r), offsets from LIIF's coordinates.
Asymmetric scales (our choice; the official code has a single r): rows use r_h, columns r_w, and the
scalar fed to the MLP is 1/r_h in both variants. That is exactly what the LIIF re-implementation does
(it reads only the row component of the cell), so both variants agree on the rule.
Differences from the official code, none changing outputs beyond float round-off: the official MetaRDN
evaluates ceil(r)^2 * h * w weight vectors (slots later masked away); here each distinct (dh, dw) pair of a
chunk of HR rows is evaluated once and no more than one chunk of per-pixel weights exists at a time.
The EDSR-baseline encoder leaves out LIIF's unused MeanShift (24 parameters: 1,665,536 vs 1,665,560).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqbench.checkpoint import load_state_dict_strict, torch_load_safe
from eqbench.errors import EqbenchError, suggest
from eqbench.method import SRMethod, register_method

from . import recipes
from .encoders import EDSR_PRESETS, RDN_PRESETS, EDSREncoder, MeanShift, RDNEncoder
from .scale_arg import resolve_scale

VARIANTS = ("official", "liif")
ENCODERS = {"official": ("rdn",), "liif": ("edsr-baseline", "rdn")}
TINY_ENCODER = {"edsr-baseline": "edsr-tiny", "rdn": "rdn-tiny"}


class MetaSR(SRMethod):
    def __init__(self, encoder: nn.Module, variant: str = "official", p2w_hidden: int = 256,
                 chunk_pixels: int = 4096) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise EqbenchError(f"unknown metasr variant {variant!r}{suggest(variant, VARIANTS)}; "
                               f"variants: {', '.join(VARIANTS)}")
        self.variant = variant
        self.encoder = encoder
        c = encoder.out_dim
        self.p2w = nn.Sequential(nn.Linear(3, p2w_hidden), nn.ReLU(True), nn.Linear(p2w_hidden, c * 9 * 3))
        if variant == "official":
            self.sub_mean = MeanShift(-1, trainable=True)
            self.add_mean = MeanShift(+1, trainable=True)
        self.chunk_pixels = int(chunk_pixels)
        self.feature_taps = tuple(f"encoder.{t}" for t in encoder.taps)

    # -- geometry -------------------------------------------------------------------------------
    def _axis(self, n_out: int, n_in: int, r: float, device) -> tuple[torch.Tensor, torch.Tensor]:
        """LR index and offset in [0, 1) of each HR row (or column)."""
        i = torch.arange(n_out, device=device, dtype=torch.float32)
        if self.variant == "official":
            p = i * (1.0 / r)  # float32 product, as input_matrix_wpn computes it
            k = torch.floor(p)
            off = p - k
        else:
            # LIIF: HR pixel top-left corner at 2i/n_out from the top edge (normalised units), nudged by 1e-6
            # before the nearest-neighbour lookup; offset measured from that LR pixel's corner in LR pixels.
            u = i.double() * (2.0 / n_out)
            k = torch.floor((u + 1e-6) * (n_in / 2))
            off = (u * (n_in / 2) - k).float()
        return k.long().clamp_(0, n_in - 1), off

    def _meta_conv(self, feat: torch.Tensor, rows, cols, s_in: float) -> torch.Tensor:
        n, c, h, w = feat.shape
        k_r, d_r = rows
        k_c, d_c = cols
        H, W = d_r.numel(), d_c.numel()
        fpad = F.pad(feat, (1, 1, 1, 1))  # zero padding, as unfold(3, padding=1)
        u_c, inv_c = torch.unique(d_c, return_inverse=True)
        step = max(1, self.chunk_pixels // W)
        out = feat.new_empty(n, 3, H, W)
        for i0 in range(0, H, step):
            kr = k_r[i0:i0 + step]
            R = kr.numel()
            u_r, inv_r = torch.unique(d_r[i0:i0 + step], return_inverse=True)
            a = u_r.view(-1, 1, 1).expand(-1, u_c.numel(), 1)
            b = u_c.view(1, -1, 1).expand(u_r.numel(), -1, 1)
            s = torch.full_like(a, s_in)
            inp = torch.cat((s, a, b) if self.variant == "official" else (a, b, s), -1).to(feat.dtype)
            wts = self.p2w(inp.view(-1, 3))  # one row per distinct (dh, dw) of the chunk
            # (R*W, C*9*3): the one chunk of per-pixel weights (flat gathers: index_select on a middle
            # dimension is many times slower on CPU)
            w_pix = wts.index_select(0, (inv_r[:, None] * u_c.numel() + inv_c[None, :]).view(-1))
            # 3x3 neighbourhoods of the LR rows this chunk reads, in unfold's order c*9 + ky*3 + kx,
            # laid out (row, col, n, C*9) so that gathering pixels copies contiguous vectors
            k0, k1 = int(kr.min()), int(kr.max())
            nb = F.unfold(fpad[:, :, k0:k1 + 3], 3).view(n, c * 9, (k1 - k0 + 1) * w).permute(2, 0, 1)
            nb = nb.contiguous().index_select(0, ((kr - k0)[:, None] * w + k_c[None, :]).view(-1))
            y = torch.bmm(nb, w_pix.view(R * W, c * 9, 3))
            out[:, :, i0:i0 + R] = y.view(R, W, n, 3).permute(2, 3, 0, 1)
        return out

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int], scale=None) -> torch.Tensor:
        h, w = lr.shape[-2:]
        H, W = out_size
        if self.variant == "liif" and scale is not None:
            raise EqbenchError("metasr variant 'liif' derives the scale from out_size (as LIIF's code does); "
                               "drop the scale argument")
        r_h, r_w = resolve_scale((h, w), out_size, scale)
        if self.variant == "official":
            feat = self.encoder(self.sub_mean(lr * 255.0))
            s_in = float(torch.tensor(1.0 / r_h, dtype=torch.float32))
        else:
            feat = self.encoder((lr - 0.5) / 0.5)
            s_in = float(torch.tensor(2.0 / H, dtype=torch.float32) * (h / 2))  # LIIF: cell_h * h / 2
        rows = self._axis(H, h, r_h, lr.device)
        cols = self._axis(W, w, r_w, lr.device)
        out = self._meta_conv(feat, rows, cols, s_in)
        if self.variant == "official":
            return self.add_mean(out) / 255.0
        return out * 0.5 + 0.5

    # -- checkpoints ----------------------------------------------------------------------------
    def load_official(self, path) -> MetaSR:
        obj = torch_load_safe(path)
        liif_format = isinstance(obj, dict) and isinstance(obj.get("model"), dict) and "sd" in obj["model"]
        if self.variant == "official":
            if liif_format:
                raise EqbenchError(f"{path} is a LIIF-repository checkpoint; create metasr with "
                                   "variant='liif' (and its encoder) to load it")
            sd = {self._official_key(k): v for k, v in obj.items()} if isinstance(obj, dict) else obj
        else:
            if not liif_format:
                raise EqbenchError(f"{path} is not a LIIF-repository checkpoint (a dict whose 'model' holds "
                                   "name/args/sd); an official Meta-SR state_dict needs variant='official'")
            sd = self._liif_state_dict(obj["model"], path)
        load_state_dict_strict(self, sd, str(path))
        return self

    @staticmethod
    def _official_key(k: str) -> str:
        if k.startswith(("sub_mean.", "add_mean.")):
            return k
        if k.startswith("P2W.meta_block."):
            return "p2w." + k[len("P2W.meta_block."):]
        return "encoder." + k

    def _liif_state_dict(self, model: dict, path) -> dict:
        if model.get("name") != "metasr":
            raise EqbenchError(f"{path} holds a LIIF-repository {model.get('name')!r} model, not 'metasr'")
        spec = (model.get("args") or {}).get("encoder_spec") or {}
        theirs, ours = spec.get("name"), "rdn" if isinstance(self.encoder, RDNEncoder) else "edsr-baseline"
        if theirs is not None and theirs != ours:
            raise EqbenchError(f"{path} has encoder {theirs!r} but this metasr uses {ours!r}; "
                               f"create it with encoder={theirs!r}")
        sd = {}
        for k, v in model["sd"].items():
            if k.startswith(("encoder.sub_mean.", "encoder.add_mean.")):
                continue  # defined but never applied by LIIF's encoders
            sd[k.replace("imnet.layers.", "p2w.", 1) if k.startswith("imnet.layers.") else k] = v
        return sd


def build_encoder(name: str, size: str) -> nn.Module:
    preset = name if size == "paper" else TINY_ENCODER[name]
    return RDNEncoder(**RDN_PRESETS[preset]) if name == "rdn" else EDSREncoder(**EDSR_PRESETS[preset])


@register_method("metasr", recipes=recipes.METASR,
                 description="Meta-SR (CVPR 2019): per-pixel conv weights from (scale, offset); "
                 "variant official (MetaRDN) | liif (encoder edsr-baseline | rdn)")
def make_metasr(*, size: str = "paper", variant: str = "official", encoder: str | None = None) -> MetaSR:
    if variant not in VARIANTS:
        raise EqbenchError(f"unknown metasr variant {variant!r}{suggest(variant, VARIANTS)}; "
                           f"variants: {', '.join(VARIANTS)}")
    allowed = ENCODERS[variant]
    encoder = encoder or allowed[0]
    if encoder not in allowed:
        hint = " (the official code is MetaRDN only; use variant='liif' for EDSR-baseline)" \
            if variant == "official" and encoder in ENCODERS["liif"] else suggest(encoder, allowed)
        raise EqbenchError(f"metasr variant {variant!r} has no encoder {encoder!r}{hint}; "
                           f"encoders: {', '.join(allowed)}")
    return MetaSR(build_encoder(encoder, size), variant, p2w_hidden=256 if size == "paper" else 64)
