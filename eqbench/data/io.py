"""Image reading with one clear error per bad file.

Images come back as uint8 numpy arrays, (H, W, 3) for colour and (H, W) for greyscale: greyscale HR
images are scored on their single channel (protocol.md), so they are not expanded here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import EqbenchError, EqbenchWarning

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".webp")


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """One EqbenchError line for every way reading an image can fail (and for decompression bombs)."""
    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that: both are refused here (a
            # decompression bomb, or an image far too large to super-resolve on this machine).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except FileNotFoundError:
        raise EqbenchError(f"image not found: {path}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EqbenchError(f"refusing image {path}: more than {Image.MAX_IMAGE_PIXELS} pixels, PIL's limit "
                           "against decompression bombs; remove it or crop it to a sensible size") from None
    except IsADirectoryError:
        raise EqbenchError(f"cannot read image {path}: it is a folder") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise EqbenchError(f"cannot read image {path}: corrupt or truncated ({e}); re-download or remove it") from None


def load_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    with _reading(path):
        with Image.open(path) as im:
            deep = _sixteen_bit_colour(im)
            im.load()
    if deep:
        warnings.warn(f"{path}: 16-bit {im.mode} image reduced to 8 bits per channel", EqbenchWarning, stacklevel=2)
    with _reading(path):
        return _to_uint8(im, path)


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels; the same errors as `load_image`."""
    path = Path(path)
    with _reading(path), Image.open(path) as im:
        return im.size[1], im.size[0]


def _sixteen_bit_colour(im: Image.Image) -> bool:
    """True for a 16-bit-per-channel colour file, which PIL silently reads as 8-bit RGB(A)."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    return any(";16" in str(getattr(t, "args", None) if not isinstance(t, tuple) else t[-1])
               for t in (im.tile or []))


def _to_uint8(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        warnings.warn(f"{path}: dropping the alpha channel", EqbenchWarning, stacklevel=3)
        im = im.convert("RGB" if mode != "LA" else "L")
        mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max() > 255 or mode.startswith("I;16") else 255.0
        warnings.warn(f"{path}: {mode} image rescaled to 8 bits", EqbenchWarning, stacklevel=3)
        return np.clip(np.floor(a * (255.0 / top) + 0.5), 0, 255).astype(np.uint8)
    if mode == "1":
        im = im.convert("L")
    elif mode not in ("RGB", "L"):
        im = im.convert("RGB")
    a = np.asarray(im)
    if a.dtype != np.uint8:
        raise EqbenchError(f"cannot read image {path}: unsupported pixel type {a.dtype} (mode {im.mode})")
    return np.ascontiguousarray(a)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
