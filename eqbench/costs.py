"""FLOP declarations for code that torch's FlopCounterMode sees as elementwise work.

A method module declares the cost of such a function here (`@declare_flops(formula)`), at no cost
outside a count; the profiler (eqbench/analysis/flops.py) sums the declarations while `count_flops`
runs. This module is below the methods and the profiler, so a method does not depend on the profiler.
"""

from __future__ import annotations

import functools
import math
from collections import Counter

# Counters of the count_flops calls in progress (innermost last); declared functions add to it.
_ACTIVE: list[Counter] = []


def declare_flops(formula):
    """Decorator: add formula(*args, out=result, **kwargs) FLOPs to a running `count_flops`."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            out = fn(*args, **kwargs)
            if _ACTIVE:
                _ACTIVE[-1][fn.__qualname__] += int(formula(*args, out=out, **kwargs))
            return out

        return wrapper

    return deco


def involution_flops(out_shape, taps: int) -> int:
    """FLOPs of an unfold-style involution: one multiply-accumulate per kernel tap per output element."""
    return 2 * int(taps) * math.prod(int(v) for v in out_shape)
