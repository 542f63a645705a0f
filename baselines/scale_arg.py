"""The per-axis scale a scale-conditioned method is told, given the LR size and the requested out_size.

MetaSR and ArbSR feed the scale itself to the network, and their official test code derives the output
size from it (`int(r*h)` for MetaSR, `round(r*h)` for ArbSR), so the same out_size can come from slightly
different scales (12 x 3.3 = 39.6: MetaSR makes 39 rows, ArbSR 40). By default the scale is out_size / LR
size per axis (what any out_size-only caller means); `scale=` passes the nominal factors the official code
would have seen, and must agree with out_size to within one pixel per axis.
"""

from __future__ import annotations

from collections.abc import Sequence

from eqbench.errors import EqbenchError
from eqbench.scales import parse_scale


def resolve_scale(in_hw: Sequence[int], out_size: Sequence[int], scale=None) -> tuple[float, float]:
    h, w = int(in_hw[0]), int(in_hw[1])
    H, W = int(out_size[0]), int(out_size[1])
    if scale is None:
        return H / h, W / w
    s = parse_scale(scale)
    if abs(H - h * s.h) >= 1 or abs(W - w * s.w) >= 1:
        raise EqbenchError(f"out_size {(H, W)} does not match scale {s.label()} for an input of {(h, w)}: "
                           f"expected about ({h * s.h:g}, {w * s.w:g}); pass a consistent scale or omit it")
    return float(s.h), float(s.w)
