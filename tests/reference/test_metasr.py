"""MetaSR: parity with the official MetaRDN and with LIIF's re-implementation, chunking, asymmetric rule,
bad input and checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import eqbench
from baselines.encoders import EDSREncoder, RDNEncoder
from baselines.metasr import MetaSR
from eqbench.errors import EqbenchError

FIX = Path(__file__).parents[1] / "fixtures"
# float32 round-off (reassociated sums, float64 vs float32 coordinate arithmetic); measured <= 9e-7
TOL = 1e-5


def _cases(folder: str):
    d = np.load(FIX / folder / "cases.npz")
    lr = torch.from_numpy(d["lr"])
    return [(str(n), lr, tuple(int(v) for v in d[f"out_size_{i}"]), tuple(float(v) for v in d[f"scale_{i}"]),
             torch.from_numpy(d[f"sr_{i}"])) for i, n in enumerate(d["names"])]


def official_fixture_model() -> MetaSR:
    m = MetaSR(RDNEncoder(G0=8, D=2, C=2, G=8), "official", p2w_hidden=16)
    return m.load_official(FIX / "metardn" / "checkpoint.pt").eval()


def liif_fixture_model() -> MetaSR:
    m = MetaSR(EDSREncoder(n_resblocks=2, n_feats=8), "liif", p2w_hidden=256)
    return m.load_official(FIX / "metasr_liif" / "checkpoint.pth").eval()


@pytest.mark.parametrize("case", _cases("metardn"), ids=lambda c: c[0])
def test_official_metardn_parity(case):
    name, lr, out_size, scale, ref = case
    with torch.no_grad():
        sr = official_fixture_model().upsample(lr, out_size, scale=scale)
    assert (sr - ref.clamp(0, 1)).abs().max().item() <= TOL


@pytest.mark.parametrize("case", _cases("metasr_liif"), ids=lambda c: c[0])
def test_liif_metasr_parity(case):
    name, lr, out_size, scale, ref = case
    with torch.no_grad():
        sr = liif_fixture_model().upsample(lr, out_size)  # LIIF takes the scale from out_size
    assert (sr - ref.clamp(0, 1)).abs().max().item() <= TOL


def test_default_scale_is_out_size_over_input():
    m = official_fixture_model()
    lr = _cases("metardn")[0][1]
    with torch.no_grad():
        a = m.upsample(lr, (39, 33))
        b = m.upsample(lr, (39, 33), scale=(39 / 12, 3.3))
        c = m.upsample(lr, (39, 33), scale=3.3)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3  # x3.25 rows vs x3.3 rows: the scale reaches the network


def _reference_meta_upsample(m: MetaSR, lr, out_size, r_h, r_w):
    """Direct per-pixel formula: HR (i, j) reads the 3x3 patch at LR (floor(i/r_h), floor(j/r_w)) with weights
    MLP(1/r_h, frac(i/r_h), frac(j/r_w)) — the official rule with one r per axis."""
    H, W = out_size
    feat = m.encoder(m.sub_mean(lr * 255.0))
    c, h, w = feat.shape[1:]
    cols = F.unfold(feat, 3, padding=1).view(c * 9, h, w)
    pi = torch.arange(H, dtype=torch.float32) * (1.0 / r_h)
    pj = torch.arange(W, dtype=torch.float32) * (1.0 / r_w)
    ii, jj = torch.meshgrid(pi, pj, indexing="ij")
    inp = torch.stack((torch.full_like(ii, 1.0 / r_h), ii - ii.floor(), jj - jj.floor()), -1)
    wts = m.p2w(inp.view(-1, 3)).view(H, W, c * 9, 3)
    patch = cols[:, ii.floor().long(), jj.floor().long()]  # (C*9, H, W)
    out = torch.einsum("khw,hwkc->chw", patch, wts).unsqueeze(0)
    return m.add_mean(out) / 255.0


def test_official_asymmetric_follows_documented_rule():
    m = official_fixture_model()
    lr = _cases("metardn")[0][1]
    seen = []
    hook = m.p2w.register_forward_hook(lambda mod, i, o: seen.append(i[0]))
    with torch.no_grad():
        sr = m.upsample(lr, (18, 40), scale=(1.5, 4.0))
        ref = _reference_meta_upsample(m, lr, (18, 40), 1.5, 4.0).clamp(0, 1)
    hook.remove()
    # the documented choice: 1/r_h is the scalar the weight MLP sees
    assert torch.all(torch.cat(seen)[:, 0] == torch.tensor(1 / 1.5, dtype=torch.float32))
    assert (sr - ref).abs().max().item() <= TOL


class _MaxNumel(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.max = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.max = max(self.max, out.numel())
        return out


def test_per_pixel_weights_are_chunked():
    feat = torch.randn(1, 8, 30, 20)

    class Enc(torch.nn.Module):
        out_dim, taps = 8, ()

        def forward(self, x):
            return feat

    out_size, chunk = (105, 71), 300  # x3.5 rows, x3.55 columns: many distinct offsets, ragged chunks
    m = MetaSR(Enc(), "official", p2w_hidden=16, chunk_pixels=chunk).eval()
    lr = torch.rand(1, 3, 30, 20)
    rows = []
    m.p2w.register_forward_hook(lambda mod, i, o: rows.append(i[0].shape[0]))
    with torch.no_grad(), _MaxNumel() as mode:
        small = m.upsample(lr, out_size)
    per_pixel = 8 * 9 * 3
    assert len(rows) > 1 and max(rows) <= chunk
    # no tensor holds more than one chunk of per-pixel weights (all of them: 105*71*216 = 1.6M numbers)
    assert mode.max <= chunk * per_pixel < out_size[0] * out_size[1] * per_pixel
    m.chunk_pixels = 10**7
    with torch.no_grad():
        whole = m.upsample(lr, out_size)
    assert (small - whole).abs().max().item() <= 1e-6  # chunking is exact up to float32 round-off


def test_paper_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(eqbench.create_method("metasr")) == 22_419_096  # official MetaRDN
    assert count(eqbench.create_method("metasr", variant="liif", encoder="rdn")) == 22_419_072
    # LIIF's 1,665,560 includes 24 MeanShift parameters its EDSR never applies; ours leaves them out
    assert count(eqbench.create_method("metasr", variant="liif")) == 1_665_560 - 24


@pytest.mark.parametrize("variant", ["official", "liif"])
def test_tiny_runs_odd_and_asymmetric_and_trains(variant):
    m = eqbench.create_method("metasr", size="tiny", variant=variant)
    assert "metasr" in eqbench.list_methods()
    lr = torch.rand(2, 3, 11, 9)
    sr = m.upsample(lr, (17, 36))
    assert sr.shape == (2, 3, 17, 36) and torch.isfinite(sr).all()
    loss = m._upsample(lr, (17, 36)).abs().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters() if p.requires_grad)


def test_bad_options_and_input():
    with pytest.raises(EqbenchError, match="did you mean 'official'"):
        eqbench.create_method("metasr", size="tiny", variant="oficial")
    with pytest.raises(EqbenchError, match="did you mean 'edsr-baseline'"):
        eqbench.create_method("metasr", size="tiny", variant="liif", encoder="edsr-basline")
    with pytest.raises(EqbenchError, match="variant='liif'"):
        eqbench.create_method("metasr", size="tiny", encoder="edsr-baseline")
    m = eqbench.create_method("metasr", size="tiny")
    lr = torch.rand(1, 3, 12, 10)
    with pytest.raises(EqbenchError, match="smaller than the input"):
        m.upsample(lr, (6, 40))  # a factor below 1 on one axis
    with pytest.raises(EqbenchError, match="below 1"):
        m.upsample(lr, (18, 40), scale=(0.5, 4.0))
    with pytest.raises(EqbenchError, match="does not match scale"):
        m.upsample(lr, (24, 20), scale=3)
    with pytest.raises(EqbenchError, match="derives the scale from out_size"):
        eqbench.create_method("metasr", size="tiny", variant="liif").upsample(lr, (24, 20), scale=2)


def test_wrong_checkpoints(tmp_path):
    official = MetaSR(RDNEncoder(G0=8, D=2, C=2, G=8), "official", p2w_hidden=16)
    with pytest.raises(EqbenchError, match="variant='liif'"):
        official.load_official(FIX / "metasr_liif" / "checkpoint.pth")
    with pytest.raises(EqbenchError, match="missing keys.*unexpected keys"):
        official.load_official(FIX / "arbrcan" / "checkpoint.pt")  # another method's weights
    with pytest.raises(EqbenchError, match="shape mismatches"):
        eqbench.create_method("metasr", size="tiny").load_official(FIX / "metardn" / "checkpoint.pt")
    liif = MetaSR(EDSREncoder(n_resblocks=2, n_feats=8), "liif")
    with pytest.raises(EqbenchError, match="variant='official'"):
        liif.load_official(FIX / "metardn" / "checkpoint.pt")
    ck = torch.load(FIX / "metasr_liif" / "checkpoint.pth", weights_only=True)
    ck["model"]["args"]["encoder_spec"]["name"] = "rdn"
    torch.save(ck, tmp_path / "rdn.pth")
    with pytest.raises(EqbenchError, match="encoder='rdn'"):
        liif.load_official(tmp_path / "rdn.pth")
    ck["model"]["name"] = "liif"
    torch.save(ck, tmp_path / "liif.pth")
    with pytest.raises(EqbenchError, match="not 'metasr'"):
        liif.load_official(tmp_path / "liif.pth")
    torch.save({"args": argparse.Namespace(scale=[2.0])}, tmp_path / "code.pt")
    with pytest.raises(EqbenchError, match="not a plain weights file"):
        official.load_official(tmp_path / "code.pt")
