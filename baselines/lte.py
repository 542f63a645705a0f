"""LTE: Local Texture Estimator (Lee & Jin, CVPR 2022).

Follows jaewon-lee-b/lte (models/lte.py, test.py): from the encoder features, 3x3 convs predict
amplitude (`coef`) and frequency (`freq`) maps; per query and local-ensemble neighbour the
frequencies are read as hidden/2 (f_y, f_x) pairs of consecutive channels, dotted with the relative
coordinate, shifted by a phase predicted from the relative cell, and the Fourier basis
[cos(pi w), sin(pi w)] times the amplitudes goes through the MLP; the area-blended prediction is
added to a bilinear (border) sample of the normalised input. Kept from the official test: the cell is
clipped to that of x4 beyond x4 (`cell *= max(s / 4, 1)`, here per axis with s = out/in, where the
official script uses the integer scale of the benchmark name); SwinIR encoders are queried inside
the mirrored-padded frame. Difference: EDSR's unused MeanShift modules are left out (24 parameters:
1,714,243 here vs 1,714,267 official for EDSR-baseline-LTE).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqbench import fastconv
from eqbench.method import register_method

from . import recipes
from .encoders import channels_last, has_hooks
from .implicit import MLP, ImplicitSR, NearestLookup, local_ensemble, make_encoder


class LTE(ImplicitSR):
    official_name = "lte"
    decoder_taps = ("coef", "freq", "imnet")

    def __init__(self, encoder: str = "edsr-baseline", size: str = "paper", hidden_dim: int | None = None,
                 mlp_hidden: tuple[int, ...] | None = None, cell_clip: float | None = 4.0,
                 encoder_args: dict | None = None) -> None:
        super().__init__(make_encoder(encoder, size, encoder_args), encoder, cell_clip)
        hidden_dim = hidden_dim or (256 if size == "paper" else 64)
        c = self.encoder.out_dim
        self.hidden_dim = hidden_dim
        self.coef = nn.Conv2d(c, hidden_dim, 3, padding=1)
        self.freq = nn.Conv2d(c, hidden_dim, 3, padding=1)
        self.phase = nn.Linear(2, hidden_dim // 2, bias=False)
        self.imnet = MLP(hidden_dim, 3, list(mlp_hidden or ((256,) * 3 if size == "paper" else (64, 64))))

    def gen_feat(self, inp: torch.Tensor) -> dict:
        feat = self.encoder(inp)
        hd = self.hidden_dim
        # frequency channels regrouped once per LR pixel: [f_y of pair 0..hd/2-1 | f_x of pair 0..]
        # (the official pairs are consecutive channels (2j, 2j+1)), so a query reads two contiguous halves
        order = torch.cat([torch.arange(0, hd, 2), torch.arange(1, hd, 2)]).to(feat.device)
        fused = self._coef_freq_fused(feat, order)
        if fused is not None:
            return {"inp": inp, "lookup": NearestLookup(fused)}
        freq = self.freq(feat)
        return {"inp": inp, "lookup": NearestLookup(torch.cat([self.coef(feat), freq[:, order]], dim=1))}

    def _coef_freq_fused(self, feat: torch.Tensor, order: torch.Tensor) -> torch.Tensor | None:
        """[coef | freq regrouped] as one Winograd convolution with the two kernels stacked (one input
        transform, one wider matrix product, a channels-last result the lookup table reads as rows), where
        fastconv applies and nothing hooks the two modules; else None."""
        x = channels_last(feat)
        coef, freq = self.coef, self.freq
        if not fastconv.applies(x, coef.weight, coef.bias) or has_hooks(coef) or has_hooks(freq):
            return None
        params = (coef.weight, coef.bias, freq.weight, freq.bias)
        key = None if any(p.is_inference() for p in params) else tuple((p.data_ptr(), p._version) for p in params)
        cached = self.__dict__.get("_coef_freq")
        if key is None or cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # normal tensors: fastconv caches their transform
                w = torch.cat([coef.weight, freq.weight[order]]).detach()
                b = torch.cat([coef.bias, freq.bias[order]]).detach()
            cached = (key, w, b)
            if key is not None:  # stacked once; fastconv caches their transform by tensor
                self.__dict__["_coef_freq"] = cached
        return fastconv.conv3x3(x, cached[1], cached[2])

    def query(self, state: dict, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        hd = self.hidden_dim

        def predict(take, rel, rel_cell):
            q = take()
            B, Q = q.shape[:2]
            q = q.view(B * Q, 2 * hd)
            rel, rel_cell = rel.reshape(B * Q, 2), rel_cell.reshape(B * Q, 2)
            # official: sum over (y, x) of f * rel, i.e. fl(f_y r_y + f_x r_x): the same two products and one add
            w = torch.mul(q[:, hd:hd + hd // 2], rel[:, :1])
            w.add_(torch.mul(q[:, hd + hd // 2:], rel[:, 1:]))
            w.add_(self.phase(rel_cell)).mul_(math.pi)
            if torch.is_grad_enabled():  # training: out= is not differentiable
                basis = torch.mul(q[:, :hd], torch.cat((torch.cos(w), torch.sin(w)), dim=-1))
            else:
                basis = q.new_empty(B * Q, hd)
                torch.cos(w, out=basis[:, :hd // 2])
                torch.sin(w, out=basis[:, hd // 2:])
                basis.mul_(q[:, :hd])
            return self.imnet(basis).view(B, Q, -1)

        out = local_ensemble(state["lookup"], coord, cell, predict)
        skip = F.grid_sample(state["inp"], coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border",
                             align_corners=False)
        return out + skip[:, :, 0, :].permute(0, 2, 1)


@register_method("lte", recipes=recipes.LTE,
                 description="LTE (CVPR 2022): local texture estimator; encoders edsr-baseline/rdn/swinir")
def make_lte(*, size: str = "paper", encoder: str = "edsr-baseline", hidden_dim: int | None = None,
             mlp_hidden: tuple[int, ...] | None = None, cell_clip: float | None = 4.0,
             encoder_args: dict | None = None) -> LTE:
    return LTE(encoder, size, hidden_dim, mlp_hidden, cell_clip, encoder_args)
