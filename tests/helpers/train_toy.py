"""A tiny SRMethod for the training tests (not a real method; registered only while a test needs it).

Conv encoder + bilinear feature sampling at the query coordinates + a linear head with the cell,
plus a bilinear image skip. `points=True` answers `query` (LIIF-style); `points=False` has only the
dense `_upsample`, as MetaSR/ArbSR, so the trainer's dense fallback is exercised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eqbench.data.batches import make_coord
from eqbench.method import METHODS, SRMethod, register_method

NAME = "toy-train"


class Toy(SRMethod):
    feature_taps = ("enc.0", "enc.2")

    def __init__(self, feats: int = 8, points: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.points = points
        self.enc = nn.Sequential(nn.Conv2d(3, feats, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(feats, feats, 3, padding=1), nn.Dropout(dropout))
        self.head = nn.Linear(feats + 2, 3)

    def _answer(self, lr, coord, cell):
        n, shape = lr.shape[0], coord.shape[1:-1]
        grid = coord.reshape(n, -1, 1, 2).flip(-1)
        feat = self.enc(lr)
        f = F.grid_sample(feat, grid, mode="bilinear", align_corners=False, padding_mode="border")
        rgb = F.grid_sample(lr, grid, mode="bilinear", align_corners=False, padding_mode="border")
        f, rgb = f[..., 0].transpose(1, 2), rgb[..., 0].transpose(1, 2)
        rel_cell = cell.reshape(n, -1, 2) * torch.tensor(lr.shape[-2:], dtype=lr.dtype, device=lr.device)
        return (self.head(torch.cat([f, rel_cell], -1)) + rgb).reshape(n, *shape, 3)

    @property
    def query_modes(self):
        return ("points",) if self.points else ()

    def query_points(self, lr, coord, cell):
        if not self.points:
            return super().query_points(lr, coord, cell)
        return self._answer(lr, coord, cell)

    def _upsample(self, lr, out_size):
        H, W = out_size
        coord = make_coord(H, W).to(lr).expand(lr.shape[0], H, W, 2)
        cell = torch.tensor([2 / H, 2 / W], dtype=lr.dtype, device=lr.device).expand_as(coord)
        return self._answer(lr, coord, cell).permute(0, 3, 1, 2)


class ToyTeacher(nn.Module):
    def __init__(self, student: Toy) -> None:
        super().__init__()
        import copy

        self.enc = copy.deepcopy(student.enc)

    def features(self, lr):
        return [self.enc[0](lr), self.enc(lr)]

    def load_official_backbone(self, path):
        sd = torch.load(path, weights_only=True)
        self.enc.load_state_dict({k[4:]: v for k, v in sd.items() if k.startswith("enc.")})
        return self


class ToyTransfer(Toy):
    """With ArbSR's knowledge-transfer hooks (forward_with_features, make_teacher)."""

    def forward_with_features(self, lr, out_size):
        return self._upsample(lr, out_size), [self.enc[0](lr), self.enc(lr)]

    def make_teacher(self):
        return ToyTeacher(self)


def make_toy(*, size: str = "tiny", feats: int = 8, points: bool = True, dropout: float = 0.0,
             transfer: bool = False) -> Toy:
    return (ToyTransfer if transfer else Toy)(feats=feats, points=points, dropout=dropout)


def register() -> None:
    if NAME not in METHODS:
        register_method(NAME, description="test-only toy method")(make_toy)


def unregister() -> None:
    METHODS._items.pop(NAME, None)


# ---- a synthetic data root + catalogue, and small recipes, so trainer tests run in seconds ----

def _image(rng, h: int, w: int):
    import numpy as np

    # Smooth colour gradients + a few edges: enough structure for a resize to matter.
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = rng.uniform(0.02, 0.2, size=3)
    img = 127 + 100 * np.stack([np.sin(a[0] * y + a[1] * x), np.cos(a[1] * y - a[2] * x),
                                np.sin(a[2] * (x + y))], axis=-1)
    img[h // 3:, : w // 2] *= 0.5
    return np.clip(img, 0, 255).astype(np.uint8)


def write_catalog(root):
    """root/{toy (8 images 64x64), small (3 of 16x16), mixed (3 + 2 small), few (2), val (2), big (2)}."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(0)
    sets = {"toy": [(64, 64)] * 6 + [(72, 64), (64, 80)], "small": [(16, 16)] * 3,
            "mixed": [(64, 64)] * 3 + [(20, 20)] * 2, "few": [(64, 64)] * 2, "val": [(40, 40), (36, 44)],
            "big": [(200, 200)] * 2}
    lines = ["version: 1", "datasets:"]
    for name, sizes in sets.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(_image(rng, h, w)).save(root / name / f"{i:02d}.png")
        role = "benchmark" if name == "val" else "train"
        lines += [f"  {name}:", f"    role: {role}", f"    path: {name}", f"    images: {len(sizes)}"]
    cat = root / "datasets.yaml"
    cat.write_text("\n".join(lines) + "\n")
    return cat


def recipe_dict(kind: str = "points", iters: int = 6, batch: int = 2, **extra) -> dict:
    kind = {"liif": "points", "eqsr": "window"}.get(kind, kind)  # the old names give the same recipe
    sampler = {"points": {"kind": "points", "lr_size": 12, "scale_min": 1.5, "scale_max": 3, "sample_q": 100},
               "window": {"kind": "window", "lr_size": 12, "scale_min": 1.5, "scale_max": 3, "window": 16},
               "pairs": {"kind": "pairs", "lr_size": 12, "resize": "matlab-bicubic",
                         "scales": ["1.5", "2", "2.5", "1.5x3"]}}[kind]
    phases = extra.pop("phases", [{"name": "main", "iters": iters, "lr": 1e-2, "data": ["toy"],
                                   "milestones": [iters // 2]}])
    return {"method": "*", "name": "test", "sampler": sampler, "batch_size": batch, "phases": phases, **extra}


def recipe_file(path, **kw) -> str:
    import yaml

    path.write_text(yaml.safe_dump(recipe_dict(**kw)))
    return str(path)


# ---- pytest fixtures (import them into a test module by name) ----
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def toy_data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-data")
    write_catalog(root)
    return root


@pytest.fixture
def toy(toy_data_root, monkeypatch, tmp_path):
    """The toy method registered, the synthetic catalogue active; yields the paths tests need."""
    from types import SimpleNamespace

    register()
    monkeypatch.setenv("EQBENCH_DATASETS_YAML", str(toy_data_root / "datasets.yaml"))
    monkeypatch.setenv("EQBENCH_DATA", str(toy_data_root))
    try:
        yield SimpleNamespace(root=toy_data_root, tmp=tmp_path)
    finally:
        unregister()


def cli_script(tmp):
    """A script that registers the toy method and runs the eqbench CLI (for subprocess/torchrun tests)."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    path = Path(tmp) / "eqbench_toy_cli.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(here)!r})\nimport train_toy\ntrain_toy.register()\n"
                    "from eqbench.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return path


def subprocess_env(toy) -> dict:
    import os
    from pathlib import Path

    import eqbench

    env = dict(os.environ)
    root = str(Path(eqbench.__file__).resolve().parents[1])
    env.update(PYTHONPATH=root + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               EQBENCH_DATASETS_YAML=str(toy.root / "datasets.yaml"), EQBENCH_DATA=str(toy.root))
    return env
