"""A tiny SRMethod for the training tests (not a real method; registered only while a test needs it).

Conv encoder + bilinear feature sampling at the query coordinates + a linear head with the cell,
plus a bilinear image skip. `points=True` answers `query` (LIIF-style); `points=False` has only the
dense `_upsample`, as MetaSR/ArbSR, so the trainer's dense fallback is exercised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqbench.data.batches import make_coord
from eqbench.method import METHODS, SRMethod, register_method

NAME = "toy-train"


class Toy(SRMethod):
    feature_taps = ("enc.0", "enc.2")

    def __init__(self, feats: int = 8, points: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.query_modes = ("points",) if points else ()
        self.enc = nn.Sequential(nn.Conv2d(3, feats, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(feats, feats, 3, padding=1), nn.Dropout(dropout))
        self.head = nn.Linear(feats + 2, 3)

    def _answer(self, lr, coord, cell):
        n, shape = lr.shape[0], coord.shape[1:-1]
        grid = coord.reshape(n, -1, 1, 2).flip(-1)
        feat = self.enc(lr)
        f = F.grid_sample(feat, grid, mode="bilinear", align_corners=False, padding_mode="border")
        rgb = F.grid_sample(lr, grid, mode="bilinear", align_corners=False, padding_mode="border")
        f, rgb = f[..., 0].transpose(1, 2), rgb[..., 0].transpose(1, 2)
        rel_cell = cell.reshape(n, -1, 2) * torch.tensor(lr.shape[-2:], dtype=lr.dtype, device=lr.device)
        return (self.head(torch.cat([f, rel_cell], -1)) + rgb).reshape(n, *shape, 3)

    def query(self, lr, coord, cell):
        if not self.query_modes:
            return super().query(lr, coord, cell)
        return self._answer(lr, coord, cell)

    def _upsample(self, lr, out_size):
        H, W = out_size
        coord = make_coord(H, W).to(lr).expand(lr.shape[0], H, W, 2)
        cell = torch.tensor([2 / H, 2 / W], dtype=lr.dtype, device=lr.device).expand_as(coord)
        return self._answer(lr, coord, cell).permute(0, 3, 1, 2)


def make_toy(*, size: str = "tiny", feats: int = 8, points: bool = True, dropout: float = 0.0) -> Toy:
    return Toy(feats=feats, points=points, dropout=dropout)


def register() -> None:
    if NAME not in METHODS:
        register_method(NAME, description="test-only toy method")(make_toy)


def unregister() -> None:
    METHODS._items.pop(NAME, None)
