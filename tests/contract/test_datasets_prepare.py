"""`eqbench datasets prepare / verify`: layouts, pixel-digest matching by content, refusals, atomicity,
downloads from a local HTTP server (with a resumed download).

The images are small generated ones and the catalogue is a test catalogue whose digests are computed
here with an independent transcription of the digest definition (../shared/datasets/digests/README.md).
"""

from __future__ import annotations

import hashlib
import http.server
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eqbench.cli import main

N = 4


def _digest(a: np.ndarray) -> str:
    rgb = np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a
    head = f"{rgb.shape[0]}x{rgb.shape[1]}x3\n".encode()
    return hashlib.sha256(head + np.ascontiguousarray(rgb).tobytes()).hexdigest()


@pytest.fixture
def images():
    rng = np.random.default_rng(19)
    out = {f"img_{i + 1:03d}.png": rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8) for i in range(N)}
    out["img_002.png"] = out["img_002.png"][:, :, 0].copy()  # one greyscale image
    return out


@pytest.fixture
def catalog(tmp_path, images, monkeypatch):
    lines = "".join(f"      - {_digest(a)}  {a.shape[0]}x{a.shape[1]}  {n}\n" for n, a in images.items())
    y = tmp_path / "datasets.yaml"
    y.write_text(
        "version: 1\ndatasets:\n"
        f"  Urban100:\n    role: benchmark\n    path: Urban100\n    images: {N}\n    source: test\n"
        f"    url: http://example.invalid/benchmark.tar\n    aliases: [urban100]\n    digests:\n{lines}"
        "  DIV2K-train:\n    role: train\n    path: DIV2K/DIV2K_train_HR\n    images: 3\n    source: test\n"
        "    aliases: [DIV2K_train_HR]\n"
        "  ImageNet-train:\n    role: train\n    path: ImageNet/train\n    images: 3\n    layout: classes\n"
        "    source: test\n    url: https://image-net.org/download.php\n"
    )
    monkeypatch.setenv("EQBENCH_DATASETS_YAML", str(y))
    return y


def _save_tree(root: Path, files: dict[str, np.ndarray]) -> Path:
    for rel, a in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(p)
    return root


def _edsr(images, change=None) -> dict[str, np.ndarray]:
    """EDSR benchmark layout with EDSR's names (img001.png) and LR folders beside HR."""
    files = {f"benchmark/Urban100/HR/{n.replace('_', '')}": a for n, a in images.items()}
    files.update({f"benchmark/Urban100/LR_bicubic/X2/{n.replace('_', '')[:-4]}x2.png": a[::2, ::2]
                  for n, a in images.items()})
    files.update(change or {})
    return {k: v for k, v in files.items() if v is not None}


def _zip(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return dest


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """http.server with byte-range support (the stdlib handler ignores Range), recording the requests."""

    seen: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        type(self).seen.append(rng)
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(data):
            self.send_error(416)
            return
        self.send_response(206)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _RangeHandler.seen = []
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(served), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _prepare(src, root, tmp_path, capsys, name="Urban100", *extra):
    return _cli(["datasets", "prepare", name, "--from", str(src), "--data-root", str(root),
                 "--cache", str(tmp_path / "cache"), "--no-progress", *extra], capsys)


def _hidden_left(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*")] if root.exists() else []


def test_prepare_edsr_zip_over_http_then_verify(catalog, images, server, tmp_path, capsys):
    served, url = server
    _zip(_save_tree(tmp_path / "src", _edsr(images)), served / "benchmark.zip")
    root = tmp_path / "data"
    code, out, err = _prepare(f"{url}/benchmark.zip", root, tmp_path, capsys)
    assert code == 0, err
    assert f"prepared Urban100: {N} images" in out and "verified by pixel digests" in out
    got = sorted(p.name for p in (root / "Urban100").iterdir())
    assert got == sorted(images)  # written under the catalogue's names, not EDSR's img001.png
    for n, a in images.items():
        assert np.array_equal(np.asarray(Image.open(root / "Urban100" / n)), a)
    assert _hidden_left(root) == []
    code, out, err = _cli(["datasets", "verify", "Urban100", "--data-root", str(root)], capsys)
    assert code == 0 and "Urban100" in out and " ok " in out, out + err
    # one changed pixel in the prepared copy: verify fails and names the file
    p = root / "Urban100" / "img_003.png"
    a = np.asarray(Image.open(p)).copy()
    a[5, 7, 1] ^= 1
    Image.fromarray(a).save(p)
    code, out, err = _cli(["datasets", "verify", "Urban100", "--data-root", str(root)], capsys)
    assert code == 2 and "Urban100/img_003.png: pixels differ from the catalogue's img_003.png" in out
    assert "failed verification" in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["changed", "missing", "extra"])
def test_prepare_refuses_naming_the_file(catalog, images, tmp_path, capsys, case):
    change = {
        "changed": {"benchmark/Urban100/HR/img002.png": _one_pixel_changed(images["img_002.png"])},
        "missing": {"benchmark/Urban100/HR/img004.png": None},
        "extra": {"benchmark/Urban100/HR/img999.png": np.zeros((20, 24, 3), np.uint8)},
    }[case]
    src = _zip(_save_tree(tmp_path / "src", _edsr(images, change)), tmp_path / "benchmark.zip")
    root = tmp_path / "data"
    code, out, err = _prepare(src, root, tmp_path, capsys)
    assert code == 2 and "refusing to prepare Urban100" in err and "Traceback" not in err
    want = {"changed": "benchmark/Urban100/HR/img002.png: pixels differ from the catalogue's img_002.png",
            "missing": "img_004.png: missing",
            "extra": "benchmark/Urban100/HR/img999.png: extra image"}[case]
    assert want in err
    assert not (root / "Urban100").exists() and _hidden_left(root) == []  # nothing half-prepared


def _one_pixel_changed(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[3, 4] ^= 1
    return a


def test_resumed_download(catalog, images, server, tmp_path, capsys):
    served, url = server
    archive = _zip(_save_tree(tmp_path / "src", _edsr(images)), served / "benchmark.zip")
    from eqbench.data.prepare import download

    cache = tmp_path / "cache"
    cache.mkdir()
    first = download(f"{url}/benchmark.zip", cache, progress=False)  # learn the cache file's name
    data = archive.read_bytes()
    first.unlink()
    part = first.with_name(first.name + ".part")
    part.write_bytes(data[: len(data) // 3])  # an interrupted download
    _RangeHandler.seen = []
    again = download(f"{url}/benchmark.zip", cache, progress=False)
    assert _RangeHandler.seen == [f"bytes={len(data) // 3}-"]
    assert again.read_bytes() == data and not part.exists()


@pytest.mark.parametrize("layout", ["basicsr-gtmod12-tar", "selfexsr-folder", "flat-targz"])
def test_other_layouts(catalog, images, tmp_path, capsys, layout):
    if layout == "basicsr-gtmod12-tar":
        files = {f"datasets/urban100/GTmod12/{n}": a for n, a in images.items()}
        files["datasets/urban100/LRbicx2/img_001.png"] = images["img_001.png"][::2, ::2]
    elif layout == "selfexsr-folder":
        files = {f"Urban100/image_SRF_2/{n[:-4]}_SRF_2_HR.png": a for n, a in images.items()}
        files.update({f"Urban100/image_SRF_4/{n[:-4]}_SRF_4_HR.png": a[:16, :16] for n, a in images.items()})
        files.update({f"Urban100/image_SRF_2/{n[:-4]}_SRF_2_LR.png": a[::2, ::2] for n, a in images.items()})
    else:
        files = {f"x/pictures/{n.replace('.png', '.bmp')}": a for n, a in images.items()}  # flat, re-encoded
    tree = _save_tree(tmp_path / "src", files)
    src = tree
    if layout.endswith("tar") or layout.endswith("targz"):
        src = tmp_path / ("s.tar" if layout.endswith("tar") else "s.tar.gz")
        with tarfile.open(src, "w:gz" if layout.endswith("gz") else "w") as t:
            t.add(tree, arcname=".")
    root = tmp_path / "data"
    code, out, err = _prepare(src, root, tmp_path, capsys)
    assert code == 0, err
    assert sorted(p.name for p in (root / "Urban100").iterdir()) == sorted(images)
    code, out, err = _cli(["datasets", "verify", "Urban100", "--data-root", str(root)], capsys)
    assert code == 0, out + err


def test_no_digest_sets_check_the_count_and_say_so(catalog, tmp_path, capsys):
    rng = np.random.default_rng(1)
    tree = _save_tree(tmp_path / "src", {f"DIV2K_train_HR/{i:04d}.png": rng.integers(0, 256, (8, 8, 3), np.uint8)
                                         for i in range(1, 4)})
    root = tmp_path / "data"
    code, out, err = _prepare(tree, root, tmp_path, capsys, "DIV2K-train")
    assert code == 0, err
    assert "count only (no digests)" in out and "has no digests" in out
    code, out, _ = _cli(["datasets", "verify", "DIV2K-train", "--data-root", str(root)], capsys)
    assert code == 0 and "count ok, no digests" in out
    (root / "DIV2K" / "DIV2K_train_HR" / "0003.png").unlink()
    code, out, _ = _cli(["datasets", "verify", "DIV2K-train", "--data-root", str(root)], capsys)
    assert code == 2 and "2 images, the catalogue expects 3" in out
    # a source with the wrong count is refused; the existing copy needs --force
    code, _, err = _prepare(tree, root, tmp_path, capsys, "DIV2K-train")
    assert code == 2 and "already exists" in err and "--force" in err
    (tree / "DIV2K_train_HR" / "0001.png").unlink()
    code, _, err = _prepare(tree, root, tmp_path, capsys, "DIV2K-train", "--force")
    assert code == 2 and "found 2 images, the catalogue expects 3" in err
    assert sorted(p.name for p in (root / "DIV2K" / "DIV2K_train_HR").iterdir()) == ["0001.png", "0002.png"]


def test_classes_layout_and_missing_set_hint(catalog, tmp_path, capsys):
    rng = np.random.default_rng(2)
    tree = _save_tree(tmp_path / "src", {f"ILSVRC/train/n0{c}/{c}_{i}.JPEG": rng.integers(0, 256, (8, 8, 3), np.uint8)
                                         for c, i in [(1, 1), (1, 2), (2, 1)]})
    root = tmp_path / "data"
    from eqbench.data.datasets import locate
    from eqbench.errors import EqbenchError

    with pytest.raises(EqbenchError) as e:
        locate("ImageNet-train", root)
    assert "prepare it with `eqbench datasets prepare ImageNet-train --from" in str(e.value)
    assert "\n" not in str(e.value)
    code, out, err = _prepare(tree, root, tmp_path, capsys, "ImageNet-train")
    assert code == 0, err
    got = sorted(p.relative_to(root / "ImageNet" / "train").as_posix() for p in (root / "ImageNet").rglob("*.JPEG"))
    assert got == ["n01/1_1.JPEG", "n01/1_2.JPEG", "n02/2_1.JPEG"]
    assert locate("ImageNet-train", root).count == 3


def test_archive_escaping_its_folder_is_refused(catalog, tmp_path, capsys):
    src = tmp_path / "evil.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("../outside.png", b"x")
    code, _, err = _prepare(src, tmp_path / "data", tmp_path, capsys)
    assert code == 2 and "outside the extraction folder" in err
    assert not (tmp_path / "outside.png").exists()
