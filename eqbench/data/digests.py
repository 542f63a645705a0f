"""Pixel digests: images identified by their decoded pixels, not by file bytes or names.

A digest is sha256 over the ASCII bytes `f"{H}x{W}x3\\n"` followed by the image decoded as an H x W x 3
uint8 RGB array in C order (PIL `convert("RGB")`: a greyscale image is replicated to three channels).
The same picture re-encoded, renamed or stored in another folder layout has the same digest
(../shared/datasets/digests/README.md). Verification matches the files of a folder against the
catalogue's digests by content; names only help to say which expected image a changed file was.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import EqbenchError


@dataclass(frozen=True)
class Digest:
    sha256: str
    hw: tuple[int, int]
    name: str

    def size(self) -> str:
        return f"{self.hw[1]}x{self.hw[0]}"


def parse_digest_line(line: str, where: str) -> Digest:
    """'<sha256>  HxW  name' (the digests README's format) -> Digest."""
    parts = line.split()
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not re.fullmatch(r"\d+x\d+", parts[1]):
        raise EqbenchError(f"{where}: malformed digest {line!r} (expected '<sha256>  HxW  name')")
    h, w = (int(v) for v in parts[1].split("x"))
    return Digest(parts[0], (h, w), parts[2])


def pixel_digest(path: Path) -> tuple[str, tuple[int, int]]:
    """(sha256 of the decoded RGB pixels, (H, W)); one clear error for an unreadable file."""
    try:
        with Image.open(path) as im:
            a = np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise EqbenchError(f"cannot read image {path}: corrupt or truncated ({e})") from None
    h, w = a.shape[:2]
    sha = hashlib.sha256(f"{h}x{w}x3\n".encode("ascii"))
    sha.update(a.tobytes())
    return sha.hexdigest(), (h, w)


def name_key(name: str) -> str:
    """A file name reduced for pairing across layouts: 'img_001.png', 'img001.png' and
    'img_001_SRF_2_HR.png' all become 'img001'."""
    stem = Path(name).stem
    stem = re.sub(r"_SRF_\d+_HR$", "", stem, flags=re.IGNORECASE)
    return re.sub(r"[^0-9a-z]", "", stem.lower())


@dataclass
class Match:
    """Files matched to the catalogue's digests by content."""

    matched: dict[str, Path]  # catalogue name -> the file with its pixels
    missing: list[Digest]  # expected, found in no file
    extra: list[tuple[Path, tuple[int, int]]]  # files whose pixels match no expected image
    duplicates: list[Path]  # a second file with the pixels of an already matched image
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # files that do not decode

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.duplicates or self.unreadable)

    def problems(self, show=lambda p: str(p)) -> list[str]:
        """One line per problem, naming the file; a changed file is paired with the image it replaces."""
        by_key = {name_key(d.name): d for d in self.missing}
        out = [f"{show(p)}: unreadable ({why})" for p, why in self.unreadable]
        paired = {by_key[k].name for p, _ in self.unreadable if (k := name_key(p.name)) in by_key}
        for path, hw in self.extra:
            d = by_key.get(name_key(path.name))
            if d is not None and d.name not in paired:
                paired.add(d.name)
                out.append(f"{show(path)}: pixels differ from the catalogue's {d.name} ({d.size()}; "
                           f"this file is {hw[1]}x{hw[0]})")
            else:
                out.append(f"{show(path)}: extra image ({hw[1]}x{hw[0]}) whose pixels match no image of the set")
        out += [f"{d.name}: missing (no file has its pixels; {d.size()})" for d in self.missing
                if d.name not in paired]
        out += [f"{show(p)}: duplicate of an image already matched" for p in self.duplicates]
        return out


def match_files(files: list[Path], expected: tuple[Digest, ...]) -> Match:
    want = {d.sha256: d for d in expected}
    counts = Counter(d.sha256 for d in expected)
    if any(c > 1 for c in counts.values()):
        raise EqbenchError("the catalogue lists the same pixel digest twice for one set")
    matched: dict[str, Path] = {}
    extra, dups, bad = [], [], []
    for path in files:
        try:
            sha, hw = pixel_digest(path)
        except EqbenchError as e:
            bad.append((path, str(e).rsplit("(", 1)[-1].rstrip(")")))
            continue
        d = want.get(sha)
        if d is None:
            extra.append((path, hw))
        elif d.name in matched:
            dups.append(path)
        else:
            matched[d.name] = path
    missing = [d for d in expected if d.name not in matched]
    return Match(matched, missing, extra, dups, bad)
