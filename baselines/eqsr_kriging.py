"""EQSR's Neural Kriging upsampler (official `DSF` + `Invo_TransformerBlock`, neuralchen/EQSR@e10a258),
own implementation, plus a row-band decoder whose output equals the one-shot decoder.

Per HR query pixel p of a dense (H, W) grid (LIIF pixel-centre coordinates in [-1, 1]):
  q_feat(p)  = nearest LR feature (grid_sample nearest, align_corners=False: the official tie-breaking)
  rel(p)     = (p - centre of that LR pixel) * (w, h)          (x by LR width, y by LR height)
  h0         = ReLU(Conv1x1(cat[q_feat, sincos(rel)]))
  2 x KrigingBlock, each followed by ReLU; out = Conv1x1(ReLU(r + h0)) -> RGB
KrigingBlock: u = Conv1x1(LN(x)); x = x + Conv1x1(involution(u, K)); x = x + ECA(FFN(LN(x))).
  K = data kernel (3x3 conv -> ReLU -> 1x1 conv to 9 per group of 8 channels) times the distance kernel
  exp(-0.5 d2 / l^2) (d2 = squared LR-pixel distance between p and the LR centres picked by its 3x3 HR
  neighbours; zero-padded at the grid border, i.e. padded neighbours count as centre (0, 0): official).
Quirks kept for parity: ECA has no sigmoid and pools over the whole query grid, so a pixel depends on
every other queried pixel; the ECA kernel size follows the official rule (5 for 256 channels).
The involution is the unfold form (sum over the 9 offsets of kernel * shifted input, in kh-major order,
as the official CUDA kernel) written with shifted views so the 9x unfolded tensor never exists.

Order of operations (`official_order`, set by the owning model): False (default) computes the same
function faster: the head's 1x1 convolution factored (feature part once per LR pixel, then gathered;
encoding part once per HR row and column), the blocks channels-last (fused layer norms, 1x1 convolutions
as matrix products that switch layout in place, involution accumulated in place). True runs the official
order (NCHW, head on the concatenated query). Both are tested against the official fixture (<= 1.3e-6).

`kernel` selects the ablations of the EQSR paper, Table 2: "both" (NK), "data" (A), "distance" (B).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqbench import fastconv, native
from eqbench.costs import declare_flops, involution_flops

from .eqsr_afe import N_FREQ, sincos_encoding

GROUP_CHANNELS = 8  # official: channels sharing one involution kernel
KERNELS = ("both", "data", "distance")


def make_coord_1d(n: int) -> torch.Tensor:
    """Pixel-centre coordinates -1 + (2k+1)/n in float32, evaluated as the official make_coord does."""
    r = 1 / n
    return -1 + r + (2 * r) * torch.arange(n).float()


def hr_grid_xy(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(len(rows), len(cols), 2) grid in (x, y) order, as grid_sample wants."""
    return torch.stack(torch.meshgrid(cols, rows, indexing="xy"), -1)


@declare_flops(lambda u, kernel, dist=None, out=None: involution_flops(out.shape, 9))  # invisible to FlopCounter
def involution(u: torch.Tensor, kernel: torch.Tensor, dist: torch.Tensor | None = None) -> torch.Tensor:
    """u (B, C, H, W), kernel (B, G, 3, 3, H, W): channel c uses kernel[c // (C/G)]; zero padding 1.
    dist (B, 1, 3, 3, H, W), if given, multiplies the kernel first (the 'both' kernel: kernel * dist).

    On the CPU without autograd (float32) the compiled kernel (eqbench.native.eqb_involution) computes it
    in one pass with the same roundings: the kernel times dist, then the taps' products added in order."""
    b, c, h, w = u.shape
    g = kernel.shape[1]
    if fastconv.plain_inference(u, kernel, dist) and (kernels := native.lib()) is not None:
        u, kernel = u.contiguous(), kernel.contiguous()
        d = None if dist is None else dist.expand(b, 1, 3, 3, h, w).contiguous()
        out = torch.empty((b, c, h, w), dtype=u.dtype)
        n = max(1, min(torch.get_num_threads(), g))  # the groups split over torch's threads
        bounds = [g * i // n for i in range(n + 1)]

        def part(i: int) -> None:
            kbuf = torch.empty(9 * w, dtype=u.dtype)
            kernels.eqb_involution(u.data_ptr(), kernel.data_ptr(), None if d is None else d.data_ptr(),
                                   out.data_ptr(), b, c, g, h, w, bounds[i], bounds[i + 1], kbuf.data_ptr())

        native.run_parallel(part, list(range(n)))
        return out
    if dist is not None:
        kernel = kernel * dist
    up = F.pad(u, (1, 1, 1, 1)).view(b, g, c // g, h + 2, w + 2)
    k = kernel.reshape(b, g, 1, 9, h, w)
    out = k[:, :, :, 0] * up[:, :, :, 0:h, 0:w]
    for i in range(1, 9):  # out + k_i * u_i, in place: the same roundings as adding the products
        di, dj = divmod(i, 3)
        out.addcmul_(k[:, :, :, i], up[:, :, :, di:di + h, dj:dj + w])
    return out.reshape(b, c, h, w)


def conv1x1_from_cf(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution from a channels-first (B, C, H, W) tensor to a channels-last (B, H, W, C') one."""
    b, c, h, w = x.shape
    wgt = conv.weight.flatten(1)
    out = torch.baddbmm(conv.bias.expand(b, h * w, -1), x.view(b, c, h * w).mT, wgt.mT.expand(b, -1, -1))
    return out.view(b, h, w, -1)


def conv1x1_cf(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution of x (B, C, H, W) in either memory layout (a channels-last tensor, e.g. the
    permute of a (B, H, W, C) one, is read in place, not copied) to a channels-first (B, C', H, W) tensor:
    one batched matrix product W @ x."""
    b, c, h, w = x.shape
    wgt = conv.weight.flatten(1)
    return torch.baddbmm(conv.bias[:, None].expand(b, -1, h * w), wgt.expand(b, -1, -1),
                         x.flatten(2)).view(b, -1, h, w)


def linear_nhwc(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution applied to a channels-last (..., C) tensor: one matrix product."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def _fused_linear_ok(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """oneDNN's linear with a fused pointwise epilogue applies: CPU inference on ordinary float32 tensors
    (also while FLOPs are counted: the fused function declares its own)."""
    return fastconv.linear_pointwise_available() and fastconv.plain_inference(x, conv.weight, conv.bias)


@declare_flops(lambda x, conv, out: 2 * out.numel() * conv.in_channels)  # FlopCounter does not know the op
def _linear_gelu_fused(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, conv.weight.flatten(1), conv.bias, "gelu", [], "none")


def linear_gelu_nhwc(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """gelu(linear_nhwc(x, conv)) (exact erf GELU). On CPU inference one oneDNN primitive computes the
    product, bias and GELU together (the separate GELU pass over the 2x-wide FFN tensor was ~10% of the
    decoder); its values equal the two-step result bit for bit here (tests/unit/test_native.py checks)."""
    if _fused_linear_ok(x, conv):
        return _linear_gelu_fused(x, conv)
    return F.gelu(linear_nhwc(x, conv))


def channel_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    mu = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    return (x - mu) / torch.sqrt(var + 1e-5) * weight[:, None, None] + bias[:, None, None]


def eca_kernel_size(c: int) -> int:
    k = int(abs(math.log(c, 2) + 1) / 2)
    return k if k % 2 else k + 1


class KrigingHead(nn.Conv2d):
    """The decoder's first 1x1 convolution. On a tensor: the convolution. On (axes, r0, r1) from
    `NeuralKriging._axes` + `_head_terms`: the same products in factored form for HR rows [r0, r1),
    channels-last (B, hq, W, L), before the ReLU (a module call either way, so feature taps fire)."""

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return super().forward(x)
        ax, r0, r1 = x
        g = ax["g_feat"].index_select(1, ax["iy"][r0:r1]).index_select(2, ax["ix"])
        return g + ax["a_y"][r0:r1, None] + ax["a_x"]


class KrigingBlock(nn.Module):
    def __init__(self, dim: int, kernel: str = "both") -> None:
        super().__init__()
        self.kernel = kernel
        self.channels_last = False
        self.norm1_w, self.norm1_b = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.conv1 = nn.Conv2d(dim, dim, 1)
        if kernel != "distance":
            self.groups = dim // GROUP_CHANNELS
            self.kernel_reduce = nn.Conv2d(dim, dim // 4, 3, padding=1)
            self.kernel_expand = nn.Conv2d(dim // 4, 9 * self.groups, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2_w, self.norm2_b = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.fc1 = nn.Conv2d(dim, 2 * dim, 1)
        self.fc2 = nn.Conv2d(2 * dim, dim, 1)
        k = eca_kernel_size(dim)
        self.eca = nn.Parameter(torch.empty(1, 1, k).uniform_(-k ** -0.5, k ** -0.5))

    @property
    def row_dim(self) -> int:
        """The image-row dimension of this block's tensors: 2 for (B, C, H, W), 1 for (B, H, W, C)."""
        return 1 if self.channels_last else 2

    def pre_eca(self, x: torch.Tensor, dist: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x after the involution branch, FFN output before the channel weighting), in the block's layout."""
        if self.channels_last:
            return self._pre_eca_nhwc(x, dist)
        u = self.conv1(channel_norm(x, self.norm1_w, self.norm1_b))
        if self.kernel == "distance":
            k = dist
        else:
            b, _, h, w = u.shape
            k = self.kernel_expand(F.relu(self.kernel_reduce(u))).view(b, self.groups, 3, 3, h, w)
        x = x + self.conv2(involution(u, k, dist if self.kernel == "both" else None))
        return x, self.fc2(F.gelu(self.fc1(channel_norm(x, self.norm2_w, self.norm2_b))))

    def _pre_eca_nhwc(self, x: torch.Tensor, dist: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """`pre_eca` with x, f channels-last (B, H, W, C): the same operations, with fused layer norms and the
        1x1 convolutions as matrix products; the kernel branch and the involution run channels-first (their
        inner loops then run along image rows), switching layout inside the matrix products for free."""
        b, h, w, c = x.shape
        u = conv1x1_cf(self.conv1, F.layer_norm(x, (c,), self.norm1_w, self.norm1_b, 1e-5).permute(0, 3, 1, 2))
        if self.kernel == "distance":
            k = dist
        else:
            k = conv1x1_cf(self.kernel_expand, F.relu(self.kernel_reduce(u))).view(b, self.groups, 3, 3, h, w)
        x = x + conv1x1_from_cf(self.conv2, involution(u, k, dist if self.kernel == "both" else None))
        f = linear_nhwc(linear_gelu_nhwc(F.layer_norm(x, (c,), self.norm2_w, self.norm2_b, 1e-5), self.fc1),
                        self.fc2)
        return x, f

    def channel_weights(self, pooled: torch.Tensor) -> torch.Tensor:
        """ECA without sigmoid (official): pooled (B, C) -> (B, C, 1, 1) raw weights."""
        pad = (self.eca.shape[-1] - 1) // 2
        return F.conv1d(pooled.unsqueeze(1), self.eca, padding=pad).squeeze(1)[:, :, None, None]

    def forward(self, x: torch.Tensor, dist: torch.Tensor | None, weights: torch.Tensor | None = None):
        """x (B, C, H, W), or channels-last (B, H, W, C) when `channels_last` (set by the decoder);
        `weights` (B, C, 1, 1) as `channel_weights` returns them."""
        x, f = self.pre_eca(x, dist)
        if not self.channels_last:
            if weights is None:
                weights = self.channel_weights(F.adaptive_avg_pool2d(f, 1).flatten(1))
            return x + f * weights
        if weights is None:
            weights = self.channel_weights(f.mean(dim=(1, 2)))
        return torch.addcmul(x, f, weights.view(x.shape[0], 1, 1, -1))


class NeuralKriging(nn.Module):
    """feat (B, C, h, w) -> RGB on the dense (H, W) grid (in the backbone's normalised colour space)."""

    HALO = 2  # rows of context per side: each block has a 3x3 reach (kernel conv and involution)
    # band_rows=None (default) picks the decoding: one shot while one latent-width tensor of the whole grid
    # has at most ONE_SHOT_ELEMS elements (256 MiB in float32), else row bands of about BAND_ELEMS elements
    # per latent-width tensor, after two passes that collect the ECA statistics of the whole grid.
    ONE_SHOT_ELEMS = 2 ** 26
    BAND_ELEMS = 2 ** 24

    def __init__(self, in_dim: int, latent: int = 256, kernel: str = "both") -> None:
        super().__init__()
        self.sincos_arith = "native"  # set by the owning model (see eqsr_afe.sincos_encoding)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        self.head = KrigingHead(in_dim + 2 + 4 * N_FREQ, latent, 1)
        self.blocks = nn.ModuleList([KrigingBlock(latent, kernel), KrigingBlock(latent, kernel)])
        self.to_rgb = nn.Conv2d(latent, 3, 1)
        self.lengthscale = nn.Parameter(torch.tensor(3.0)) if kernel != "data" else None
        self.official_order = False

    @property
    def official_order(self) -> bool:
        """True: the official order of operations (NCHW, head on the concatenated query); False (default):
        factored head and channels-last blocks. Set by the owning model."""
        return not self.blocks[0].channels_last

    @official_order.setter
    def official_order(self, value: bool) -> None:
        for blk in self.blocks:
            blk.channels_last = not value

    def _axes(self, feat: torch.Tensor, out_size: tuple[int, int], window=None) -> dict:
        """Per-axis query data for the whole grid. Nearest sampling is separable: the LR centre picked
        for HR pixel (i, j) has x from column j alone and y from row i alone, so the relative-coordinate
        encodings (80 sin/cos terms) are evaluated once per column and once per row, then broadcast:
        the same values as evaluating them per pixel, at a fraction of the cost."""
        b, _, h, w = feat.shape
        dev, dt = feat.device, feat.dtype
        xs, ys = make_coord_1d(out_size[1]).to(dev, dt), make_coord_1d(out_size[0]).to(dev, dt)
        if window is not None:  # a sub-grid of the full frame (official training queries)
            top, left, height, width = window
            xs, ys = xs[left:left + width], ys[top:top + height]
        lr_xy = hr_grid_xy(make_coord_1d(h), make_coord_1d(w)).to(dev, dt).permute(2, 0, 1).unsqueeze(0)
        # x of the picked centre along row 0, y along column 0 (grid_sample for the official tie rule)
        qx = F.grid_sample(lr_xy, hr_grid_xy(ys[:1], xs)[None], mode="nearest", align_corners=False)[0, 0]
        qy = F.grid_sample(lr_xy, hr_grid_xy(ys, xs[:1])[None], mode="nearest", align_corners=False)[0, 1]
        rel_x, rel_y = (xs - qx[0]) * w, (ys - qy[:, 0]) * h
        # the picked LR column of each HR column and row of each HR row (exact: centres are distinct)
        ix = torch.bucketize(qx[0], make_coord_1d(w).to(dev, dt))
        iy = torch.bucketize(qy[:, 0], make_coord_1d(h).to(dev, dt))
        enc_x = sincos_encoding(rel_x.view(1, 1, 1, -1), arith=self.sincos_arith).expand(b, -1, -1, -1)
        enc_y = sincos_encoding(rel_y.view(1, 1, -1, 1), arith=self.sincos_arith).expand(b, -1, -1, -1)
        return {"xs": xs, "ys": ys, "qx": qx[0], "qy": qy[:, 0], "enc_x": enc_x, "enc_y": enc_y,
                "lr_wh": (w, h), "ix": ix, "iy": iy}

    def _inputs(self, feat: torch.Tensor, ax: dict, r0: int, r1: int):
        """Head output and distance kernel for HR rows [r0, r1), in the layout of the decoding order."""
        if not self.official_order:  # the factored head (KrigingHead), channels-last (B, hq, W, L)
            return F.relu(self.head((ax, r0, r1))), self._distance(feat, ax, r0, r1)
        b = feat.shape[0]
        hq, wq = r1 - r0, ax["xs"].shape[0]
        xy = hr_grid_xy(ax["ys"][r0:r1], ax["xs"]).unsqueeze(0).expand(b, -1, -1, -1)
        q_feat = F.grid_sample(feat, xy, mode="nearest", align_corners=False)
        ex, ey = ax["enc_x"].expand(-1, -1, hq, -1), ax["enc_y"][:, :, r0:r1].expand(-1, -1, -1, wq)
        enc = torch.stack((ex, ey), 2).reshape(b, -1, hq, wq)  # official order [rx, ry, sin_0 rx, sin_0 ry..]
        h0 = F.relu(self.head(torch.cat((q_feat, enc), 1)))
        return h0, self._distance(feat, ax, r0, r1)

    def _distance(self, feat: torch.Tensor, ax: dict, r0: int, r1: int) -> torch.Tensor | None:
        """exp(-d2 / 2 l^2) for the 3x3 neighbours of each HR pixel of rows [r0, r1): (B, 1, 3, 3, hq, W)."""
        if self.lengthscale is None:
            return None
        b = feat.shape[0]
        hq, wq = r1 - r0, ax["xs"].shape[0]
        p_xy = hr_grid_xy(ax["ys"][r0:r1], ax["xs"]).permute(2, 0, 1).unsqueeze(0).expand(b, -1, -1, -1)
        q_xy = hr_grid_xy(ax["qy"][r0:r1], ax["qx"]).permute(2, 0, 1).unsqueeze(0).expand(b, -1, -1, -1)
        wh = torch.tensor(ax["lr_wh"], dtype=feat.dtype, device=feat.device).view(1, 2, 1, 1, 1)
        nbr = F.unfold(q_xy, 3, padding=1).view(b, 2, 9, hq, wq)  # zero padding at the grid border
        d2 = (((nbr - p_xy.unsqueeze(2)) * wh) ** 2).sum(1, keepdim=True)
        return torch.exp(d2.view(b, 1, 3, 3, hq, wq) / self.lengthscale ** 2 * -0.5)

    def _head_terms(self, feat: torch.Tensor, ax: dict) -> dict:
        """The head's 1x1 convolution, factored (default order): its feature part acts on the LR features
        once per LR pixel (then gathered by the nearest-pixel index), its encoding part once per HR column
        (x terms, with the bias) and once per HR row (y terms): the same products, h*w + W + H of them
        instead of H*W."""
        c = feat.shape[1]
        wgt = self.head.weight.flatten(1)
        w_feat, w_enc = wgt[:, :c], wgt[:, c:]
        enc_x, enc_y = ax["enc_x"][0, :, 0, :].t(), ax["enc_y"][0, :, :, 0].t()  # (W, E), (H, E)
        return {"g_feat": F.linear(feat.permute(0, 2, 3, 1), w_feat),  # (B, h, w, L)
                "a_x": F.linear(enc_x, w_enc[:, 0::2], self.head.bias),  # (W, L)
                "a_y": F.linear(enc_y, w_enc[:, 1::2])}  # (H, L)

    def _rgb(self, r: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """to_rgb(ReLU(r + h0)) as (B, 3, H, W)."""
        if self.official_order:
            return self.to_rgb(F.relu(r + h0))
        return linear_nhwc(F.relu(r + h0), self.to_rgb).permute(0, 3, 1, 2).contiguous()

    def forward(self, feat: torch.Tensor, out_size: tuple[int, int], band_rows: int | None = None,
                window: tuple[int, int, int, int] | None = None):
        """RGB on the (H, W) = out_size grid, or on `window` = (top, left, height, width) of it: then the
        window is the query grid (its edges are grid borders, ECA pools over it), as in official training."""
        ax = self._axes(feat, out_size, window)
        if not self.official_order:
            ax.update(self._head_terms(feat, ax))
        if window is not None:
            out_size = (window[2], window[3])
        if band_rows is None:
            band_rows = self.auto_band_rows(out_size)
        if band_rows is None or band_rows >= out_size[0]:
            h0, dist = self._inputs(feat, ax, 0, out_size[0])
            r = F.relu(self.blocks[0](h0, dist))
            r = F.relu(self.blocks[1](r, dist))
            return self._rgb(r, h0)
        return self._banded(feat, ax, out_size, band_rows)

    def auto_band_rows(self, out_size: tuple[int, int]) -> int | None:
        """None (one shot) for grids up to ONE_SHOT_ELEMS per latent-width tensor, else the band height."""
        H, W = out_size
        latent = self.to_rgb.in_channels
        if H * W * latent <= self.ONE_SHOT_ELEMS:
            return None
        return max(1, self.BAND_ELEMS // (W * latent))

    def _banded(self, feat: torch.Tensor, ax: dict, out_size: tuple[int, int], band_rows: int):
        """Three passes over row bands: ECA statistics of block 1, of block 2, then the output.
        Equal to the one-shot result up to the summation order of the pooled means."""
        H, W = out_size
        bands = [(a, min(a + band_rows, H)) for a in range(0, H, band_rows)]
        weights: list[torch.Tensor] = []
        for depth in (0, 1):  # pooled FFN statistics of block `depth`, given the weights found so far
            total = None
            for a, z in bands:
                x, lo, hi, dist = self._band_head(feat, ax, out_size, a, z)
                for i in range(depth):
                    x = F.relu(self.blocks[i](x, dist, weights[i]))
                _, f = self.blocks[depth].pre_eca(x, dist)
                rd = self.blocks[depth].row_dim
                s = f.narrow(rd, lo, hi - lo).sum(dim=(rd, rd + 1), dtype=torch.float64)
                total = s if total is None else total + s
            weights.append(self.blocks[depth].channel_weights((total / (H * W)).to(feat.dtype)))
        out = []
        for a, z in bands:
            h0, lo, hi, dist = self._band_head(feat, ax, out_size, a, z)
            r = F.relu(self.blocks[0](h0, dist, weights[0]))
            r = F.relu(self.blocks[1](r, dist, weights[1]))
            out.append(self._rgb(r, h0)[:, :, lo:hi])
        return torch.cat(out, 2)

    def _band_head(self, feat, ax, out_size, a, z):
        r0, r1 = max(0, a - self.HALO), min(out_size[0], z + self.HALO)
        h0, dist = self._inputs(feat, ax, r0, r1)
        return h0, a - r0, z - r0, dist
