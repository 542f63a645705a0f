"""The trainer, in-process, on a toy method and a synthetic data root (seconds, not minutes).

Bit-identity checks use torch.equal on every tensor: on CPU the same seed must give the same weights.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from eqbench.errors import EqbenchError
from eqbench.train import TrainConfig, train
from eqbench.train import checkpoints as ck
from tests.helpers.train_toy import recipe_file, toy, toy_data_root  # noqa: F401  (fixtures)


def cfg(toy, out="run", kind="points", iters=6, recipe=None, **kw) -> TrainConfig:  # noqa: F811
    rfile = recipe_file(toy.tmp / f"recipe-{out}.yaml", kind=kind, iters=iters, **(recipe or {}))
    kw = {"save_every": 2, "keep": 10, "progress": False, **kw}
    return TrainConfig(out=toy.tmp / out, method="toy-train", recipe=rfile, **kw)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def crash_copy(toy, src: str, dst: str, step: int):  # noqa: F811
    """The on-disk state a run killed after committing checkpoint `step` leaves behind."""
    shutil.copytree(toy.tmp / src, toy.tmp / dst)
    for d in ck.list_checkpoints(toy.tmp / dst / "checkpoints"):
        if int(d.name) > step:
            shutil.rmtree(d)
    (toy.tmp / dst / "final.safetensors").unlink()
    return toy.tmp / dst


def test_same_seed_same_weights_bit_for_bit(toy):  # noqa: F811
    a = load_file(str(train(cfg(toy, "a", seed=3, options=(("dropout", 0.2),)))))
    b = load_file(str(train(cfg(toy, "b", seed=3, options=(("dropout", 0.2),)))))
    c = load_file(str(train(cfg(toy, "c", seed=4, options=(("dropout", 0.2),)))))
    assert same(a, b)
    assert not same(a, c)


def test_dataloader_workers_do_not_change_the_weights(toy):  # noqa: F811
    a = load_file(str(train(cfg(toy, "a", kind="pairs"))))
    b = load_file(str(train(cfg(toy, "b", kind="pairs", workers=2))))
    assert same(a, b)


def test_resume_another_folder_into_a_new_out(toy):  # noqa: F811
    full = load_file(str(train(cfg(toy, "full"))))
    crashed = crash_copy(toy, "full", "crashed", 2)
    new = toy.tmp / "new"
    assert same(full, load_file(str(train(TrainConfig(out=new, resume=crashed, progress=False)))))
    assert [d.name for d in ck.list_checkpoints(new / "checkpoints")][-1] == "00000006"


@pytest.mark.parametrize("kind,points", [("points", True), ("window", False), ("pairs", True)])
def test_resume_after_a_crash_is_bit_identical(toy, kind, points):  # noqa: F811
    opts = (("dropout", 0.2), ("points", points))  # dropout: the RNG state must be restored too
    full = load_file(str(train(cfg(toy, "full", kind=kind, options=opts))))
    for step in (2, 4):
        run = crash_copy(toy, "full", f"crash{step}", step)
        partial = run / "checkpoints" / f".tmp-{step + 2:08d}-99999"  # killed while writing the next one
        partial.mkdir()
        (partial / "weights.safetensors").write_bytes(b"\0" * 10)
        resumed = load_file(str(train(TrainConfig(out=run, resume=True, progress=False))))
        assert same(full, resumed), f"resume from step {step} diverged"
        steps = [int(line.split(",")[0]) for line in (run / "log.csv").read_text().splitlines()[1:]]
        assert steps == sorted(set(steps))  # the redone part is logged once
        assert not partial.exists()
        # the run's settings (save_every=2, keep=10) carry over without being given again
        assert [d.name for d in ck.list_checkpoints(run / "checkpoints")] == ["00000002", "00000004", "00000006"]


@pytest.mark.parametrize("kind,old", [("points", "liif"), ("window", "eqsr")])
def test_a_checkpoint_with_the_old_batch_kind_name_resumes_bit_identically(toy, kind, old):  # noqa: F811
    full = load_file(str(train(cfg(toy, "full", kind=kind, options=(("points", kind == "points"),)))))
    run = crash_copy(toy, "full", "old", 4)
    for d in ck.list_checkpoints(run / "checkpoints"):  # as written before the kinds were renamed
        meta = json.loads((d / "meta.json").read_text())
        assert meta["recipe"]["sampler"]["kind"] == kind
        meta["recipe"]["sampler"]["kind"] = meta["sampler"] = old
        (d / "meta.json").write_text(json.dumps(meta))
    assert same(full, load_file(str(train(TrainConfig(out=run, resume=True, progress=False)))))
    meta = json.loads((run / "checkpoints" / "00000006" / "meta.json").read_text())
    assert meta["recipe"]["sampler"]["kind"] == meta["sampler"] == kind


def test_two_phases_start_from_ema_and_resume_at_the_boundary(toy):  # noqa: F811
    phases = [{"name": "pre", "iters": 4, "lr": 1e-2, "data": ["toy"]},
              {"name": "ft", "iters": 4, "lr": 1e-2, "data": ["toy"], "start": "ema"}]
    rec = {"phases": phases, "ema": 0.5}
    full = load_file(str(train(cfg(toy, "full", recipe=rec))))
    for step in (4, 6):  # at the phase boundary (the EMA carry happens after the resume) and inside
        run = crash_copy(toy, "full", f"crash{step}", step)
        assert same(full, load_file(str(train(TrainConfig(out=run, resume=True, progress=False)))))
    # With a negligible phase-2 learning rate, phase 2 ends where it started: at phase 1's EMA weights.
    frozen = [phases[0], {**phases[1], "lr": 1e-30}]
    two = load_file(str(train(cfg(toy, "two", recipe={"phases": frozen, "ema": 0.5}))))
    pre = toy.tmp / "two" / "checkpoints" / "00000004"
    ema1, raw1 = load_file(str(pre / "ema.safetensors")), load_file(str(pre / "weights.safetensors"))
    assert all(torch.allclose(two[k], ema1[k], atol=1e-12, rtol=0) for k in two)
    assert not same(ema1, raw1)


def test_dense_fallback_supervises_the_same_pixels_as_query(toy):  # noqa: F811
    from eqbench.data.batches import collate
    from eqbench.data.io import load_image
    from eqbench.train.data import KeyedSamples
    from eqbench.train.recipes import recipe_from_dict
    from eqbench.train.step import predict
    from tests.helpers.train_toy import Toy, recipe_dict

    imgs = [load_image(p) for p in sorted((toy.root / "toy").glob("*.png"))]
    torch.manual_seed(0)
    q = Toy(points=True)
    d = Toy(points=False)
    d.load_state_dict(q.state_dict())
    for kind in ("points", "window"):
        sampler = recipe_from_dict({**recipe_dict(kind), "method": "toy-train"}).sampler
        ds = KeyedSamples(imgs, sampler, seed=0)
        batch = collate([ds[(0, k, k, 0.0, 0.0)] for k in range(3)])
        with torch.no_grad():
            a, b = predict(q, batch, kind), predict(d, batch, kind)
        assert a.shape == b.shape == batch["gt"].shape
        # Same arithmetic per pixel; only conv/grid_sample batching differs (float32 reassociation).
        assert torch.allclose(a, b, atol=1e-5, rtol=0), kind


def test_metadata_records_the_run(toy):  # noqa: F811
    final = train(cfg(toy, "m", seed=5, options=(("feats", 6),)))
    meta = json.loads((toy.tmp / "m" / "checkpoints" / "00000006" / "meta.json").read_text())
    assert meta["method"] == "toy-train" and meta["options"] == {"feats": 6} and meta["seed"] == 5
    assert meta["recipe"]["sampler"]["kind"] == "points" and meta["resize"] == "pil-bicubic"
    assert meta["data"]["main"]["images"] == 8 and len(meta["data"]["main"]["digest"]["toy"]) == 64
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=str(__import__("eqbench").__file__.rsplit("/", 2)[0])).stdout.strip()
    assert meta["git"]["sha"] == head and meta["step"] == 6
    from safetensors import safe_open

    with safe_open(str(final), "pt") as f:
        assert f.metadata()["method"] == "toy-train" and f.metadata()["weights"] == "model"


def test_validation_and_logs(toy):  # noqa: F811
    train(cfg(toy, "v", val_data="val", val_every=3, val_scales=("2", "3"), log_every=2))
    val = (toy.tmp / "v" / "val.csv").read_text().splitlines()
    assert val[0] == "step,dataset,scale,protocol,psnr_y,images"
    rows = [r.split(",") for r in val[1:]]
    assert [(r[0], r[2]) for r in rows] == [("3", "2"), ("3", "3"), ("6", "2"), ("6", "3")]
    assert all(10 < float(r[4]) < 60 and r[5] == "2" for r in rows)
    log = (toy.tmp / "v" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in log[1:]] == ["2", "4", "6"]
    run = crash_copy(toy, "v", "v2", 2)  # resumed without the validation flags: they carry over
    train(TrainConfig(out=run, resume=True, progress=False))
    assert (run / "val.csv").read_text().splitlines() == val
    assert (run / "log.csv").read_text().splitlines()[0] == log[0]


def test_knowledge_transfer(toy, monkeypatch):  # noqa: F811
    from eqbench.train import transfer
    from tests.helpers.train_toy import ToyTransfer

    torch.manual_seed(1)
    teacher_file = toy.tmp / "teacher.pt"
    torch.save(ToyTransfer().state_dict(), teacher_file)
    opts, rec = (("transfer", True),), {"knowledge_transfer": 1.0}
    teachers = ((2, str(teacher_file)),)
    base = load_file(str(train(cfg(toy, "a", kind="pairs", options=opts))))
    # The transfer term is taken on the x2 batches only (the teacher's scale), and it changes the weights.
    seen = []
    real = transfer.transfer_l1
    monkeypatch.setattr("eqbench.train.step.transfer_l1", lambda s, t: seen.append(1) or real(s, t))
    kt = load_file(str(train(cfg(toy, "b", kind="pairs", options=opts, recipe=rec, teachers=teachers))))
    assert not same(base, kt)
    from eqbench.train.data import batch_scale

    n_x2 = sum(batch_scale(0, s, ((1.5, 1.5), (2.0, 2.0), (2.5, 2.5), (1.5, 3.0))) == (2.0, 2.0) for s in range(6))
    assert len(seen) == n_x2 > 0
    meta = json.loads((toy.tmp / "b" / "checkpoints" / "00000006" / "meta.json").read_text())
    assert meta["teachers"] == {"2": str(teacher_file)}
    with pytest.raises(EqbenchError, match="has no forward_with_features / make_teacher"):
        train(cfg(toy, "c", kind="pairs", recipe=rec, teachers=teachers))
    with pytest.raises(EqbenchError, match="needs the fixed-scale teachers: --teacher"):
        train(cfg(toy, "d", kind="pairs", options=opts, recipe=rec))
    with pytest.raises(EqbenchError, match="--teacher is only used by recipes with knowledge_transfer"):
        train(cfg(toy, "e", kind="pairs", options=opts, teachers=teachers))


# ---- bad input ----

def test_too_few_usable_images_for_the_batch(toy):  # noqa: F811
    with pytest.raises(EqbenchError, match=r"only 2 usable training image\(s\) in few .*batch of 4"):
        train(cfg(toy, train_data=("few",), batch_size=4))


def test_images_smaller_than_the_largest_crop(toy):  # noqa: F811
    with pytest.raises(EqbenchError, match="no usable training image in small: all 3 are smaller"):
        with pytest.warns(UserWarning, match="skipping 3 training image"):
            train(cfg(toy, train_data=("small",)))
    with pytest.warns(UserWarning, match="skipping 2 training image"):
        train(cfg(toy, "mixed", train_data=("mixed",)))
    meta = json.loads((toy.tmp / "mixed" / "checkpoints" / "00000006" / "meta.json").read_text())
    assert meta["data"]["main"]["skipped_too_small"] == 2 and meta["data"]["main"]["images"] == 3


def test_resume_from_another_run_is_refused(toy):  # noqa: F811
    train(cfg(toy, "r"))
    with pytest.raises(EqbenchError, match='a run with options {}, but this run has options {"feats": 4}'):
        train(cfg(toy, "r", resume=True, options=(("feats", 4),)))
    with pytest.raises(EqbenchError, match='it is a run with method "toy-train"'):
        train(TrainConfig(out=toy.tmp / "r", resume=True, method="bicubic", progress=False))
    with pytest.raises(EqbenchError, match="seed"):
        train(cfg(toy, "r", resume=True, seed=9))
    with pytest.raises(EqbenchError, match="holds no complete checkpoint"):
        train(TrainConfig(out=toy.tmp / "val-nothing", resume=toy.tmp, progress=False))
    with pytest.raises(EqbenchError, match="already holds a training run .* pass --resume"):
        train(cfg(toy, "r"))


def test_corrupt_checkpoint_is_named(toy):  # noqa: F811
    train(cfg(toy, "r"))
    w = toy.tmp / "r" / "checkpoints" / "00000006" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(EqbenchError, match="00000006: weights.safetensors is corrupt .* previous checkpoint"):
        train(TrainConfig(out=toy.tmp / "r", resume=True, progress=False))


def test_unwritable_output_folder(toy):  # noqa: F811
    (toy.tmp / "afile").write_text("x")
    with pytest.raises(EqbenchError, match="cannot write to the output folder"):
        train(TrainConfig(out=toy.tmp / "afile" / "run", method="toy-train", train_data=("toy",),
                          progress=False))


def test_disk_full_keeps_the_last_good_checkpoint(toy, monkeypatch):  # noqa: F811
    full = load_file(str(train(cfg(toy, "full"))))
    real = ck._write

    def failing(path, data):
        if "00000004" in str(path.parent) and path.name == "state.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(ck, "_write", failing)
    with pytest.raises(EqbenchError, match=r"No space left on device; the last good checkpoint \(.*0002\)"):
        train(cfg(toy, "dies"))
    root = toy.tmp / "dies" / "checkpoints"
    assert [d.name for d in root.iterdir()] == ["00000002"]  # no partial folder left
    monkeypatch.setattr(ck, "_write", real)
    assert same(full, load_file(str(train(TrainConfig(out=toy.tmp / "dies", resume=True, progress=False)))))


def test_diverging_loss_stops_with_a_clear_error(toy, monkeypatch):  # noqa: F811
    from eqbench.train import trainer

    calls = []
    real = trainer.train_step

    def step(*a, **kw):
        calls.append(1)
        return float("nan") if len(calls) == 3 else real(*a, **kw)

    monkeypatch.setattr(trainer, "train_step", step)
    with pytest.raises(EqbenchError, match="the loss became nan at iteration 3; lower the learning rate"):
        train(cfg(toy, "nan"))
    assert [d.name for d in ck.list_checkpoints(toy.tmp / "nan" / "checkpoints")] == ["00000002"]


def test_parameter_free_method_and_unknown_recipe(toy):  # noqa: F811
    with pytest.raises(EqbenchError, match="no trainable parameters"):
        train(TrainConfig(out=toy.tmp / "b", method="bicubic", train_data=("toy",), progress=False))
    with pytest.raises(EqbenchError, match="has no recipe 'cpuu' \\(did you mean 'cpu'"):
        train(TrainConfig(out=toy.tmp / "l", method="toy-train", recipe="cpuu", progress=False))
