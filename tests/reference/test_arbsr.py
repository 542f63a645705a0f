"""ArbSR: parity with the official ArbRCAN (incl. an asymmetric pair), odd sizes, knowledge-transfer
interface, bad input and checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

import eqbench
from baselines.arbsr import ArbSR
from baselines.arbsr_blocks import ScaleAwareAdapt
from baselines.rcan import ResidualGroup
from eqbench.errors import EqbenchError
from eqbench.train.transfer import batch_scale, transfer_l1

FIX = Path(__file__).parents[1] / "fixtures"
# float32 round-off (expert mixing reassociated, grid normalised differently); measured <= 5.4e-7
TOL = 1e-5


def _cases():
    d = np.load(FIX / "arbrcan" / "cases.npz")
    lr = torch.from_numpy(d["lr"])
    return [(str(n), lr, tuple(int(v) for v in d[f"out_size_{i}"]), tuple(float(v) for v in d[f"scale_{i}"]),
             torch.from_numpy(d[f"sr_{i}"])) for i, n in enumerate(d["names"])]


def fixture_model() -> ArbSR:
    m = ArbSR([ResidualGroup(16, 4, 2) for _ in range(2)], n_feats=16, K=1)
    return m.load_official(FIX / "arbrcan" / "checkpoint.pt").eval()


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_official_arbrcan_parity(case):
    name, lr, out_size, scale, ref = case
    with torch.no_grad():
        sr = fixture_model().upsample(lr, out_size, scale=scale)
    assert (sr - ref.clamp(0, 1)).abs().max().item() <= TOL


def test_default_scale_is_out_size_over_input():
    m = fixture_model()
    name, lr, out_size, scale, ref = _cases()[2]  # 1.5 x 4: out_size / input is exactly the scale
    with torch.no_grad():
        assert torch.equal(m.upsample(lr, out_size), m.upsample(lr, out_size, scale=scale))
        # 12 x 3.3 -> 40 rows: without scale= the network is told 40/12, not 3.3
        assert (m.upsample(lr, (40, 33)) - m.upsample(lr, (40, 33), scale=3.3)).abs().max() > 1e-3


def test_odd_mask_padding_keeps_the_even_computation_away_from_the_border():
    """The official mask branch crashes on odd sizes (PROVENANCE); ours pads bottom/right and crops. Away
    from the padded border (the hourglass sees ~8 px: conv, pool /2, two convs at half size, bilinear x2,
    conv) the adapter must equal the even-size computation — it would not if the padding moved the pooling
    grid (top/left padding) or the crop were misplaced."""
    torch.manual_seed(0)
    adapt = ScaleAwareAdapt(8).eval()
    x = torch.randn(1, 8, 32, 30)
    inv = torch.tensor([[0.5, 0.25]])
    with torch.no_grad():
        even = adapt(x, inv)
        odd = adapt(x[:, :, :31, :29], inv)
    assert odd.shape[-2:] == (31, 29)
    assert (odd[:, :, :21, :19] - even[:, :, :21, :19]).abs().max().item() <= 1e-6  # same ops, same order


@pytest.mark.parametrize("lr_hw,out_size", [((11, 9), (22, 18)), ((11, 10), (17, 40)), ((12, 9), (40, 30)),
                                            ((5, 1), (10, 3))])
def test_odd_and_degenerate_sizes_run(lr_hw, out_size):
    m = fixture_model()
    lr = _cases()[0][1][:, :, :lr_hw[0], :lr_hw[1]]
    with torch.no_grad():
        sr = m.upsample(lr, out_size)
    assert sr.shape[-2:] == out_size and torch.isfinite(sr).all()


def test_upsampler_chunking_is_exact():
    m = fixture_model()
    name, lr, out_size, scale, ref = _cases()[1]
    with torch.no_grad():
        whole = m.upsample(lr, out_size, scale=scale)
        m.sa_upsample.chunk_pixels = 50  # one HR row per chunk
        rows = m.upsample(lr, out_size, scale=scale)
    assert (whole - rows).abs().max().item() <= 1e-6  # per-pixel operations: chunking changes nothing


def test_paper_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(eqbench.create_method("arbsr")) == 16_926_151  # official ArbRCAN, incl. 24 frozen mean-shift
    # EDSR 32x256 without upsampler (38,369,307) + 16 adapters (2,401,511 each: 4 experts of 256x256x3x3)
    # + upsampler 70,406; the paper's Table 3 says 41.9M
    assert count(eqbench.create_method("arbsr", backbone="edsr")) == 76_863_889


@pytest.mark.parametrize("backbone", ["rcan", "edsr"])
def test_knowledge_transfer_interface(backbone):
    torch.manual_seed(0)
    student = eqbench.create_method("arbsr", size="tiny", backbone=backbone)
    student.eval()  # BatchNorm running statistics: the teacher comparison below is deterministic
    lr = torch.rand(2, 3, 10, 12)
    sr, feats = student.forward_with_features(lr, (20, 24))
    n_adapt = len(student.sa_adapt)
    assert len(feats) == n_adapt == (len(student.body) - 1) // student.K
    assert all(f.shape == (2, student.head[0].out_channels, 10, 12) for f in feats)
    assert torch.equal(sr.clamp(0, 1), student.upsample(lr, (20, 24)))
    teacher = student.make_teacher()
    t_feats = teacher.features(lr)
    assert [f.shape for f in t_feats] == [f.shape for f in feats]
    loss = transfer_l1(feats, t_feats)
    assert loss > 0
    loss.backward()
    assert student.sa_adapt[0].adapt.weight_pool.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in teacher.parameters())
    with torch.no_grad():  # adapters switched off: the student's features are the teacher's
        for a in student.sa_adapt:
            a.adapt.weight_pool.zero_()
        assert transfer_l1(student.forward_with_features(lr, (20, 24))[1], t_feats).item() == 0.0


def test_transfer_scales():
    lr = torch.zeros(1, 3, 12, 10)
    assert batch_scale(lr, (24, 20)) == 2
    assert batch_scale(lr, (48, 40)) == 4
    assert batch_scale(lr, (40, 33)) is None  # x3.3: not an integer scale
    assert batch_scale(lr, (18, 40)) is None  # asymmetric
    assert batch_scale(lr, (60, 50)) == 5  # integer, but the trainer has teachers only for the scales given


def test_teacher_and_init_from_fixed_scale_checkpoint(tmp_path):
    src = eqbench.create_method("arbsr", size="tiny")
    sd = {k: v + 1.0 for k, v in src.state_dict().items()
          if not k.startswith(("sa_adapt.", "sa_upsample.")) and "num_batches" not in k}
    sd["tail.0.0.weight"] = torch.zeros(128, 32, 3, 3)  # RCAN's fixed-scale upsampler: ignored
    torch.save(sd, tmp_path / "rcan_x2.pt")
    student = eqbench.create_method("arbsr", size="tiny")
    adapt_before = student.sa_adapt[0].adapt.weight_pool.clone()
    student.load_fixed_scale_backbone(tmp_path / "rcan_x2.pt")
    assert torch.equal(student.head[0].weight, sd["head.0.weight"])
    assert torch.equal(student.sa_adapt[0].adapt.weight_pool, adapt_before)
    teacher = student.make_teacher().load_official_backbone(tmp_path / "rcan_x2.pt")
    assert torch.equal(teacher.body[0].body[0].body[0].weight, sd["body.0.body.0.body.0.weight"])
    del sd["body.1.body.0.body.0.weight"]
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(EqbenchError, match="lacks 1 backbone keys"):
        teacher.load_official_backbone(tmp_path / "broken.pt")


def test_bad_options_and_input():
    with pytest.raises(EqbenchError, match="did you mean 'rcan'"):
        eqbench.create_method("arbsr", size="tiny", backbone="rcna")
    with pytest.raises(EqbenchError, match="no option 'variant'"):
        eqbench.create_method("arbsr", size="tiny", variant="official")
    m = eqbench.create_method("arbsr", size="tiny")
    lr = torch.rand(1, 3, 12, 10)
    with pytest.raises(EqbenchError, match="smaller than the input"):
        m.upsample(lr, (18, 8))  # factor below 1 on the width
    with pytest.raises(EqbenchError, match="below 1"):
        m.upsample(lr, (18, 40), scale=(1.5, 0.9))
    with pytest.raises(EqbenchError, match="does not match scale"):
        m.upsample(lr, (18, 40), scale=(4.0, 1.5))  # axes swapped


def test_wrong_checkpoints(tmp_path):
    m = ArbSR([ResidualGroup(16, 4, 2) for _ in range(2)], n_feats=16, K=1)
    with pytest.raises(EqbenchError, match="missing keys.*unexpected keys"):
        m.load_official(FIX / "metardn" / "checkpoint.pt")  # MetaSR weights
    with pytest.raises(EqbenchError, match="LIIF-style"):
        m.load_official(FIX / "metasr_liif" / "checkpoint.pth")
    with pytest.raises(EqbenchError, match="shape mismatches"):
        eqbench.create_method("arbsr", size="tiny").load_official(FIX / "arbrcan" / "checkpoint.pt")
    with pytest.raises(EqbenchError, match="missing keys"):
        arb_edsr = eqbench.create_method("arbsr", size="tiny", backbone="edsr")
        arb_edsr.load_official(FIX / "arbrcan" / "checkpoint.pt")  # the other backbone
    torch.save({"args": argparse.Namespace(scale=2.0)}, tmp_path / "code.pt")
    with pytest.raises(EqbenchError, match="not a plain weights file"):
        m.load_official(tmp_path / "code.pt")
