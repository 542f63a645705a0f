"""Shared machinery of the implicit decoders (LIIF, LTE, LIIF-style MetaSR).

Coordinates follow LIIF's convention: pixel-centre coordinates in [-1, 1], last axis (row, col);
`grid_sample` gets them flipped to (x, y) with align_corners=False. The `cell` is the size of one HR
pixel in the same units, (2/H, 2/W).

Decoding is per query point, so chunked decoding is exactly equal to decoding everything at once:
`decode_grid` walks the HR grid in bands of rows and never materialises more than one chunk of query
coordinates or decoder activations. The nearest-pixel reads of the local ensemble go through
`NearestLookup`: the very pixels and values of the official grid_sample calls, gathered as rows.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from eqbench import fastconv

# Query points per decoder call: bounds peak memory; chunking is exact (outputs torch.equal). The official
# eval_bsize is 30000; with the fused MLP linears smaller chunks stay in cache: paper presets, 128x128,
# 1 thread, process CPU s for chunks 4096 / 8192 / 16384 / 30000: LTE x2 1.27 / 1.34 / 1.40 / 1.65,
# x4 4.08 / 4.32 / 4.65 / 5.82; LIIF x2 1.01 / 1.00 / 1.10 / 1.33, x4 3.18 / 3.19 / 3.57 / 4.79.
DEFAULT_CHUNK = 4096


def coord_seq(n: float, device=None) -> torch.Tensor:
    """Pixel-centre coordinates -1 + (2i + 1)/n, i < ceil(n), in float32.

    Evaluated as LIIF's make_coord does (r = 1/n; v0 + r + (2r) * arange) so that coordinates are
    bit-identical to the official code's (nearest-neighbour sampling at cell borders depends on it).
    """
    r = 1.0 / n
    return -1 + r + (2 * r) * torch.arange(n, device=device).float()


def grid_coords(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(len(rows) * len(cols), 2) coordinates (row, col), row-major."""
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).view(-1, 2)


class MLP(nn.Module):
    """Linear-ReLU stack; parameters named `layers.{0,2,4,...}` as in LIIF's mlp."""

    def __init__(self, in_dim: int, out_dim: int, hidden: list[int] | tuple[int, ...]) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU(inplace=True)]  # in place: same values, one buffer less
        mods.append(nn.Linear(dims[-1], out_dim))
        self.layers = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor, first_done: bool = False) -> torch.Tensor:
        """`first_done`: x already is the first Linear's output (a caller that computed it another way),
        so the rest of the stack runs; through __call__ either way, so forward hooks (feature taps) see it.
        In CPU inference each Linear runs as one oneDNN op with its bias and ReLU in the epilogue (the same
        values; F.linear first copies the bias into its output, then adds the product: 20% of LTE's
        decoder time went to that copy and the ReLU passes)."""
        layers = self.layers[1:] if first_done else self.layers
        if not fastconv.linear_relu_fused_ok(x, self.layers[0]) or has_hooks(self.layers):
            return layers(x)
        mods = list(layers)
        i = 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, nn.Linear):
                relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
                x = torch.ops.mkldnn._linear_pointwise(x, m.weight, m.bias, "relu" if relu else "none", [], "")
                i += 2 if relu else 1
            else:
                x = m(x)
                i += 1
        return x


def sample_nearest(feat: torch.Tensor, coord: torch.Tensor) -> torch.Tensor:
    """feat (B, C, h, w) at coord (B, Q, 2) (row, col) -> (B, Q, C), nearest, align_corners=False."""
    out = F.grid_sample(feat, coord.flip(-1).unsqueeze(1), mode="nearest", align_corners=False)
    return out[:, :, 0, :].permute(0, 2, 1)


def lr_centres(h: int, w: int, batch: int, device, dtype=torch.float32) -> torch.Tensor:
    """(B, 2, h, w) LR pixel-centre coordinates (LIIF's feat_coord)."""
    c = grid_coords(coord_seq(h, device), coord_seq(w, device)).to(dtype)
    return c.view(h, w, 2).permute(2, 0, 1).unsqueeze(0).expand(batch, 2, h, w)


class NearestLookup:
    """`sample_nearest` of a feature map and of its pixel centres, bit for bit, at a fraction of the cost.

    grid_sample reads C channels h*w apart for every query and returns them channel-major, which the
    decoder then transposes and concatenates. Here grid_sample runs once on a one-channel map of pixel
    numbers 1..h*w (exact in float32 up to 2**24; 0 = outside the image, i.e. grid_sample's zero padding),
    so it picks the very pixel it would have picked, and that pixel's row of a channels-last copy of the
    map (made once per image, row 0 all zeros) is copied whole. Without autograd, rows are gathered into
    one reused buffer with `spare` columns left for the decoder's other inputs (LIIF's relative coordinate
    and cell), written in place of a concatenation: a fresh block per call is tens of MB that the
    allocator maps and the kernel zero-fills every time (measured: 48 ms vs 10 ms for 30,000 rows of 580
    floats, 1 thread). With autograd (training) the rows are a fresh tensor and extras are concatenated.
    """

    def __init__(self, values: torch.Tensor, spare: int = 0) -> None:
        B, C, h, w = values.shape
        n = h * w
        self.hw, self.channels = (h, w), C
        # Past 2**24 the float32 pixel numbers would be inexact: fall back to sampling the map itself.
        self.exact = values.dtype == torch.float64 or (values.dtype == torch.float32 and n < 2**24)
        if not self.exact:
            self.values = values
            self.centres = lr_centres(h, w, B, values.device, values.dtype)
            return
        spare = 0 if torch.is_grad_enabled() and values.requires_grad else spare
        rows = values.permute(0, 2, 3, 1).reshape(B, n, C)
        self.table = F.pad(rows, (0, spare, 1, 0)).reshape(B * (n + 1), C + spare)
        centres = grid_coords(coord_seq(h, values.device), coord_seq(w, values.device)).to(values.dtype)
        self.centres = F.pad(centres, (0, 0, 1, 0))
        self.ids = torch.arange(1, n + 1, device=values.device, dtype=values.dtype).view(1, 1, h, w)
        self.ids = self.ids.expand(B, 1, h, w).contiguous()
        self.offset = (torch.arange(B, device=values.device) * (n + 1)).view(B, 1)
        self.buffer: torch.Tensor | None = None

    def pick(self, coord: torch.Tensor):
        """coord (B, Q, 2) -> (a handle for `gather`, the centres (B, Q, 2) of the nearest pixels)."""
        B, Q = coord.shape[:2]
        if not self.exact:
            return coord, sample_nearest(self.centres, coord)
        ids = self.ids if coord.dtype == self.ids.dtype else self.ids.to(coord.dtype)
        pick = F.grid_sample(ids, coord.flip(-1).unsqueeze(1), mode="nearest", align_corners=False)
        idx = pick.view(B, Q).long()
        return (idx + self.offset, (B, Q)), self.centres.index_select(0, idx.view(-1)).view(B, Q, 2)

    def gather(self, handle, *extra: torch.Tensor) -> torch.Tensor:
        """(B, Q, C + extras): the picked pixels' values followed by `extra` (B, Q, k) tensors.

        Without autograd the result lives in a buffer that the next call overwrites."""
        if not self.exact:
            return torch.cat([sample_nearest(self.values, handle), *extra], dim=-1)
        rows, (B, Q) = handle
        rows, C, width = rows.view(-1), self.channels, self.table.shape[1]
        if width == C + sum(e.shape[-1] for e in extra) and not (torch.is_grad_enabled() and self.table.requires_grad):
            n = rows.numel()
            if self.buffer is None or self.buffer.shape[0] < n:
                self.buffer = self.table.new_empty(n, width)
            out = torch.index_select(self.table, 0, rows, out=self.buffer[:n]).view(B, Q, width)
            at = C
            for e in extra:
                out[..., at:at + e.shape[-1]] = e
                at += e.shape[-1]
            return out
        vals = self.table.index_select(0, rows).view(B, Q, width)
        vals = vals if width == C else vals[..., :C]
        return torch.cat([vals, *extra], dim=-1) if extra else vals


def local_ensemble(lookup: NearestLookup, coord: torch.Tensor, cell: torch.Tensor, predict, *,
                   ensemble: bool = True) -> torch.Tensor:
    """LIIF's 4-neighbour local ensemble.

    For each shift (vy, vx) in {-1, 1}^2 the query moves by half an LR pixel (+1e-6), is clamped into
    the image, picks the nearest LR pixel, and `predict(take, rel_coord, rel_cell)` runs, where
    `take(*extra)` returns the picked values (B, Q, C) followed by `extra` (NearestLookup.gather);
    results are blended with the area of the diagonally opposite rectangle (bilinear-style weights).
    coord, cell: (B, Q, 2). Returns (B, Q, out).
    """
    h, w = lookup.hw
    shifts = [(-1, -1), (-1, 1), (1, -1), (1, 1)] if ensemble else [(0, 0)]
    ry, rx, eps = 1.0 / h, 1.0 / w, 1e-6 if ensemble else 0.0
    scale_hw = torch.tensor([h, w], dtype=coord.dtype, device=coord.device)
    rel_cell = cell * scale_hw
    preds, areas = [], []
    for vy, vx in shifts:
        c = coord.clone()
        c[..., 0] += vy * ry + eps
        c[..., 1] += vx * rx + eps
        c.clamp_(-1 + 1e-6, 1 - 1e-6)
        handle, q_coord = lookup.pick(c)
        rel = (coord - q_coord) * scale_hw
        preds.append(predict(functools.partial(lookup.gather, handle), rel, rel_cell))
        areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
    if not ensemble:
        return preds[0]
    total = torch.stack(areas).sum(0)
    areas[0], areas[3] = areas[3], areas[0]
    areas[1], areas[2] = areas[2], areas[1]
    out = 0
    for p, a in zip(preds, areas):
        out = out + p * (a / total).unsqueeze(-1)
    return out


def symmetric_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right by (n // m + 1) * m - n (always 1..m rows) with mirrored rows/cols, edge repeated.

    This is what LTE's test.py does for SwinIR encoders (`cat([x, flip(x)])[:n + pad]`).
    """
    h, w = x.shape[-2:]
    ph, pw = (h // multiple + 1) * multiple - h, (w // multiple + 1) * multiple - w
    x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : h + ph]
    return torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : w + pw]


def band_rows(out_size: tuple[int, int], chunk: int) -> range:
    H, W = out_size
    step = max(1, chunk // max(1, W))
    return range(0, H, step)


# ----------------------------------------------------------------------------------------------
# Encoders by name, and the base class of the implicit methods.

from eqbench.checkpoint import load_state_dict_strict, torch_load_safe  # noqa: E402
from eqbench.errors import EqbenchError, unknown_name  # noqa: E402
from eqbench.method import SRMethod  # noqa: E402

from .encoders import EDSR_PRESETS, RDN_PRESETS, EDSREncoder, RDNEncoder, has_hooks  # noqa: E402
from .swinir import SWINIR_PRESETS, SwinIREncoder  # noqa: E402

ENCODERS = ("edsr-baseline", "rdn", "swinir")


def make_encoder(name: str, size: str, args: dict | None = None) -> nn.Module:
    """An encoder by name; `args` overrides preset fields (e.g. {"n_resblocks": 2, "n_feats": 8})."""
    if name not in ENCODERS:
        raise unknown_name("encoder", name, ENCODERS)
    family = name.split("-")[0]
    key = f"{family}-tiny" if size == "tiny" else name
    cls, presets = {"edsr": (EDSREncoder, EDSR_PRESETS), "rdn": (RDNEncoder, RDN_PRESETS),
                    "swinir": (SwinIREncoder, SWINIR_PRESETS)}[family]
    kwargs = {**presets[key], **(args or {})}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise EqbenchError(f"bad encoder_args for {name!r}: {e}") from None


# Keys official LIIF/LTE checkpoints carry that these modules do not have: EDSR's MeanShift convs
# (never applied in forward) and SwinIR's recomputable buffers.
_IGNORED_SUFFIXES = (".relative_position_index", ".attn_mask")
_IGNORED_PREFIXES = ("encoder.sub_mean.", "encoder.add_mean.")


class ImplicitSR(SRMethod):
    """Base of LIIF-family methods: normalise, (pad), encode once, decode the HR grid in chunks."""

    official_name = ""  # the `model.name` of the official checkpoint spec

    def __init__(self, encoder: nn.Module, encoder_name: str, cell_clip: float | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_name = encoder_name
        # LTE's test.py clips the cell to that of x`cell_clip` beyond it (for every model it evaluates).
        self.cell_clip = cell_clip
        # SwinIR encoders are queried inside a mirrored-padded frame (LTE test.py --window 8).
        self.pad_multiple = encoder.window_size if isinstance(encoder, SwinIREncoder) else None

    # -- to implement --------------------------------------------------------------------------
    def gen_feat(self, inp: torch.Tensor) -> dict:
        raise NotImplementedError

    def query(self, state: dict, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB (B, Q, 3) at coord (B, Q, 2) with cell (B, Q, 2), in the frame of `state`."""
        raise NotImplementedError

    def cell_factor(self, scale_hw: tuple[float, float]) -> tuple[float, float] | None:
        if self.cell_clip is None:
            return None
        return tuple(max(s / self.cell_clip, 1.0) for s in scale_hw)

    # -- the contract --------------------------------------------------------------------------
    @property
    def feature_taps(self) -> tuple[str, ...]:
        return tuple(f"encoder.{t}" for t in self.encoder.taps) + self.decoder_taps

    decoder_taps: tuple[str, ...] = ()

    def _upsample(self, lr: torch.Tensor, out_size: tuple[int, int], chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
        if chunk < 1:
            raise EqbenchError(f"chunk must be a positive number of query points, got {chunk}")
        B, _, h, w = lr.shape
        H, W = out_size
        inp = (lr - 0.5) / 0.5
        if self.pad_multiple:
            inp = symmetric_pad(inp, self.pad_multiple)
            hp, wp = inp.shape[-2:]
            sh, sw = H / h, W / w
            rows, cols = coord_seq(sh * hp, lr.device)[:H], coord_seq(sw * wp, lr.device)[:W]
            cell_hw = (2 / hp / sh, 2 / wp / sw)
        else:
            rows, cols = coord_seq(H, lr.device), coord_seq(W, lr.device)
            cell_hw = (2 / H, 2 / W)
        cell = torch.tensor(cell_hw, dtype=torch.float32, device=lr.device)
        factor = self.cell_factor((H / h, W / w))
        if factor is not None:
            cell = cell * torch.tensor(factor, dtype=torch.float32, device=lr.device)
        state = self.gen_feat(inp)
        out = lr.new_empty(B, 3, H, W)
        for r0 in band_rows(out_size, chunk):
            r1 = min(H, r0 + max(1, chunk // W))
            coord = grid_coords(rows[r0:r1], cols).to(lr.dtype).unsqueeze(0).expand(B, -1, -1)
            pred = self.query(state, coord, cell.to(lr.dtype).expand(B, coord.shape[1], 2))
            out[:, :, r0:r1] = pred.view(B, r1 - r0, W, 3).permute(0, 3, 1, 2)
        return out * 0.5 + 0.5

    def query_points(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] space (unclamped) at arbitrary HR coordinates of the LR frame (for training)."""
        if self.pad_multiple:
            raise EqbenchError("query_points needs an encoder without window padding; use upsample for SwinIR")
        return self.query(self.gen_feat((lr - 0.5) / 0.5), coord, cell) * 0.5 + 0.5

    def load_official(self, path) -> ImplicitSR:
        ckpt = torch_load_safe(path)
        sd = ckpt
        if isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
            spec = ckpt["model"]
            name = spec.get("name")
            if name is not None and name != self.official_name:
                raise EqbenchError(f"{path} is an official {name!r} checkpoint, not {self.official_name!r}; "
                                   f"load it into the matching method")
            enc = (spec.get("args") or {}).get("encoder_spec", {}).get("name")
            if enc is not None and enc.split("-")[0] != self.encoder_name.split("-")[0]:
                raise EqbenchError(f"{path} was trained with encoder {enc!r}; create the method with "
                                   f"encoder={enc!r} (this one has {self.encoder_name!r})")
            sd = spec.get("sd")
        if not isinstance(sd, dict):
            raise EqbenchError(f"{path}: no state_dict found (expected LIIF/LTE's {{'model': {{'sd': ...}}}})")
        sd = {k: v for k, v in sd.items()
              if not k.startswith(_IGNORED_PREFIXES) and not k.endswith(_IGNORED_SUFFIXES)}
        load_state_dict_strict(self, sd, str(path))
        return self
