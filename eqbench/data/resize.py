"""MATLAB-compatible bicubic `imresize` in torch: batched, device-agnostic, float64 by default.

Semantics follow MATLAB's imresize.m (see ../shared/spec/protocol.md):
  * cubic kernel a = -0.5; when downscaling by s < 1 the kernel is widened by 1/s (antialiasing);
  * output pixel x (1-based) maps to u = x/s + 0.5(1 - 1/s) in the input;
  * out-of-range taps are mirrored (symmetric boundary), weights normalised per output pixel;
  * with a scale the output size is ceil(s * in) and the kernel scale is s itself; with a target
    size the kernel scale is out/in per axis;
  * axes are processed in order of increasing scale (MATLAB's dimension order; a stable sort, so the
    height goes first when both scales are equal);
  * `uint8=True` emulates MATLAB on uint8 images: values are rounded half away from zero and clipped
    to [0, 255] after each 1-D pass. Input must then hold integers in [0, 255].

Each 1-D pass is a banded weight matrix applied block-wise: the output is cut into blocks of a few
dozen pixels, each block's input window (mirrored taps included) is gathered once, and one batched
matmul of (blocks, b, K) weights with the windows does the pass. That is the dense (out x in) matmul
(`weight_matrix`) without its zeros: ~K instead of `in` multiply-adds per output, the same sums up to
float64 summation order (<1e-13), and still one BLAS call on CPU and GPU alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from .. import native
from ..errors import EqbenchError


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def contributions(in_len: int, out_len: int, scale: float, antialias: bool = True):
    """MATLAB's `contributions`: 0-based tap indices (out_len, P) and weights (out_len, P), float64."""
    pos, w = _taps(in_len, out_len, scale, antialias)
    return _mirror(pos, in_len), w


def _mirror(pos: np.ndarray, in_len: int) -> np.ndarray:
    # MATLAB's symmetric boundary: position -1 reads pixel 0, position in_len reads in_len - 1, ...
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    return aux[np.mod(pos, 2 * in_len)]


def _taps(in_len: int, out_len: int, scale: float, antialias: bool):
    """Unmirrored 0-based tap positions (out_len, P), int64, and their normalised weights."""
    kernel_width = 4.0
    shrink = antialias and scale < 1
    if shrink:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    d = u[:, None] - ind
    w = scale * _cubic(scale * d) if shrink else _cubic(d)
    w = w / w.sum(axis=1, keepdims=True)
    return ind.astype(np.int64) - 1, w


@lru_cache(maxsize=256)
def _blocks_np(in_len: int, out_len: int, scale: float, antialias: bool, block: int):
    """Block-banded form of one pass: source rows (nb * K,) and weights (nb, block, K).

    Output pixels [j*block, (j+1)*block) read the K input positions from lo_j on (mirrored into the
    image); weight [j, r, k] multiplies position lo_j + k for output j*block + r. Taps whose weight is
    exactly zero (the first/last of MATLAB's ceil(width) + 2 are for integer scales) are left out.
    """
    pos, w = _taps(in_len, out_len, scale, antialias)
    nz = w != 0
    first = np.where(nz.any(1), nz.argmax(1), 0)
    last = np.where(nz.any(1), w.shape[1] - 1 - nz[:, ::-1].argmax(1), 0)
    nb = -(-out_len // block)
    rows = np.arange(out_len)
    start = np.full(nb * block, pos[-1, first[-1]])
    stop = np.full(nb * block, pos[-1, last[-1]] + 1)
    start[:out_len], stop[:out_len] = pos[rows, first], pos[rows, last] + 1
    lo = start.reshape(nb, block).min(1)
    k = int((stop.reshape(nb, block).max(1) - lo).max())
    wb = np.zeros((nb, block, k), dtype=np.float64)
    r, p = np.nonzero(nz)
    wb[r // block, r % block, pos[r, p] - lo[r // block]] = w[r, p]
    src = _mirror(lo[:, None] + np.arange(k)[None, :], in_len).reshape(-1)
    return src, wb


@lru_cache(maxsize=256)
def _interior_np(in_len: int, out_len: int, scale: float, antialias: bool, block: int):
    """Per block: its first input position, and whether its window lies inside the image unmirrored."""
    src, wb = _blocks_np(in_len, out_len, scale, antialias, block)
    win = src.reshape(wb.shape[0], wb.shape[2])
    lo = win[:, 0]
    return lo.tolist(), np.all(win == lo[:, None] + np.arange(wb.shape[2]), axis=1).tolist()


def _block_size(scale: float) -> int:
    # Window length K ~ block/scale + 4/min(scale, 1): small blocks waste fewer multiply-adds, large
    # ones make better matmuls. These sizes were the fastest on Set14-sized images (1 CPU thread).
    return 32 if scale >= 1 else 16


@lru_cache(maxsize=256)
def _sparse_cpu(in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """The (out_len, in_len) pass matrix as a coalesced sparse COO tensor (mirrored taps summed)."""
    ind, w = contributions(in_len, out_len, scale, antialias)
    rows = np.repeat(np.arange(out_len), ind.shape[1])
    keep = w.ravel() != 0
    idx = torch.from_numpy(np.stack([rows[keep], ind.ravel()[keep]]))
    vals = torch.from_numpy(w.ravel()[keep])
    return torch.sparse_coo_tensor(idx, vals, (out_len, in_len), check_invariants=True).coalesce()


def _fast_cpu(x: torch.Tensor) -> bool:
    # The sparse and out= kernels below have no autograd; GPUs take the batched-matmul path.
    return x.device.type == "cpu" and not (torch.is_grad_enabled() and x.requires_grad)


def _sparse_rows(x: torch.Tensor, in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    # Sparse x dense on CPU adds each tap's weighted input row to its output row: exactly the taps'
    # multiply-adds, on whole contiguous rows (2-4x faster here than the blocked matmul).
    m = _sparse_cpu(in_len, out_len, float(scale), antialias).to(x.dtype)
    xs = x.reshape(-1, in_len, x.shape[-1])
    y = torch.empty((xs.shape[0], out_len, x.shape[-1]), dtype=x.dtype)
    for i in range(xs.shape[0]):
        torch.mm(m, xs[i], out=y[i])
    return y.reshape(*x.shape[:-2], out_len, x.shape[-1])


@lru_cache(maxsize=256)
def _taps_native(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[torch.Tensor, ...]:
    """`contributions` for the compiled passes: taps and weights (out_len, P) as contiguous int64/float64
    tensors without the taps whose weight is zero for every output (MATLAB drops them too); then, for the
    column pass, each output's first input, whether its taps are a contiguous run inside the image, and
    its weights zero-padded to a multiple of 4 taps."""
    ind, w = contributions(in_len, out_len, scale, antialias)
    keep = np.any(w != 0, axis=0)
    ind, w = np.ascontiguousarray(ind[:, keep], dtype=np.int64), np.ascontiguousarray(w[:, keep])
    p = w.shape[1]
    p4 = -(-p // 4) * 4
    lo = ind[:, 0].copy()
    contiguous = np.all(ind == lo[:, None] + np.arange(p), axis=1) & (lo + p4 <= in_len)
    wpad = np.zeros((out_len, p4))
    wpad[:, :p] = w
    return (torch.from_numpy(ind), torch.from_numpy(w), torch.from_numpy(lo),
            torch.from_numpy(contiguous.astype(np.int8)), torch.from_numpy(wpad))


def _native_pass(x: torch.Tensor, in_len: int, out_len: int, scale: float, antialias: bool, rows: bool,
                 round_clip: bool) -> torch.Tensor | None:
    """The pass by the compiled kernel (eqbench.native) for a float64 CPU tensor without autograd; None
    where that does not apply (then the torch code runs)."""
    if (x.dtype != torch.float64 or not _fast_cpu(x) or not native.plain_cpu(x)
            or (kernels := native.lib()) is None):
        return None
    ind, w, lo, contiguous, wpad = _taps_native(in_len, out_len, float(scale), antialias)
    x = x.contiguous()
    if rows:
        n, width = x.numel() // (in_len * x.shape[-1]), x.shape[-1]
        y = torch.empty((*x.shape[:-2], out_len, width), dtype=torch.float64)
        kernels.eqb_resample_rows(x.data_ptr(), y.data_ptr(), n, in_len, out_len, width, ind.data_ptr(),
                                  w.data_ptr(), w.shape[1], int(round_clip))
    else:
        y = torch.empty((*x.shape[:-1], out_len), dtype=torch.float64)
        kernels.eqb_resample_cols(x.data_ptr(), y.data_ptr(), x.numel() // in_len, in_len, out_len,
                                  ind.data_ptr(), w.data_ptr(), w.shape[1], lo.data_ptr(), contiguous.data_ptr(),
                                  wpad.data_ptr(), wpad.shape[1], int(round_clip))
    return y


def _pass_rows(x: torch.Tensor, in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """One 1-D pass along axis -2 of x (..., in_len, W) -> (..., out_len, W)."""
    if _fast_cpu(x):
        return _sparse_rows(x, in_len, out_len, scale, antialias)
    src, wb = _blocks_np(in_len, out_len, float(scale), antialias, _block_size(scale))
    nb, _, k = wb.shape
    src_t = torch.from_numpy(src).to(x.device)
    wb_t = torch.from_numpy(wb).to(device=x.device, dtype=x.dtype)
    windows = x.index_select(-2, src_t).unflatten(-2, (nb, k))
    return torch.matmul(wb_t, windows).flatten(-3, -2)[..., :out_len, :]


def _pass_cols(x: torch.Tensor, in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """One 1-D pass along the last axis of x (..., in_len) -> (..., out_len)."""
    if torch.is_grad_enabled() and x.requires_grad:  # matmul with out= has no autograd
        return _pass_rows(x.transpose(-1, -2), in_len, out_len, scale, antialias).transpose(-1, -2).contiguous()
    block = _block_size(scale)
    src, wb = _blocks_np(in_len, out_len, float(scale), antialias, block)
    lo, inside = _interior_np(in_len, out_len, float(scale), antialias, block)
    k = wb.shape[2]
    # Each block reads a column slice of the row-major image in place (only the mirrored border blocks
    # are gathered) and writes its slice of the output: no transposed copies of the image.
    rows = x.contiguous().reshape(-1, in_len)
    wt = torch.from_numpy(wb).to(device=x.device, dtype=x.dtype).transpose(1, 2)
    src_t = torch.from_numpy(src).to(x.device)
    y = torch.empty((rows.shape[0], out_len), dtype=x.dtype, device=x.device)
    for j in range(wb.shape[0]):
        a, b = j * block, min(out_len, (j + 1) * block)
        win = rows[:, lo[j] : lo[j] + k] if inside[j] else rows.index_select(1, src_t[j * k : (j + 1) * k])
        torch.mm(win, wt[j, :, : b - a], out=y[:, a:b])
    return y.reshape(*x.shape[:-1], out_len)


@lru_cache(maxsize=256)
def _matrix_np(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    ind, w = contributions(in_len, out_len, scale, antialias)
    m = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.repeat(np.arange(out_len), ind.shape[1])
    np.add.at(m, (rows, ind.ravel()), w.ravel())
    return m


def weight_matrix(in_len: int, out_len: int, scale: float, *, antialias: bool = True,
                  dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """The dense (out_len, in_len) matrix of one 1-D MATLAB bicubic pass."""
    return torch.from_numpy(_matrix_np(in_len, out_len, float(scale), antialias)).to(device=device, dtype=dtype)


def _round_clip(x: torch.Tensor) -> torch.Tensor:
    # MATLAB's uint8 cast: round half away from zero, then saturate. Values below 0 saturate to 0
    # either way, so floor(x + 0.5) is exact here (torch.round would round half to even).
    return torch.floor(x + 0.5).clamp_(0, 255)


def output_size_for(in_hw: Sequence[int], scale: float | Sequence[float]) -> tuple[int, int]:
    sh, sw = (scale, scale) if isinstance(scale, (int, float)) else scale
    return int(math.ceil(sh * in_hw[0])), int(math.ceil(sw * in_hw[1]))


def imresize(x: torch.Tensor, scale: float | Sequence[float] | None = None,
             size: Sequence[int] | None = None, *, antialias: bool = True, uint8: bool = False) -> torch.Tensor:
    """Resize the last two axes of `x` (..., H, W) like MATLAB `imresize(x, scale|size, 'bicubic')`.

    Give exactly one of `scale` (a factor or (sh, sw): output ceil(s*in), kernel scale s) or
    `size` ((H, W): kernel scale out/in). Computes in x's floating dtype (use float64 for evaluation);
    integer tensors are converted to float64. `uint8=True` rounds and clips after each pass.
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale= or size=")
    if x.dim() < 2:
        raise ValueError(f"imresize needs a tensor with at least 2 dims (..., H, W), got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.to(torch.float64)
    in_h, in_w = x.shape[-2], x.shape[-1]
    if scale is not None:
        sh, sw = (float(scale), float(scale)) if isinstance(scale, (int, float)) else map(float, scale)
        for s in (sh, sw):
            if not (s > 0 and math.isfinite(s)):
                raise EqbenchError(f"imresize scale must be positive and finite, got {scale!r}")
        out_h, out_w = output_size_for((in_h, in_w), (sh, sw))
    else:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h < 1 or out_w < 1:
            raise EqbenchError(f"imresize target size must be positive, got {tuple(size)!r}")
        sh, sw = out_h / in_h, out_w / in_w
    # MATLAB sorts the axes by scale (stable): the stronger shrink goes first.
    order = (0, 1) if sh <= sw else (1, 0)
    y = x
    for axis in order:
        in_len, out_len, s = (in_h, out_h, sh) if axis == 0 else (in_w, out_w, sw)
        if out_len == in_len and s == 1.0:
            continue
        fast = _native_pass(y, in_len, out_len, s, antialias, axis == 0, uint8)  # rounding fused
        if fast is not None:
            y = fast
            continue
        y = (_pass_rows if axis == 0 else _pass_cols)(y, in_len, out_len, s, antialias)
        if uint8:
            y = _round_clip(y)
    return y
