"""datasets.yaml: named datasets, the data root, presence, checksum and pixel-digest status."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import EqbenchError, unknown_name
from .digests import Digest, match_files, parse_digest_line
from .io import IMAGE_SUFFIXES, list_images

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
ROLES = ("benchmark", "train")
LAYOUTS = ("flat", "classes")  # classes: one sub-folder per class (ImageNet train), images listed recursively


def default_datasets_yaml() -> Path:
    return Path(os.environ.get("EQBENCH_DATASETS_YAML", Path(__file__).with_name("datasets.yaml")))


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eqbench" / "data"


def resolve_data_root(data_root: str | os.PathLike | None) -> tuple[Path, str]:
    """(root, where it came from): --data-root > $EQBENCH_DATA > the user cache folder."""
    if data_root:
        return Path(data_root).expanduser(), "--data-root"
    if os.environ.get("EQBENCH_DATA"):
        return Path(os.environ["EQBENCH_DATA"]).expanduser(), "$EQBENCH_DATA"
    return default_cache_root(), "the user cache folder"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    role: str
    images: int
    path: str | None = None
    checksums: str | None = None
    source: str = ""
    builtin: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)
    url: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)  # folder names the set has in other layouts
    layout: str = "flat"
    digests: tuple[Digest, ...] = field(default_factory=tuple)

    def prepare_hint(self) -> str:
        where = f" (published at {self.url})" if self.url else ""
        return f"prepare it with `eqbench datasets prepare {self.name} --from <folder, archive or URL>`{where}"


@dataclass(frozen=True)
class DatasetStatus:
    spec: DatasetSpec
    folder: Path | None
    found: bool
    count: int
    files: tuple[Path, ...]


def load_catalog(path: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    path = Path(path) if path else default_datasets_yaml()
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise EqbenchError(f"datasets catalogue not found: {path} (set EQBENCH_DATASETS_YAML)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise EqbenchError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
        raise EqbenchError(f"{path}: expected a mapping with a 'datasets:' mapping at the top level")
    out: dict[str, DatasetSpec] = {}
    allowed = {"role", "path", "images", "checksums", "source", "builtin", "files", "url", "aliases", "layout",
               "digests"}
    for name, entry in doc["datasets"].items():
        where = f"{path}: datasets.{name}"
        if not isinstance(entry, dict):
            raise EqbenchError(f"{where}: expected a mapping of fields, got {type(entry).__name__}")
        extra = set(entry) - allowed
        if extra:
            raise EqbenchError(f"{where}: unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        if entry.get("role") not in ROLES:
            raise EqbenchError(f"{where}.role: must be one of {ROLES}, got {entry.get('role')!r}")
        if not isinstance(entry.get("images"), int) or entry["images"] < 1:
            raise EqbenchError(f"{where}.images: must be a positive integer, got {entry.get('images')!r}")
        if bool(entry.get("path")) == bool(entry.get("builtin")):
            raise EqbenchError(f"{where}: give exactly one of 'path' (under the data root) or 'builtin'")
        if entry.get("builtin") not in (None, "skimage"):
            raise EqbenchError(f"{where}.builtin: only 'skimage' is supported, got {entry['builtin']!r}")
        out[str(name)] = DatasetSpec(
            name=str(name), role=entry["role"], images=entry["images"], path=entry.get("path"),
            checksums=entry.get("checksums"), source=str(entry.get("source", "")),
            builtin=entry.get("builtin"), files=tuple(entry.get("files") or ()), **_new_fields(entry, where),
        )
    return out


def _new_fields(entry: dict, where: str) -> dict:
    """url, aliases, layout and the per-image pixel digests of one catalogue entry, checked."""
    layout = entry.get("layout", "flat")
    if layout not in LAYOUTS:
        raise EqbenchError(f"{where}.layout: must be one of {LAYOUTS}, got {layout!r}")
    raw = entry.get("digests") or []
    if not isinstance(raw, list):
        raise EqbenchError(f"{where}.digests: expected a list of '<sha256>  HxW  name' lines")
    digests = tuple(parse_digest_line(str(line), f"{where}.digests[{i}]") for i, line in enumerate(raw))
    if digests and len(digests) != entry["images"]:
        raise EqbenchError(f"{where}: {len(digests)} digests for {entry['images']} images")
    return {"url": str(entry.get("url", "")), "aliases": tuple(str(a) for a in entry.get("aliases") or ()),
            "layout": layout, "digests": digests}


def list_set_images(folder: Path, layout: str = "flat") -> list[Path]:
    """The image files of a prepared set: directly in `folder`, or in its class sub-folders."""
    if layout == "flat":
        return list_images(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def get_spec(name: str, catalog: dict[str, DatasetSpec]) -> DatasetSpec:
    if name not in catalog:
        raise unknown_name("dataset", name, catalog)
    return catalog[name]


def _skimage_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def status(spec: DatasetSpec, root: Path) -> DatasetStatus:
    if spec.builtin:
        folder = _skimage_dir()
        files = tuple(folder / f for f in spec.files if (folder / f).is_file())
        return DatasetStatus(spec, folder, len(files) == len(spec.files), len(files), files)
    folder = root / spec.path
    if not folder.is_dir():
        return DatasetStatus(spec, folder, False, 0, ())
    files = tuple(list_set_images(folder, spec.layout))
    return DatasetStatus(spec, folder, bool(files), len(files), files)


def locate(name: str, data_root: str | os.PathLike | None = None,
           catalog: dict[str, DatasetSpec] | None = None) -> DatasetStatus:
    """The dataset's image files, or one error naming the paths searched and how to set the root."""
    catalog = catalog or load_catalog()
    if name not in catalog and is_folder_arg(name):
        return folder_dataset(name)
    spec = get_spec(name, catalog)
    root, origin = resolve_data_root(data_root)
    st = status(spec, root)
    if not st.found:
        if spec.builtin:
            raise EqbenchError(f"dataset {name!r}: scikit-image's bundled images are missing from {st.folder}; "
                               "reinstall scikit-image")
        raise EqbenchError(
            f"dataset {name!r} not found: no images in {st.folder} (data root {root} from {origin}); "
            f"{spec.prepare_hint()}, or set --data-root / EQBENCH_DATA to the folder that holds {spec.path}/"
        )
    return st


def is_folder_arg(name: str) -> bool:
    """A --datasets value that means a folder: it has a path separator, starts with . or ~, or is a folder."""
    s = str(name)
    return "/" in s or os.sep in s or s.startswith((".", "~")) or Path(s).is_dir()


def pil_suffixes() -> set[str]:
    """File suffixes of every format PIL can open (not only save)."""
    from PIL import Image

    Image.init()
    return {e.lower() for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN} | set(IMAGE_SUFFIXES)


def folder_dataset(path: str | os.PathLike) -> DatasetStatus:
    """Your own images: every image PIL reads under `path` (recursively, sorted), named by the folder's name.

    The images are scored exactly as a named set of the same files; results record the folder and the
    content digest. Image names are file stems, so two files with the same stem are an error.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise EqbenchError(f"dataset folder not found: {path} (--datasets takes datasets.yaml names or folders)")
    suffixes = pil_suffixes()
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise EqbenchError(f"dataset folder {folder} holds no image file PIL reads (searched recursively)")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise EqbenchError(f"dataset folder {folder}: {stems[p.stem].relative_to(folder)} and "
                               f"{p.relative_to(folder)} share the image name {p.stem!r}; rename one")
        stems[p.stem] = p
    spec = DatasetSpec(name=folder.name, role="benchmark", images=len(files), path=str(folder),
                       source=f"folder {folder}")
    return DatasetStatus(spec, folder, True, len(files), tuple(files))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(files: list[Path] | tuple[Path, ...]) -> str:
    """One sha256 over (file name, file sha256) pairs: the dataset identity recorded in results."""
    h = hashlib.sha256()
    for p in sorted(files, key=lambda p: p.name):
        h.update(f"{p.name}  {sha256_file(p)}\n".encode())
    return h.hexdigest()


def read_manifest(path: Path) -> dict[str, str]:
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise EqbenchError(f"{path}:{i}: malformed checksum line (expected '<sha256>  <path>')")
        out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def verify(st: DatasetStatus, root: Path) -> tuple[str, list[str]]:
    """('ok'|'mismatch'|'no manifest'|'missing', problems) for one located dataset."""
    spec = st.spec
    if not st.found:
        return "missing", [f"no images in {st.folder}"]
    if not spec.checksums:
        return "no manifest", []
    manifest_path = root / spec.checksums
    if not manifest_path.is_file():
        return "no manifest", [f"manifest {manifest_path} not found"]
    manifest = read_manifest(manifest_path)
    prefix = spec.path.rstrip("/") + "/"
    expected = {k[len(prefix):]: v for k, v in manifest.items() if k.startswith(prefix)}
    if not expected:
        return "no manifest", [f"{manifest_path} lists no file under {prefix}"]
    problems = []
    present = {p.name: p for p in st.files}
    for name, want in sorted(expected.items()):
        if name not in present:
            problems.append(f"{prefix}{name}: missing")
        elif sha256_file(present[name]) != want:
            problems.append(f"{prefix}{name}: checksum mismatch")
    for name in sorted(set(present) - set(expected)):
        problems.append(f"{prefix}{name}: not in the manifest")
    return ("ok" if not problems else "mismatch"), problems


def default_datasets(data_root: str | None) -> list[str]:
    """Set5 and Set14 where the data root has them, else the embedded samples (the main job's data)."""
    catalog = load_catalog()
    root, _ = resolve_data_root(data_root)
    bench = [n for n in ("Set5", "Set14") if status(catalog[n], root).found]
    return bench or ["samples"]


def verify_set(st: DatasetStatus, root: Path) -> tuple[str, list[str]]:
    """('ok'|'mismatch'|'missing'|'count ok, no digests', problems): every image matched by pixel digest.

    A set with digests in the catalogue is matched by content (missing, extra and changed images are
    named); a set without digests can only be checked for its image count, and the state says so. A
    sha256sum manifest (`checksums`), where one exists, is checked as well.
    """
    spec = st.spec
    if not st.found:
        return "missing", [f"no images in {st.folder}; {spec.prepare_hint()}"]
    problems: list[str] = []
    if spec.digests:
        m = match_files(list(st.files), spec.digests)
        problems += m.problems(show=lambda p: _shown(p, root))
        state = "ok"
    else:
        state = "count ok, no digests"
        if st.count != spec.images:
            problems.append(f"{spec.path or spec.name}: {st.count} images, the catalogue expects {spec.images} "
                            "(no digests: only the count can be checked)")
    if spec.checksums and (root / spec.checksums).is_file():
        sums_state, sums_problems = verify(st, root)
        if sums_state == "mismatch":
            problems += sums_problems
    return ("mismatch" if problems else state), problems


def _shown(p: Path, root: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)
