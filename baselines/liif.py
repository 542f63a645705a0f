"""LIIF: Local Implicit Image Function (Chen, Liu & Wang, CVPR 2021).

Follows yinboc/liif (models/liif.py, models/mlp.py, test.py) at commit 4c833f8f: the encoder
feature map is 3x3-unfolded (zero padding), each query takes the nearest feature of 4 shifted
positions (local ensemble), the MLP sees [feature, relative coordinate, relative cell] (all in LR
pixel units x2), predictions are blended by diagonally-opposite areas. Inputs are normalised
(x - 0.5) / 0.5; no image-level skip. LIIF's test.py applies no cell clipping (`cell_clip=None`,
the default); LTE's test.py, the only official path for a SwinIR encoder, clips at x4 (`cell_clip=4`).
Differences from the official code: the unused MeanShift modules of its EDSR encoder are left out
(24 parameters: 1,567,299 here vs 1,567,323 official for EDSR-baseline-LIIF); decoding walks the
HR grid in bands (exact, bounded memory) instead of 30,000-query chunks of a flattened grid.

First MLP layer, factored (default; `official_order=True` restores the official order of operations):
the layer is W [feat | rel | cell] + b, and its feature part W_f feat(p) depends only on the LR pixel p
the query picks. Since the 3x3 unfold is linear, W_f unfold(feat) is a 3x3 convolution of the encoder
features with W_f reshaped (hidden, C, 3, 3); it runs once per LR pixel (bias folded in), and every
(query, ensemble corner) gathers its row and adds [rel, cell] @ W_rc^T (4 columns). Algebraically the
same layer; only float summation order changes (measured on the golden fixtures: <= 1e-6). For
EDSR-baseline-LIIF this removes 576*256 of the 345k multiply-adds per query and corner (43%).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eqbench.method import register_method

from . import recipes
from .implicit import MLP, ImplicitSR, NearestLookup, local_ensemble, make_encoder


class LIIF(ImplicitSR):
    official_name = "liif"
    decoder_taps = ("imnet",)

    def __init__(self, encoder: str = "edsr-baseline", size: str = "paper", local_ensemble: bool = True,
                 feat_unfold: bool = True, cell_decode: bool = True, hidden: tuple[int, ...] | None = None,
                 encoder_args: dict | None = None, cell_clip: float | None = None,
                 official_order: bool = False) -> None:
        super().__init__(make_encoder(encoder, size, encoder_args), encoder, cell_clip)
        self.local_ensemble, self.feat_unfold, self.cell_decode = local_ensemble, feat_unfold, cell_decode
        self.official_order = official_order
        c = self.encoder.out_dim * (9 if feat_unfold else 1)
        hidden = hidden or ((256,) * 4 if size == "paper" else (64, 64))
        self.imnet = MLP(c + 2 + (2 if cell_decode else 0), 3, list(hidden))

    def gen_feat(self, inp: torch.Tensor) -> dict:
        feat = self.encoder(inp)
        if not self.official_order:
            return {"lookup": NearestLookup(self._first_layer_features(feat))}
        if self.feat_unfold:
            B, C, h, w = feat.shape
            feat = F.unfold(feat, 3, padding=1).view(B, C * 9, h, w)
        # Without autograd each looked-up row ends in room for the relative coordinate (and cell).
        return {"lookup": NearestLookup(feat, spare=4 if self.cell_decode else 2)}

    def _first_layer_features(self, feat: torch.Tensor) -> torch.Tensor:
        """W_f unfold(feat) + b per LR pixel, as a convolution: (B, hidden, h, w)."""
        first = self.imnet.layers[0]
        k = 3 if self.feat_unfold else 1
        w_feat = first.weight[:, :first.in_features - self.extra_dims]
        return F.conv2d(feat, w_feat.reshape(first.out_features, -1, k, k), first.bias, padding=k // 2)

    @property
    def extra_dims(self) -> int:
        return 4 if self.cell_decode else 2

    def _query_factored(self, state: dict, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        first = self.imnet.layers[0]
        w_extra = first.weight[:, first.in_features - self.extra_dims:].t()

        def predict(take, rel, rel_cell):
            x = take()  # (B, Q, hidden): the picked pixels' W_f feat + b
            B, Q, n = x.shape
            extra = torch.cat([rel, rel_cell], -1) if self.cell_decode else rel
            extra = extra.reshape(B * Q, -1)
            x = x.view(B * Q, n)
            x = torch.addmm(x, extra, w_extra) if torch.is_grad_enabled() else x.addmm_(extra, w_extra)
            return self.imnet(x, first_done=True).view(B, Q, -1)

        return local_ensemble(state["lookup"], coord, cell, predict, ensemble=self.local_ensemble)

    def query(self, state: dict, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        if not self.official_order:
            return self._query_factored(state, coord, cell)

        def predict(take, rel, rel_cell):
            x = take(rel, rel_cell) if self.cell_decode else take(rel)  # the official torch.cat order
            B, Q = x.shape[:2]
            return self.imnet(x.view(B * Q, -1)).view(B, Q, -1)

        return local_ensemble(state["lookup"], coord, cell, predict, ensemble=self.local_ensemble)


@register_method("liif", recipes=recipes.LIIF,
                 description="LIIF (CVPR 2021): local implicit image function; edsr-baseline/rdn/swinir")
def make_liif(*, size: str = "paper", encoder: str = "edsr-baseline", local_ensemble: bool = True,
              feat_unfold: bool = True, cell_decode: bool = True, hidden: tuple[int, ...] | None = None,
              encoder_args: dict | None = None, cell_clip: float | None = None,
              official_order: bool = False) -> LIIF:
    return LIIF(encoder, size, local_ensemble, feat_unfold, cell_decode, hidden, encoder_args, cell_clip,
                official_order)
