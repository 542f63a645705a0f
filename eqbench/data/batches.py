"""Training samples: one HR image -> one (LR, target) sample, as the published data pipelines make them.

Three builders (../shared/spec/methods.md 1.7, 2.4, 4.1, 5.4), each a pure function of the image and a
numpy Generator, so a sample is reproducible from its key alone (the trainer derives the Generator
from (seed, iteration, slot): resumed and distributed runs see the same samples):

  * `eqsr_sample`: s ~ U(1, 4), an HR crop of round(48 s), the whole crop resized to 48 x 48, and a
    random 48 x 48 HR target window inside the crop with its pixel-centre coordinates in the crop's
    [-1, 1] frame and cell 2 / crop ("only the target region is upsampled"). Dense targets.
  * `liif_sample`: same crop and LR, then 2304 HR pixels of the crop drawn without replacement, with
    their coordinates and cell. Point targets.
  * `pairs_sample`: a given scale (sh, sw) (the trainer draws one per batch), an HR patch of
    (round(50 sh), round(50 sw)) resized to a 50 x 50 LR patch; the target is the whole HR patch.
    The official MetaSR/ArbSR pipelines cut the LR patch out of an LR image made from the whole HR
    image; here the LR is made from the HR patch (as LIIF/EQSR do), which differs only in the 2-pixel
    LR border where the resize kernel would have seen pixels outside the patch.

The LR of every sample is made by a named resize of the 8-bit HR crop (`RESIZES`):
  * "pil-bicubic": PIL's antialiased bicubic, 8-bit result: what torchvision `Resize(BICUBIC)` does
    in the LIIF, LTE and EQSR training code;
  * "matlab-bicubic": MATLAB `imresize(uint8 crop, [h w], 'bicubic')` (eqbench.data.resize.imresize,
    rounding after each pass), as the MetaSR/ArbSR LR images and the `matlab` protocol are made.
Augmentation (all three): flip rows, flip columns, transpose, each with p = 0.5, on LR and target alike
(the order and the three draws of LIIF's wrapper). `pairs` transposes only square patches, as ArbSR,
so one batch keeps one (asymmetric) scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from .resize import imresize

RESIZES = ("pil-bicubic", "matlab-bicubic")


def resize_uint8(img: np.ndarray, hw: tuple[int, int], how: str) -> np.ndarray:
    """Resize an 8-bit (H, W, 3) image to (h, w) with the named resize; returns 8-bit (h, w, 3)."""
    if how == "pil-bicubic":
        return np.array(Image.fromarray(img).resize((hw[1], hw[0]), Image.BICUBIC))
    if how == "matlab-bicubic":
        t = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)
        out = imresize(t, size=hw, uint8=True)
        return out.permute(1, 2, 0).to(torch.uint8).numpy()
    raise ValueError(f"unknown resize {how!r}; known: {', '.join(RESIZES)}")


def coord_seq(n: int) -> torch.Tensor:
    """Pixel-centre coordinates -1 + (2k + 1) / n, k < n, float32.

    Evaluated as LIIF's make_coord does (r = 1/n; (-1 + r) + (2r) * arange), so training coordinates
    are bit-identical to the official ones (another float32 order differs by an ulp for most n).
    """
    r = 1.0 / n
    return (-1 + r) + (2 * r) * torch.arange(n).float()


def make_coord(h: int, w: int) -> torch.Tensor:
    """(h, w, 2) pixel-centre coordinates in [-1, 1], (row, col)."""
    return torch.stack(torch.meshgrid(coord_seq(h), coord_seq(w), indexing="ij"), dim=-1)


def coord_of(index: np.ndarray, h: int, w: int) -> torch.Tensor:
    """make_coord(h, w).reshape(-1, 2)[index], without building the whole grid."""
    index = torch.as_tensor(np.asarray(index))
    return torch.stack([coord_seq(h)[index // w], coord_seq(w)[index % w]], dim=-1)


def to_float(a: np.ndarray) -> torch.Tensor:
    """8-bit array -> float32 tensor in [0, 1], same layout."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / np.float32(255))


def to_chw(img: np.ndarray) -> torch.Tensor:
    """8-bit (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return to_float(img.transpose(2, 0, 1))


def draw_flips(rng: np.random.Generator) -> tuple[bool, bool, bool]:
    return bool(rng.random() < 0.5), bool(rng.random() < 0.5), bool(rng.random() < 0.5)


def apply_flips(x: np.ndarray, flips: tuple[bool, bool, bool]) -> np.ndarray:
    """Flip rows, flip columns, transpose (in that order) an (H, W, ...) array; returns a view."""
    rows, cols, transpose = flips
    if rows:
        x = x[::-1]
    if cols:
        x = x[:, ::-1]
    if transpose:
        x = x.swapaxes(0, 1)
    return x


def crop_size(lr_size: int, s: float) -> int:
    # Python's round (half to even), as the official code's round(w_lr * s).
    return int(round(lr_size * s))


def random_crop(img: np.ndarray, hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    H, W = img.shape[:2]
    if H < hw[0] or W < hw[1]:
        raise ValueError(f"image {W}x{H} is smaller than the crop {hw[1]}x{hw[0]}")
    y0 = int(rng.integers(0, H - hw[0] + 1))
    x0 = int(rng.integers(0, W - hw[1] + 1))
    return img[y0:y0 + hw[0], x0:x0 + hw[1]]


def _scaled_crop(img, rng, lr_size, scale_range, resize, augment):
    """(lr, hr crop) as 8-bit (h, w, 3) arrays, augmented alike, and the crop size."""
    s = float(rng.uniform(scale_range[0], scale_range[1]))
    w_hr = crop_size(lr_size, s)
    hr = random_crop(img, (w_hr, w_hr), rng)
    lr = resize_uint8(hr, (lr_size, lr_size), resize)
    if augment:
        flips = draw_flips(rng)
        lr, hr = apply_flips(lr, flips), apply_flips(hr, flips)
    return lr, hr, w_hr


def eqsr_sample(img: np.ndarray, rng: np.random.Generator, *, lr_size: int = 48, window: int = 48,
                scale_range: tuple[float, float] = (1.0, 4.0), resize: str = "pil-bicubic",
                augment: bool = True) -> dict[str, torch.Tensor]:
    """lr (3, 48, 48); gt (3, window, window); coord, cell (window, window, 2); hr_size, offset (2,)."""
    lr, hr, w_hr = _scaled_crop(img, rng, lr_size, scale_range, resize, augment)
    if w_hr < window:
        raise ValueError(f"crop {w_hr} is smaller than the target window {window}: scale_range must "
                         f"start at >= {window / lr_size}")
    oy = int(rng.integers(0, w_hr - window + 1))
    ox = int(rng.integers(0, w_hr - window + 1))
    seq = coord_seq(w_hr)
    coord = torch.stack(torch.meshgrid(seq[oy:oy + window], seq[ox:ox + window], indexing="ij"), dim=-1)
    return {
        "lr": to_chw(lr),
        "gt": to_chw(hr[oy:oy + window, ox:ox + window]),
        "coord": coord,
        "cell": torch.full_like(coord, 2.0 / w_hr),
        "hr_size": torch.tensor([w_hr, w_hr]),
        "offset": torch.tensor([oy, ox]),
    }


def liif_sample(img: np.ndarray, rng: np.random.Generator, *, lr_size: int = 48, sample_q: int = 2304,
                scale_range: tuple[float, float] = (1.0, 4.0), resize: str = "pil-bicubic",
                augment: bool = True) -> dict[str, torch.Tensor]:
    """lr (3, 48, 48); gt (Q, 3); coord, cell (Q, 2); index (Q,) into the flattened crop; hr_size (2,)."""
    lr, hr, w_hr = _scaled_crop(img, rng, lr_size, scale_range, resize, augment)
    n = w_hr * w_hr
    if n < sample_q:
        raise ValueError(f"crop {w_hr}x{w_hr} has fewer than sample_q={sample_q} pixels")
    index = rng.choice(n, sample_q, replace=False).astype(np.int64)
    coord = coord_of(index, w_hr, w_hr)
    return {
        "lr": to_chw(lr),
        "gt": to_float(np.ascontiguousarray(hr).reshape(n, 3)[index]),
        "coord": coord,
        "cell": torch.full_like(coord, 2.0 / w_hr),
        "index": torch.from_numpy(index),
        "hr_size": torch.tensor([w_hr, w_hr]),
    }


def pairs_hr_size(scale: tuple[float, float], lr_patch: int = 50) -> tuple[int, int]:
    return crop_size(lr_patch, scale[0]), crop_size(lr_patch, scale[1])


def pairs_sample(img: np.ndarray, rng: np.random.Generator, scale: tuple[float, float], *,
                 lr_patch: int = 50, resize: str = "matlab-bicubic",
                 augment: bool = True) -> dict[str, torch.Tensor]:
    """lr (3, 50, 50); gt (3, round(50 sh), round(50 sw)); hr_size (2,)."""
    H, W = pairs_hr_size(scale, lr_patch)
    hr = random_crop(img, (H, W), rng)
    lr = resize_uint8(hr, (lr_patch, lr_patch), resize)
    if augment:
        rows, cols, transpose = draw_flips(rng)
        flips = (rows, cols, transpose and H == W)
        lr, hr = apply_flips(lr, flips), apply_flips(hr, flips)
    return {"lr": to_chw(lr), "gt": to_chw(hr), "hr_size": torch.tensor([H, W])}


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack same-shaped samples (one scale per `pairs` batch keeps the HR patches equal in size)."""
    keys = samples[0].keys()
    return {k: torch.stack([s[k] for s in samples]) for k in keys}


def check_scale(scale: tuple[float, float]) -> None:
    for v in scale:
        if not (math.isfinite(v) and v >= 1.0):
            raise ValueError(f"training scales must be >= 1, got {scale}")
