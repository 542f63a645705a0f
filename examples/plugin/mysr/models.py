"""Two networks in the call conventions ASISR code already uses, handed to eqbench with `eqbench.wrap`.

* `TinyImplicit` is LIIF-shaped (`forward(inp, coord, cell) -> (N, Q, 3)`, with `gen_feat` / `query_rgb`):
  a conv encoder and an MLP decoder add a residual to the bilinear sample of the input. Its last layer
  starts at zero, so until you train it (or load your weights) it is exactly bilinear interpolation.
* `Bilinear` takes the output size (`forward(lr, out_size)`): F.interpolate, align_corners=False.

A factory takes no arguments and returns a ready model: load your own weights in it, e.g.
`net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import eqbench


def _sample(x: torch.Tensor, coord: torch.Tensor, mode: str) -> torch.Tensor:
    """x (N, C, h, w) at coord (N, Q, 2) in [-1, 1], (row, col) -> (N, Q, C); border padding."""
    grid = coord.flip(-1).unsqueeze(1)  # grid_sample wants (x, y) = (col, row)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)[:, :, 0].permute(0, 2, 1)


class TinyImplicit(nn.Module):
    def __init__(self, feat: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, feat, 3, padding=1), nn.ReLU(), nn.Conv2d(feat, feat, 3, padding=1))
        self.decoder = nn.Sequential(nn.Linear(feat + 4, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        nn.init.zeros_(self.decoder[2].weight)
        nn.init.zeros_(self.decoder[2].bias)

    def gen_feat(self, inp: torch.Tensor) -> torch.Tensor:
        self.inp, self.feat = inp, self.encoder(inp)
        return self.feat

    def query_rgb(self, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h, w = self.inp.shape[-2:]
        size = torch.tensor([h, w], dtype=coord.dtype, device=coord.device)
        # Offset from the nearest LR pixel centre, in LR pixels, and the query's cell in LR pixels.
        rel = (coord + 1) * size / 2 - 0.5
        rel = rel - rel.round()
        z = torch.cat([_sample(self.feat, coord, "nearest"), rel, cell * size / 2], dim=-1)
        return _sample(self.inp, coord, "bilinear") + self.decoder(z)

    def forward(self, inp: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        self.gen_feat(inp)
        return self.query_rgb(coord, cell)


class Bilinear(nn.Module):
    def forward(self, lr: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(lr, size=out_size, mode="bilinear", align_corners=False)


def make_implicit() -> eqbench.SRMethod:
    """TinyImplicit (LIIF-style coord-cell), exactly bilinear until trained."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the encoder's initial weights, the same on every run
        net = TinyImplicit().double()  # float64: bit-for-bit the same bilinear base as `Bilinear`
    return eqbench.wrap(net, style="coord-cell", taps=("encoder", "decoder.1"), name="mysr-implicit",
                        encode="gen_feat", query="query_rgb")


def make_bilinear() -> eqbench.SRMethod:
    """Bilinear interpolation (out_size style, align_corners=False)."""
    return eqbench.wrap(Bilinear(), style="out_size", name="mysr-bilinear")
