"""Scales as (vertical, horizontal) factors: `2`, `2.75`, `1.5x4` (h x w, asymmetric)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import EqbenchError


@dataclass(frozen=True, order=True)
class Scale:
    h: float
    w: float

    @property
    def symmetric(self) -> bool:
        return self.h == self.w

    @property
    def integer(self) -> bool:
        return self.symmetric and float(self.h).is_integer()

    def as_list(self) -> list[float]:
        return [self.h, self.w]

    def label(self) -> str:
        """Short text used in tables and file names: '2', '2.75', '1.5x4'."""
        f = _fmt
        return f(self.h) if self.symmetric else f"{f(self.h)}x{f(self.w)}"

    def __str__(self) -> str:
        return "x" + self.label()


def _fmt(v: float) -> str:
    # Integers as integers up to 1e6 ('300', not '3e+02'); beyond, %g keeps a huge scale readable.
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e6 else f"{v:g}"


def _factor(text: str, whole: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise EqbenchError(
            f"cannot parse scale {whole!r}: use a number like 2 or 2.75, or HxW like 1.5x4"
        ) from None
    if math.isnan(v) or math.isinf(v):
        raise EqbenchError(f"scale {whole!r} is not a finite number")
    if v < 1:
        raise EqbenchError(f"scale {whole!r} is below 1: super-resolution scales are >= 1 per axis")
    return v


def parse_scale(value: str | float | int | tuple | list | Scale) -> Scale:
    """Parse '2', '2.75', '1.5x4' (or 1.5X4, 1.5*4), numbers, or (h, w) pairs into a Scale."""
    if isinstance(value, Scale):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise EqbenchError(f"a scale pair needs exactly two factors (h, w), got {value!r}")
        return Scale(_factor(str(value[0]), str(value)), _factor(str(value[1]), str(value)))
    if isinstance(value, (int, float)):
        v = _factor(repr(float(value)), str(value))
        return Scale(v, v)
    text = str(value).strip().lower().lstrip("x")
    for sep in ("x", "*", ","):
        if sep in text:
            parts = text.split(sep)
            if len(parts) != 2:
                break
            return Scale(_factor(parts[0], value), _factor(parts[1], value))
    v = _factor(text, value)
    return Scale(v, v)
