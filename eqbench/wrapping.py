"""`eqbench.wrap`: any super-resolution `nn.Module` as an `SRMethod`, through the call convention it already has.

    import eqbench
    method = eqbench.wrap(net, style="coord-cell", taps=("imnet.layers.1",), name="mynet")
    sr = method.upsample(lr, (H, W))     # lr (N, 3, h, w) in [0, 1] -> (N, 3, H, W) in [0, 1]

Styles and their exact tensor conventions (every tensor on the module's device, in its dtype; a module
without parameters is called in float64):

  * "out_size":   y = module(x, (H, W)) -> (N, 3, H, W).
  * "scale":      y = module(x, s) -> (N, 3, H, W) as MetaSR / ArbSR-style code. s = H / h, a Python float
                  (scale_type="float", the default; an asymmetric request is refused) or the pair
                  (H / h, W / w) (scale_type="pair"). The output size must be the protocol's (H, W):
                  a model that rounds differently is an error, never resized.
  * "coord-cell": y = module(x, coord, cell) -> (N, Q, 3), LIIF / LTE-style. coord (N, Q, 2): HR pixel
                  centres in [-1, 1] ordered (row, col) (LIIF's make_coord; coord_order="xy" swaps both
                  coord and cell); cell (N, Q, 2) = (2 / H, 2 / W) per query. Queried in chunks of at most
                  `chunk` queries (default 30000, LIIF's eval batch) so memory stays bounded; with
                  encode="gen_feat", query="query_rgb" the LR features are computed once per image and
                  each chunk calls module.query_rgb(coord, cell), as LIIF's batched_predict does.
                  cell=False calls module(x, coord). Also answers `query_points`, so it can be trained.
  * "fixed":      y = module(x) -> (N, 3, s*h, s*w) for the network's one integer `scale=s` (EDSR, RCAN x4,
                  ...). Any other scale is an error, never a silent resize.

Normalisation (every style): x = (lr - mean) / std and the result is y * std + mean, per channel when
mean / std are triples. Defaults: mean=0, std=1 (inputs in [0, 1]); coord-cell: mean=0.5, std=0.5
(LIIF's). For a network trained on [0, 255] pass std=1/255. Outputs are clamped to [0, 1] afterwards.

`taps` are module paths inside `module` (as in module.named_modules()) whose outputs CKA compares;
`analyze cka` refuses an adapter without taps. `name` is the method's name when used from Python (the
CLI names a plugin by its spec).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .errors import EqbenchError, unknown_name
from .method import SRMethod

STYLES = ("out_size", "scale", "coord-cell", "fixed")
_COMMON = {"mean": 0.0, "std": 1.0}
CONVENTIONS = {
    "out_size": dict(_COMMON),
    "scale": {**_COMMON, "scale_type": "float"},
    "coord-cell": {"mean": 0.5, "std": 0.5, "coord_order": "rc", "cell": True, "chunk": 30000, "encode": None,
                   "query": None},
    "fixed": {**_COMMON, "scale": None},
}


def wrap(module: nn.Module, style: str, taps: Sequence[str] = (), name: str | None = None,
         **conventions) -> SRMethod:
    """An SRMethod calling `module` with the given call convention (see the module docstring)."""
    if not isinstance(module, nn.Module):
        raise EqbenchError(f"eqbench.wrap needs a torch.nn.Module, got {type(module).__name__}")
    if style not in STYLES:
        raise unknown_name("wrap style", style, STYLES)
    allowed = CONVENTIONS[style]
    for k in conventions:
        if k not in allowed:
            raise unknown_name(f"convention of style {style!r}:", k, allowed)
    conv = {**allowed, **conventions}
    if isinstance(taps, str):
        taps = (taps,)
    known = dict(module.named_modules())
    for t in taps:
        if t not in known or not t:
            names = ", ".join(n for n in list(known)[1:12])
            raise EqbenchError(f"eqbench.wrap: tap {t!r} is not a submodule of {type(module).__name__}; known: "
                               f"{names or '(none)'}")
    cls = {"out_size": OutSizeAdapter, "scale": ScaleAdapter, "coord-cell": CoordCellAdapter,
           "fixed": FixedAdapter}[style]
    return cls(module, tuple(taps), name or type(module).__name__.lower(), conv)


class Adapter(SRMethod):
    """Common part: the wrapped module at `net`, its taps, normalisation."""

    style = ""

    def __init__(self, module: nn.Module, taps: tuple[str, ...], name: str, conv: dict) -> None:
        super().__init__()
        self.net = module
        self.method_name = name
        self.feature_taps = tuple(f"net.{t}" for t in taps)
        self.conventions = dict(conv)
        self._mean, self._std = conv["mean"], conv["std"]

    def _stat(self, v, ref: torch.Tensor):
        t = torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
        return t.view(1, -1, 1, 1) if t.dim() == 1 else t

    def normalise(self, lr: torch.Tensor) -> torch.Tensor:
        return (lr - self._stat(self._mean, lr)) / self._stat(self._std, lr)

    def denormalise(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._stat(self._std, y) + self._stat(self._mean, y)

    def _checked(self, y, want: tuple[int, ...], call: str) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise EqbenchError(f"{self.method_name} (wrap style {self.style!r}): {call} returned "
                               f"{type(y).__name__}, not a tensor")
        if tuple(y.shape) != tuple(want):
            raise EqbenchError(f"{self.method_name} (wrap style {self.style!r}): {call} returned shape "
                               f"{tuple(y.shape)}, expected {tuple(want)}")
        return y

    def load_official(self, path) -> Adapter:
        """`--weights` for an adapter: a state_dict of the wrapped module (.pth/.pt), also nested as LIIF
        ({'model': {'sd': ...}}), BasicSR ({'params': ...}) or {'state_dict': ...} save it."""
        from .checkpoint import load_state_dict_strict, torch_load_safe

        sd = torch_load_safe(path)
        for key in ("model", "sd", "params_ema", "params", "state_dict"):
            if isinstance(sd, dict) and isinstance(sd.get(key), dict):
                sd = sd[key]
        load_state_dict_strict(self.net, sd, str(path))
        return self

    def extra_repr(self) -> str:
        return f"style={self.style!r}, conventions={self.conventions}"


class OutSizeAdapter(Adapter):
    style = "out_size"

    def _upsample(self, lr, out_size, **kwargs):
        y = self.net(self.normalise(lr), out_size)
        return self.denormalise(self._checked(y, (lr.shape[0], 3, *out_size), f"forward(x, {out_size})"))


class ScaleAdapter(Adapter):
    style = "scale"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        if self.conventions["scale_type"] not in ("float", "pair"):
            raise EqbenchError(f"eqbench.wrap: scale_type must be 'float' or 'pair', got "
                               f"{self.conventions['scale_type']!r}")

    def _upsample(self, lr, out_size, scale=None, **kwargs):
        (h, w), (H, W) = lr.shape[-2:], out_size
        sh, sw = (H / h, W / w) if scale is None else _pair(scale)
        if self.conventions["scale_type"] == "float":
            if abs(W - w * sh) >= 1:
                raise EqbenchError(f"{self.method_name} takes one float scale (wrap scale_type='float'), but "
                                   f"{(h, w)} -> {(H, W)} is asymmetric (x{sh:g} x x{sw:g}); evaluate symmetric "
                                   "scales, or wrap with scale_type='pair' if forward(x, (sh, sw)) works")
            s = sh
        else:
            s = (sh, sw)
        y = self.net(self.normalise(lr), s)
        if isinstance(y, torch.Tensor) and y.dim() == 4 and tuple(y.shape[-2:]) != (H, W):
            raise EqbenchError(f"{self.method_name}: forward(x, {s}) made {tuple(y.shape[-2:])} from {(h, w)}, "
                               f"but the protocol's output size is {(H, W)}; the model must produce "
                               "round(scale * size) per axis (eqbench never resizes an output)")
        return self.denormalise(self._checked(y, (lr.shape[0], 3, H, W), f"forward(x, {s})"))


def _pair(scale) -> tuple[float, float]:
    from .scales import parse_scale

    s = parse_scale(scale)
    return float(s.h), float(s.w)


class FixedAdapter(Adapter):
    style = "fixed"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        s = self.conventions["scale"]
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise EqbenchError(f"eqbench.wrap(style='fixed') needs the network's integer scale, e.g. scale=4; "
                               f"got scale={s!r}")

    def _upsample(self, lr, out_size, **kwargs):
        s, (h, w) = self.conventions["scale"], lr.shape[-2:]
        if tuple(out_size) != (h * s, w * s):
            raise EqbenchError(f"{self.method_name} is a fixed x{s} network: {(h, w)} -> {tuple(out_size)} "
                               f"(x{out_size[0] / h:g} x x{out_size[1] / w:g}) is not its scale; evaluate it at "
                               f"--scales {s} (eqbench never resizes an output)")
        y = self.net(self.normalise(lr))
        return self.denormalise(self._checked(y, (lr.shape[0], 3, h * s, w * s), "forward(x)"))


class CoordCellAdapter(Adapter):
    style = "coord-cell"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        c = self.conventions
        if c["coord_order"] not in ("rc", "xy"):
            raise EqbenchError(f"eqbench.wrap: coord_order must be 'rc' (row, col) or 'xy', got {c['coord_order']!r}")
        if isinstance(c["chunk"], bool) or not isinstance(c["chunk"], int) or c["chunk"] < 1:
            raise EqbenchError(f"eqbench.wrap: chunk must be a positive number of queries, got {c['chunk']!r}")
        if (c["encode"] is None) != (c["query"] is None):
            raise EqbenchError("eqbench.wrap: give both encode= and query= (e.g. 'gen_feat' and 'query_rgb') "
                               "or neither")
        for k in ("encode", "query"):
            if c[k] is not None and not callable(getattr(self.net, c[k], None)):
                raise EqbenchError(f"eqbench.wrap: {type(self.net).__name__} has no method {c[k]!r} ({k}=)")

    def _query(self, x, coord, cell):
        c = self.conventions
        if c["coord_order"] == "xy":
            coord, cell = coord.flip(-1), cell.flip(-1)
        if c["query"] is not None:
            fn, args = getattr(self.net, c["query"]), (coord, cell) if c["cell"] else (coord,)
        else:
            fn, args = self.net, (x, coord, cell) if c["cell"] else (x, coord)
        return fn(*args)

    def _encode(self, x) -> None:
        if self.conventions["encode"] is not None:
            getattr(self.net, self.conventions["encode"])(x)

    def _upsample(self, lr, out_size, **kwargs):
        (n, H, W), chunk = (lr.shape[0], *out_size), self.conventions["chunk"]
        x = self.normalise(lr)
        self._encode(x)
        out = torch.empty(n, H * W, 3, dtype=lr.dtype, device=lr.device)
        cell = torch.tensor([2.0 / H, 2.0 / W], dtype=lr.dtype, device=lr.device)
        for start in range(0, H * W, chunk):
            idx = torch.arange(start, min(start + chunk, H * W), device=lr.device)
            coord = torch.stack([-1 + (2 * torch.div(idx, W, rounding_mode="floor") + 1).to(lr.dtype) / H,
                                 -1 + (2 * (idx % W) + 1).to(lr.dtype) / W], dim=-1)
            q = len(idx)
            coord, cells = coord.expand(n, q, 2), cell.expand(n, q, 2)
            y = self._query(x, coord, cells)
            out[:, start:start + q] = self._checked(y, (n, q, 3), f"forward(x, coord, cell) on {q} queries")
        return self.denormalise(out.view(n, H, W, 3).permute(0, 3, 1, 2))

    def query_points(self, lr, coord, cell):
        """LIIF's forward at the given coordinates, un-normalised, not clamped (for training); computed in
        the module's dtype, returned in the input's."""
        dt = self.eval_dtype
        x = self.normalise(lr.to(dt))
        self._encode(x)
        y = self._checked(self._query(x, coord.to(dt), cell.to(dt)), (*coord.shape[:-1], 3),
                          "forward(x, coord, cell)")
        y = y * torch.as_tensor(self._std, dtype=dt, device=y.device) + torch.as_tensor(
            self._mean, dtype=dt, device=y.device)
        return y.to(lr.dtype)
