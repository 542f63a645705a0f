"""LIIF and LTE: parity with the official code (golden fixtures), parameter counts, chunking, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import eqbench
from eqbench.errors import EqbenchError
from tests.conftest import FIXTURES

GOLD = FIXTURES / "liif_lte"
SMALL_EDSR = dict(n_resblocks=2, n_feats=8)
SMALL_RDN = dict(G0=8, D=2, C=2, G=8)
SMALL_SWIN = dict(embed_dim=12, depths=(2, 2), num_heads=(2, 2), window_size=8)
CONFIGS = {
    "liif_edsr": ("liif", dict(encoder="edsr-baseline", encoder_args=SMALL_EDSR, hidden=(16, 16))),
    "liif_rdn": ("liif", dict(encoder="rdn", encoder_args=SMALL_RDN, hidden=(16, 16))),
    "lte_edsr": ("lte", dict(encoder="edsr-baseline", encoder_args=SMALL_EDSR, hidden_dim=16, mlp_hidden=(16, 16))),
    "lte_swinir": ("lte", dict(encoder="swinir", encoder_args=SMALL_SWIN, hidden_dim=16, mlp_hidden=(16, 16))),
}


@pytest.mark.parametrize("fixture", list(CONFIGS))
@pytest.mark.parametrize("chunk", [65536, 97])
@pytest.mark.parametrize("official_order", [False, True], ids=["rewritten", "official-order"])
def test_matches_official_outputs(fixture, chunk, official_order):
    name, opts = CONFIGS[fixture]
    if name == "lte" and official_order:
        pytest.skip("lte has one path")
    opts = {**opts, "official_order": official_order} if name == "liif" else opts
    model = eqbench.create_method(name, **opts).eval().load_official(GOLD / fixture / "checkpoint.pth")
    cases = np.load(GOLD / fixture / "cases.npz")
    lr = torch.from_numpy(cases["lr"])
    assert [str(n) for n in cases["names"]] == ["x2", "x3.3", "x6", "x1.5x4"]
    for i in range(4):
        out_size = tuple(int(v) for v in cases[f"out_size_{i}"])
        with torch.no_grad():
            sr = model.upsample(lr, out_size, chunk=chunk)
        want = torch.from_numpy(cases[f"sr_{i}"]).clamp(0, 1)
        # the bound; measured: <= 6e-8 for every case, chunk size and path (1 thread)
        assert (sr - want).abs().max().item() <= 1e-5, (fixture, i)


@pytest.mark.parametrize("unfold,cell,ensemble", [(True, True, True), (False, True, True), (True, False, False)])
def test_liif_factored_first_layer_equals_official_order(unfold, cell, ensemble):
    """The rewritten first layer (per-LR-pixel conv + gather) against the official order: batch of 2,
    every ablation switch, inference and autograd (query_points), and the imnet feature tap."""
    torch.manual_seed(0)
    opts = dict(size="tiny", feat_unfold=unfold, cell_decode=cell, local_ensemble=ensemble)
    ref = eqbench.create_method("liif", official_order=True, **opts).eval()
    new = eqbench.create_method("liif", **opts).eval()
    new.load_state_dict(ref.state_dict())
    lr = torch.rand(2, 3, 9, 11)
    seen = {}
    for m in (ref, new):
        m.imnet.register_forward_hook(lambda mod, i, o, m=m: seen.setdefault(id(m), []).append(o.shape))
        with torch.no_grad():
            out = m.upsample(lr, (23, 30), chunk=100)
        seen[id(m), "out"] = out
    assert (seen[id(ref), "out"] - seen[id(new), "out"]).abs().max().item() <= 1e-5
    assert seen[id(ref)] == seen[id(new)]  # same tap calls and shapes
    coord = torch.rand(2, 50, 2) * 2 - 1
    cellv = torch.full((2, 50, 2), 0.1)
    outs = [m.query_points(lr, coord, cellv) for m in (ref, new)]
    assert (outs[0] - outs[1]).abs().max().item() <= 1e-5
    grads = [torch.autograd.grad(o.sum(), m.imnet.layers[0].weight)[0] for o, m in zip(outs, (ref, new))]
    assert (grads[0] - grads[1]).abs().max().item() <= 1e-4 * grads[0].abs().max().item()


@pytest.mark.parametrize("name,encoder,count", [
    # official counts minus the 24 unused EDSR MeanShift parameters (see baselines/encoders.py)
    ("liif", "edsr-baseline", 1_567_323 - 24), ("liif", "rdn", 22_320_835),
    ("lte", "edsr-baseline", 1_714_267 - 24), ("lte", "rdn", 22_467_779), ("lte", "swinir", 12_096_871),
])
def test_paper_parameter_counts(name, encoder, count):
    model = eqbench.create_method(name, encoder=encoder)
    assert sum(p.numel() for p in model.parameters()) == count


@pytest.mark.parametrize("name", ["liif", "lte"])
def test_chunked_equals_unchunked(name):
    torch.manual_seed(0)
    model = eqbench.create_method(name, size="tiny").eval()
    lr = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        full = model.upsample(lr, (31, 40), chunk=10**9)
        for chunk in (1, 40, 333):
            assert torch.equal(model.upsample(lr, (31, 40), chunk=chunk), full)


def test_cell_clip_beyond_x4_only():
    torch.manual_seed(0)
    model = eqbench.create_method("lte", size="tiny").eval()
    assert model.cell_factor((6.0, 2.0)) == (1.5, 1.0)
    lr = torch.rand(1, 3, 8, 8)
    no_clip = eqbench.create_method("lte", size="tiny", cell_clip=None).eval()
    no_clip.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model.upsample(lr, (24, 24)), no_clip.upsample(lr, (24, 24)))
        assert not torch.equal(model.upsample(lr, (48, 48)), no_clip.upsample(lr, (48, 48)))


def test_query_points_equals_dense_grid():
    torch.manual_seed(0)
    model = eqbench.create_method("liif", size="tiny").eval()
    lr = torch.rand(1, 3, 8, 6)
    H, W = 20, 13
    from baselines.implicit import coord_seq, grid_coords

    coord = grid_coords(coord_seq(H), coord_seq(W)).unsqueeze(0)
    cell = torch.tensor([2 / H, 2 / W]).expand(1, H * W, 2)
    with torch.no_grad():
        pts = model.query_points(lr, coord, cell).clamp(0, 1).view(1, H, W, 3).permute(0, 3, 1, 2)
        assert torch.equal(pts, model.upsample(lr, (H, W)))


def test_wrong_checkpoints_are_named(tmp_path):
    liif = eqbench.create_method("liif", encoder="edsr-baseline", encoder_args=SMALL_EDSR, hidden=(16, 16))
    with pytest.raises(EqbenchError, match="official 'lte' checkpoint"):
        liif.load_official(GOLD / "lte_edsr" / "checkpoint.pth")
    with pytest.raises(EqbenchError, match="encoder 'rdn'"):
        liif.load_official(GOLD / "liif_rdn" / "checkpoint.pth")
    wide = eqbench.create_method("liif", encoder="edsr-baseline", encoder_args=dict(n_resblocks=3, n_feats=8),
                                 hidden=(16, 16))
    with pytest.raises(EqbenchError, match="missing keys"):
        wide.load_official(GOLD / "liif_edsr" / "checkpoint.pth")
    paper = eqbench.create_method("liif")
    with pytest.raises(EqbenchError, match="shape mismatch"):
        paper.load_official(GOLD / "liif_edsr" / "checkpoint.pth")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_refuses_pickles_with_code(tmp_path):
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(EqbenchError, match="not a plain weights file|corrupt"):
        eqbench.create_method("liif", size="tiny").load_official(p)
    torch.save({"x": _Evil()}, p)
    with pytest.raises(EqbenchError, match="not a plain weights file"):
        eqbench.create_method("liif", size="tiny").load_official(p)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(EqbenchError, match="a text file, not a PyTorch checkpoint"):  # not "needs code" (issue 21)
        eqbench.create_method("lte", size="tiny").load_official(tmp_path / "junk.pth")


def test_unknown_options_and_encoders():
    with pytest.raises(EqbenchError, match="no option 'encodr'.*did you mean 'encoder'"):
        eqbench.create_method("liif", encodr="rdn")
    with pytest.raises(EqbenchError, match="unknown encoder 'rdnn'"):
        eqbench.create_method("lte", encoder="rdnn")
    with pytest.raises(EqbenchError, match="no size 'huge'"):
        eqbench.create_method("lte", size="huge")
