"""Keep freed CPU buffers in the process heap instead of handing them back to the kernel (glibc only).

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with a fresh mmap and
returns it with munmap on free, and trims the heap top above the trim threshold. SR inference allocates
and frees tensors of tens of MiB thousands of times per image (EQSR's per-HR-pixel decoder: one per
elementwise step), so each of them costs a system call plus a page fault and a zeroing per 4 KiB page.
Measured on the main job (2 cores, quiet): 262 s of its 661 s CPU time were system time.

`keep_freed_memory()` raises both thresholds (defaults 256 MiB and 512 MiB), so such buffers are reused
from the heap. Arithmetic and results are unchanged; the resident set may stay higher after a peak (freed
memory is kept for reuse, up to the trim threshold at the heap top). The CLI calls it for the commands
that run models; a library user may call it too. After it, `release_freed_memory()` (called at the end of
every `SRMethod.upsample`) hands the kept memory back to the kernel (malloc_trim) once more than
`release_above_bytes()` of it is free in the heap (1/16 of the machine's RAM, clamped to 512 MiB..2 GiB),
so a large image's peak is not kept for the rest of the run; smaller amounts stay for reuse by the next
call (trimming after every call would fault them in again). Measured on eqsr + eqsr-edsr evaluation and
EQ_S (2 cores, 24 GiB, two alternating rounds): 1.5 GiB kept instead of 512 MiB took system time from 29 s
to 14-17 s and wall time from 62 s to 52-56 s, peak RSS from 1.65-1.89 GB to 2.11-2.14 GB.
It does nothing where the C library has no `mallopt`
(macOS, Windows), when EQBENCH_MALLOC=default, or when the user set glibc's own MALLOC_MMAP_THRESHOLD_ /
MALLOC_TRIM_THRESHOLD_ (their choice wins). Memory profiles (`eqbench.analysis.memory`) are measured in
fresh worker processes that do not call it, so they report what a call needs under the default allocator.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MIB = 1 << 20
RELEASE_MIN_MIB, RELEASE_MAX_MIB = 512, 2048
_done: dict = {}


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def keep_freed_memory(mmap_threshold_mib: int = 256, trim_threshold_mib: int = 512) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if the settings took effect."""
    if "result" in _done:
        return _done["result"]
    ok = False
    skip = os.environ.get("EQBENCH_MALLOC", "").lower() == "default" or any(
        v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
    if not skip:
        try:
            libc = ctypes.CDLL("libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold_mib * MIB)) and bool(
                mallopt(M_TRIM_THRESHOLD, trim_threshold_mib * MIB))
    _done["result"] = ok
    if ok and hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
        _done["libc"] = libc
    return ok


def release_above_bytes() -> int:
    """Free heap kept for reuse between calls: 1/16 of physical memory, within [512 MiB, 2 GiB]."""
    if "release_above" not in _done:
        try:
            ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            ram = 0
        _done["release_above"] = min(max(ram // 16, RELEASE_MIN_MIB * MIB), RELEASE_MAX_MIB * MIB)
    return _done["release_above"]


def release_freed_memory() -> None:
    """Return the heap's free memory to the kernel if keep_freed_memory() took effect and more than
    `release_above_bytes()` of it is free (else nothing)."""
    libc = _done.get("libc")
    if libc is not None and libc.mallinfo2().fordblks > release_above_bytes():
        libc.malloc_trim(0)
