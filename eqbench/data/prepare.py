"""`eqbench datasets prepare NAME --from SOURCE`: benchmark/training HR images into the catalogue layout.

SOURCE is a folder, a .zip or .tar(.gz) archive, or an http(s) URL (downloaded into a cache with a
progress bar; an interrupted download resumes with an HTTP Range request). The set's HR images are
found in the common layouts:
  * EDSR/RCAN benchmark package   .../benchmark/<set>/HR/*.png
  * BasicSR                       .../<set>/GTmod12/*.png or .../<set>/HR/*.png
  * SelfExSR                      .../<set>/image_SRF_<k>/*_HR.png (the lowest k: the least cropped HR)
  * a flat folder of images       .../<set>/*.png, or the source itself
(<set> is the catalogue name, the last part of its path, or one of its `aliases`, in any case).
Every image is verified by pixel digest, matched by content, before anything is written; the set is
staged in a hidden folder beside its destination and renamed into place in one step, so a failure
leaves no half-prepared set behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..errors import EqbenchError
from .datasets import DatasetSpec, list_set_images
from .digests import match_files
from .io import IMAGE_SUFFIXES, list_images

CHUNK = 1 << 20


def default_download_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eqbench" / "downloads"


def is_url(source: str) -> bool:
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https")


# ----------------------------------------------------------------------------------------- download
def download(url: str, cache_dir: Path, *, progress: bool = True) -> Path:
    """The file at `url`, in `cache_dir` (a finished download is reused; a `.part` file is resumed)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    base = Path(urllib.parse.urlparse(url).path).name or "download"
    dest = cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{base}"
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=60)  # noqa: S310 (http(s) only: is_url)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the .part already holds the whole file
            os.replace(part, dest)
            return dest
        raise EqbenchError(f"download of {url} failed: HTTP {e.code} {e.reason}; check the URL, or download "
                           "the file yourself and pass it to --from") from None
    except (urllib.error.URLError, OSError) as e:
        raise EqbenchError(f"download of {url} failed: {getattr(e, 'reason', e)}; check the URL and the "
                           "network, or download the file yourself and pass it to --from") from None
    with resp:
        _receive(resp, part, have, base, progress, url)
    os.replace(part, dest)
    return dest


def _receive(resp, part: Path, have: int, label: str, progress: bool, url: str) -> None:
    from tqdm import tqdm

    if have and resp.status != 206:  # the server ignored the Range request: start over
        have = 0
    length = resp.headers.get("Content-Length")
    total = int(length) + have if length is not None else None
    try:
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                          desc=label, disable=not progress, leave=False) as bar:
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    except OSError as e:
        raise EqbenchError(f"download of {url} interrupted ({e}); run the same command again to resume it "
                           f"from {part.stat().st_size if part.exists() else 0} bytes") from None
    if total is not None and part.stat().st_size != total:
        raise EqbenchError(f"download of {url} incomplete: {part.stat().st_size} of {total} bytes; run the "
                           "same command again to resume it")


# ------------------------------------------------------------------------------------------- unpack
def unpack(path: Path, into: Path) -> Path:
    """A folder as is; a .zip / .tar(.gz) archive's image files extracted into `into`."""
    if path.is_dir():
        return path
    if not path.is_file():
        raise EqbenchError(f"--from {path}: no such file or folder")
    into.mkdir(parents=True)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for m in z.infolist():
                if not m.is_dir() and _wanted(m.filename):
                    target = _inside(into, m.filename, path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(m) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
        return into
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            members = [m for m in t.getmembers() if m.isfile() and _wanted(m.name)]
            for m in members:
                _inside(into, m.name, path)
            t.extractall(into, members=members, filter="data")
        return into
    raise EqbenchError(f"--from {path}: not a folder, a .zip or a .tar(.gz) archive")


def _wanted(member: str) -> bool:
    return Path(member).suffix.lower() in IMAGE_SUFFIXES and not Path(member).name.startswith(".")


def _inside(root: Path, member: str, archive: Path) -> Path:
    target = (root / member).resolve()
    if not target.is_relative_to(root.resolve()):
        raise EqbenchError(f"{archive}: member {member!r} would be written outside the extraction folder; "
                           "refusing the archive")
    return target


# --------------------------------------------------------------------------------------- find layout
def _srf_key(d: Path) -> float:
    try:
        return float(d.name.split("_")[-1])
    except ValueError:
        return float("inf")


def _layout_in(d: Path, spec: DatasetSpec) -> tuple[list[Path], str] | None:
    for sub, label in (("HR", "<set>/HR (EDSR/RCAN benchmark or BasicSR)"), ("GTmod12", "BasicSR <set>/GTmod12")):
        for cand in (d / sub, d / sub.lower()):
            if cand.is_dir() and (files := list_images(cand)):
                return files, label
    srf = sorted((c for c in d.glob("image_SRF_*") if c.is_dir()), key=_srf_key)
    if srf:
        files = [p for p in list_images(srf[0]) if p.stem.upper().endswith("_HR")]
        if files:
            return files, f"SelfExSR {srf[0].name}/*_HR"
    files = list_set_images(d, spec.layout)
    if files:
        return files, "flat folder" if spec.layout == "flat" else "one folder per class"
    return None


def find_hr_images(tree: Path, spec: DatasetSpec) -> tuple[Path, list[Path], str]:
    """(folder the layout starts at, HR image files, layout description) for `spec` in `tree`."""
    names = {spec.name.casefold(), Path(spec.path or spec.name).name.casefold(), *(a.casefold() for a in spec.aliases)}
    named = sorted((d for d in tree.rglob("*") if d.is_dir() and d.name.casefold() in names),
                   key=lambda d: (len(d.parts), str(d)))
    for d in named:
        if (found := _layout_in(d, spec)) is not None:
            return d, *found
    cur = tree  # no folder named like the set: the source is the set (maybe inside one top folder)
    while True:
        if (found := _layout_in(cur, spec)) is not None:
            return cur, *found
        subs = [d for d in cur.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subs) != 1:
            break
        cur = subs[0]
    raise EqbenchError(
        f"no {spec.name} HR images found in the source: looked for benchmark/<set>/HR, <set>/GTmod12, "
        f"<set>/HR, <set>/image_SRF_*/*_HR.png and a folder of images, with <set> one of {sorted(names)}")


# ------------------------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    folder: Path
    images: int
    verified: str  # "pixel digests" or "count only (no digests)"


def plan_outputs(spec: DatasetSpec, found: list[tuple[Path, Path]], shown: dict[Path, str]) -> list[tuple[Path, str]]:
    """[(source file, name under the set folder)]; refuses, naming the files, when the set is not exact."""
    files = [f for f, _ in found]
    if spec.digests:
        m = match_files(files, spec.digests)
        if not m.ok:
            raise _refusal(spec, m.problems(show=lambda p: shown.get(p, str(p))))
        return [(src, name) for name, src in sorted(m.matched.items())]
    out = [(f, f.relative_to(base).as_posix() if spec.layout == "classes" else f.name) for f, base in found]
    dupes = sorted(n for n, c in Counter(n for _, n in out).items() if c > 1)
    if dupes:
        raise _refusal(spec, [f"{n}: more than one source file has this name" for n in dupes[:20]])
    if len(out) != spec.images:
        raise _refusal(spec, [f"found {len(out)} images, the catalogue expects {spec.images} (no digests: only the "
                              "count can be checked)"])
    return out


def _refusal(spec: DatasetSpec, problems: list[str]) -> EqbenchError:
    shown = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
    return EqbenchError(f"refusing to prepare {spec.name}: {len(problems)} problem(s): {shown}; nothing was "
                        "written (fix or re-download the source)")


def _write(plan: list[tuple[Path, str]], stage: Path) -> None:
    for src, name in plan:
        dst = stage / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix.lower() == dst.suffix.lower():
            shutil.copyfile(src, dst)
            continue
        with Image.open(src) as im:  # another encoding: re-encoded losslessly (the pixels are verified again)
            (im if im.mode in ("RGB", "L") else im.convert("RGB")).save(dst)


def prepare(spec: DatasetSpec, sources: list[str], root: Path, *, cache_dir: Path | None = None,
            force: bool = False, progress: bool = True, log=print) -> Prepared:
    """Find, verify and install the HR images of `spec` from `sources` under `root` (all or nothing)."""
    if spec.builtin or not spec.path:
        raise EqbenchError(f"dataset {spec.name!r} is built in ({spec.builtin}); it needs no preparing")
    final = root / spec.path
    if final.exists() and any(final.iterdir()) and not force:
        raise EqbenchError(f"{final} already exists: `eqbench datasets verify {spec.name}` checks it; pass --force "
                           "to replace it")
    made = [d for d in (final.parent, *final.parent.parents) if not d.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.prepare-", dir=final.parent))
    try:
        found, shown = _gather(spec, sources, work, cache_dir or default_download_cache(), progress, log)
        plan = plan_outputs(spec, found, shown)
        stage = work / "stage"
        stage.mkdir()
        _write(plan, stage)
        check = plan_outputs(spec, [(p, stage) for p in list_set_images(stage, spec.layout)], {})
        if len(check) != len(plan):
            raise EqbenchError(f"internal error: {len(check)} images staged for {len(plan)} planned")
        _swap(stage, final, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        for d in made:  # folders this call created for nothing
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        raise
    shutil.rmtree(work, ignore_errors=True)
    return Prepared(final, len(plan), "pixel digests" if spec.digests else "count only (no digests)")


def _gather(spec, sources, work, cache_dir, progress, log) -> tuple[list[tuple[Path, Path]], dict[Path, str]]:
    """[(HR file, the folder its layout starts at)] from every source, and how to name each file."""
    found: list[tuple[Path, Path]] = []
    shown: dict[Path, str] = {}
    for i, src in enumerate(sources):
        path = download(src, cache_dir, progress=progress) if is_url(src) else Path(src).expanduser()
        tree = unpack(path, work / f"source{i}")
        base, files, label = find_hr_images(tree, spec)
        log(f"{src}: {len(files)} {spec.name} images ({label}: {base.relative_to(tree).as_posix() or '.'})")
        for f in files:
            shown[f] = f.relative_to(tree).as_posix()
            found.append((f, base))
    return found, shown


def _swap(stage: Path, final: Path, work: Path) -> None:
    """Put the staged set in place with renames; a replaced set is removed only once the new one is in."""
    if final.exists():
        old = work / "replaced"
        os.replace(final, old)
        try:
            os.replace(stage, final)
        except OSError:
            os.replace(old, final)
            raise
    else:
        os.replace(stage, final)
