"""3x3 convolutions for CPU inference by Winograd's minimal filtering, F(4x4, 3x3) (Lavin & Gray, 2016).

A 3x3 convolution (stride 1, zero padding 1) computes each 4x4 output tile from its 6x6 input patch d as
A^T [(G g G^T) . (B^T d B)] A: per tile and channel pair 36 multiplications instead of 144, with the sums over
input channels done as 36 matrix products (torch.bmm). The transforms are compiled kernels
(eqbench/native.py: eqb_wino_in, eqb_wino_out, vectorised over channels-last channels); the weights are
transformed once (in float64) and cached until they change. Tiles go in bands of rows sized to stay in
cache. The transforms run on the calling thread and the matrix products on torch's threads: at 2 threads
that beat splitting the transforms over a second thread pool, whose threads met OpenMP's spinning workers
(64 -> 64 at 128x128, wall: 3.09 vs 3.89 ms; oneDNN direct 3.77 ms). Above MAX_THREADS the transforms would
be the bottleneck, and this was only measured on a 2-core machine, so there the direct convolution runs.

Speed (128x128, channels-last, against oneDNN's direct convolution, same process): 64 -> 64 channels at
1 thread 3.6 vs 6.6-6.9 ms CPU, at 2 threads 2.9 vs 3.5 ms wall; 512 -> 64 (RDN's widest) at 1 thread
25.5 vs 59-65 ms (tests/benchmarks/test_bench_conv.py). Precision: float32 Winograd rounds differently
from direct summation: max error against a float64 convolution 5e-5 vs 8e-6 for oneDNN on outputs of
magnitude ~7 (random weights at He scale); the paper-size networks stay within 1.8e-5 of the official
code in [0, 1] units (ArbRCAN's 400 convolutions the worst; tests/unit/test_fastconv.py, and
tests/reference on both paths).

When it applies (else F.conv2d runs, with its usual rounding):
  * CPU float32 plain tensors, input with channel stride 1 (channels-last, or a channel slice of a
    channels-last tensor), 3x3 kernel, stride 1, padding 1, dilation 1, groups 1,
    at least 16 input and 16 output channels (narrower ones are no faster);
  * no gradient is needed (no grad mode, or nothing requires grad): training keeps autograd's convolution;
  * no torch dispatch mode is active (FlopCounterMode counts the direct convolution's FLOPs, as the papers
    do; FakeTensorMode has no memory to hand to the kernels);
  * at most MAX_THREADS (2) torch threads (see above);
  * the compiled kernels are available and $EQBENCH_CONV is not "direct". EQBENCH_CONV=direct restores
    the official order of operations (oneDNN's direct convolution) everywhere; results record which ran.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from . import native

# B^T d B and A^T m A are fixed in the kernels; G transforms the weights here (float64, then float32).
_G = ((0.25, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))
MIN_CHANNELS = 16
MAX_THREADS = 2
# bytes of transformed input + products per band (36 x tiles x (C + Co) floats), on huge pages. Medians,
# alternating, 1 thread, 6/12/24/48 MB: 64->64 at 128x128 4.31/3.84/3.73/3.67 ms, at 256x256
# 18.5/16.8/16.1/17.4 ms; 512->64 at 128x128 28.2/25.7/25.5/27.7 ms
BAND_BYTES = 24 << 20

_SCRATCH = threading.local()
_HUGE = 2 << 20


def _scratch(n: int) -> torch.Tensor:
    """n float32 of this thread's transform buffer, kept between calls and grown as needed. On Linux it is
    aligned to 2 MiB and advised for transparent huge pages (the transforms write 36 streams far apart:
    with 4 KiB pages the input transform ran 15% slower and the matrix products 3%)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.numel() < n:
        size = -(-4 * n // _HUGE) * _HUGE
        with torch.inference_mode(False):  # a normal tensor: later calls outside inference mode write it too
            raw = torch.empty((size + _HUGE) // 4)
        off = (-raw.data_ptr() % _HUGE) // 4
        buf = raw[off:off + size // 4]
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                libc.madvise(buf.data_ptr(), size, 14)  # MADV_HUGEPAGE; a refusal changes nothing
            except (OSError, AttributeError):
                pass
        _SCRATCH.buf = buf
    return buf[:n]


# id(weight) -> ((data pointer, version), transformed); an entry goes when its weight is freed
_WEIGHTS: dict[int, tuple[tuple[int, int], torch.Tensor]] = {}


def algorithm() -> str:
    """What a 3x3 convolution in CPU inference uses now: 'winograd-f4x3' or 'direct'."""
    if (os.environ.get("EQBENCH_CONV", "").lower() == "direct" or not native.available()
            or torch.get_num_threads() > MAX_THREADS):
        return "direct"
    return "winograd-f4x3"


def _dispatch_mode_active() -> bool:
    """A torch dispatch mode (FLOP counting, fake tensors) or TorchScript tracing/scripting is active: the
    compiled kernels are invisible to them, so only torch ops may run."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        return _get_current_dispatch_mode() is not None
    except ImportError:  # pragma: no cover - a torch without it: be safe
        return True


def plain_inference(*tensors) -> bool:
    """CPU float32 inference on plain tensors (None skipped; not fake, meta or another device) that no
    autograd sees: where hand-fused kernels may replace torch ops. Callers whose kernels FLOP counting would
    not see also require `not _dispatch_mode_active()`; those that declare their FLOPs (eqbench.costs) need
    not."""
    ts = [t for t in tensors if t is not None]
    if not (native.plain_cpu(*ts) and all(t.dtype == torch.float32 for t in ts)):
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in ts))


def linear_pointwise_available() -> bool:
    """oneDNN's linear with a fused pointwise epilogue (torch.ops.mkldnn._linear_pointwise) exists here."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def linear_relu_fused_ok(x: torch.Tensor, layer: nn.Linear) -> bool:
    """Whether oneDNN's linear with a fused ReLU/bias epilogue may replace F.linear (+ ReLU): its values
    equal theirs bit for bit (tests/unit/test_fastconv.py); FLOP counting sees F.linear."""
    return (linear_pointwise_available() and plain_inference(x, layer.weight, layer.bias)
            and not _dispatch_mode_active())


def applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether `conv3x3(x, weight, bias)` takes the Winograd path (see the module docstring)."""
    if not (x.dim() == 4 and weight.dim() == 4 and weight.shape[-2:] == (3, 3)
            and weight.shape[0] >= MIN_CHANNELS and weight.shape[1] >= MIN_CHANNELS
            and x.shape[1] == weight.shape[1] and x.stride(1) == 1):
        return False
    return plain_inference(x, weight, bias) and algorithm() != "direct" and not _dispatch_mode_active()


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """(Co, Ci, 3, 3) -> (36, Ci, Co): G g G^T for every channel pair, position-major, float32."""
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ir,ocrs,js->ijco", g, weight.detach().double(), g)
    return u.reshape(36, weight.shape[1], weight.shape[0]).float().contiguous()


def _transformed(weight: torch.Tensor) -> torch.Tensor:
    if weight.is_inference():  # no version counter to tell whether it changed: transform afresh
        return transform_weight(weight)
    key = (weight.data_ptr(), weight._version)
    hit = _WEIGHTS.get(id(weight))
    if hit is None or hit[0] != key:
        if hit is None:
            weakref.finalize(weight, _WEIGHTS.pop, id(weight), None)
        hit = _WEIGHTS[id(weight)] = (key, transform_weight(weight))
    return hit[1]


def _winograd(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool,
              out: torch.Tensor | None = None, sums: torch.Tensor | None = None) -> torch.Tensor:
    dll = native.lib()
    n, c, h, w = x.shape
    co = weight.shape[0]
    u = _transformed(weight)
    b = None if bias is None else bias.detach().contiguous()  # kept alive while its address is in use
    b_ptr = None if b is None else b.data_ptr()
    th, tw = -(-h // 4), -(-w // 4)
    y = out if out is not None else torch.empty((n, co, h, w), dtype=torch.float32,
                                                 memory_format=torch.channels_last)
    rows = max(1, min(th, BAND_BYTES // (144 * tw * (c + co))))
    buf = _scratch(36 * rows * tw * (c + co))
    m_start = 36 * rows * tw * c  # the products follow the transformed input of the largest band
    zero, sink = torch.zeros(c), torch.empty(co)
    part = None if sums is None else torch.zeros(co, dtype=torch.float64)
    (_, _, xsh, xsw), (_, _, ysh, ysw) = x.stride(), y.stride()
    for i in range(n):
        x_ptr, y_ptr = x.data_ptr() + 4 * i * x.stride(0), y.data_ptr() + 4 * i * y.stride(0)
        for t0 in range(0, th, rows):
            t1 = min(th, t0 + rows)
            tiles = (t1 - t0) * tw
            v = buf[:36 * tiles * c].view(36, tiles, c)
            m = buf[m_start:m_start + 36 * tiles * co].view(36, tiles, co)
            dll.eqb_wino_in(x_ptr, xsh, xsw, h, w, c, t0, t1, tw, v.data_ptr(), zero.data_ptr())
            torch.bmm(v, u, out=m)  # the only multi-threaded step (see MAX_THREADS)
            dll.eqb_wino_out(m.data_ptr(), co, t0, t1, tw, h, w, b_ptr, int(relu), y_ptr, ysh, ysw,
                             sink.data_ptr(), None if part is None else part.data_ptr())
        if part is not None:
            sums[i] = part
            part.zero_()
    return y


def conv3x3_mean(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 relu: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(conv3x3(x, weight, bias, relu), its mean over pixels, (N, Co, 1, 1)). On the Winograd path the
    output transform adds up the channels as it writes them (no second pass over the output)."""
    if applies(x, weight, bias):
        sums = torch.empty(x.shape[0], weight.shape[0], dtype=torch.float64)
        y = _winograd(x, weight, bias, relu, sums=sums)
        return y, (sums / (x.shape[2] * x.shape[3])).float().view(x.shape[0], -1, 1, 1)
    y = conv3x3(x, weight, bias, relu)
    return y, y.mean((2, 3), keepdim=True)


def _out_ok(out: torch.Tensor, x: torch.Tensor, co: int) -> bool:
    return (out.dtype == torch.float32 and native.plain_cpu(out) and out.stride(1) == 1
            and tuple(out.shape) == (x.shape[0], co, x.shape[2], x.shape[3]))


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False,
            out: torch.Tensor | None = None) -> torch.Tensor:
    """F.conv2d(x, weight, bias, padding=1), then ReLU if `relu`: by Winograd where it applies. With `out`
    (e.g. a channel slice of a channels-last buffer) the result is written there and `out` returned."""
    if applies(x, weight, bias) and (out is None or _out_ok(out, x, weight.shape[0])):
        return _winograd(x, weight, bias, relu, out)
    y = F.conv2d(x, weight, bias, padding=1)
    y = F.relu(y) if relu else y
    return y if out is None else out.copy_(y)


class Conv3x3(nn.Conv2d):
    """nn.Conv2d(cin, cout, 3, padding=1) whose CPU inference takes `conv3x3` (same parameters, names and
    checkpoints). `forward(x, relu=True)` fuses a following ReLU; `out=` as for `conv3x3`."""

    def __init__(self, cin: int, cout: int, bias: bool = True) -> None:
        super().__init__(cin, cout, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor, relu: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
        return conv3x3(x, self.weight, self.bias, relu, out)
