"""EQSR plug-ins (eqsr-edsr, eqsr-swinir) and feature taps of the EQSR family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import eqbench
from eqbench.errors import EqbenchError

CKPT = Path(__file__).parents[1] / "fixtures" / "eqsr" / "checkpoint.pth"


@pytest.mark.parametrize("name", ["eqsr", "eqsr-edsr", "eqsr-swinir"])
def test_feature_taps_fire(name):
    model = eqbench.create_method(name, size="tiny").eval()
    seen = []
    mods = dict(model.named_modules())
    hooks = [mods[t].register_forward_hook(lambda *a, t=t: seen.append(t)) for t in model.feature_taps]
    with torch.no_grad():
        model.upsample(torch.rand(1, 3, 8, 8), (16, 16))
    for h in hooks:
        h.remove()
    assert list(dict.fromkeys(seen)) == list(model.feature_taps)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_plugin_parts():
    from baselines.encoders import EDSR_PRESETS, EDSREncoder
    from baselines.eqsr_afe import AFEBlock, ModulatedConv2d
    from baselines.eqsr_kriging import NeuralKriging
    from baselines.swinir import SWINIR_PRESETS, SwinIREncoder

    def afe(c):
        return n_params(AFEBlock(c, ModulatedConv2d(c)))

    edsr = eqbench.create_method("eqsr-edsr", size="paper")
    # EDSR-baseline + 4 AFE blocks (one per 4 residual blocks) + NK of width 256 on 64 channels
    assert n_params(edsr) == n_params(EDSREncoder(**EDSR_PRESETS["edsr-baseline"])) + 4 * afe(64) + n_params(
        NeuralKriging(64, 256)) == 2_613_774
    swin = eqbench.create_method("eqsr-swinir", size="paper")
    # SwinIR (6 RSTB, C=180) + one AFE block per RSTB + NK on its 64-channel output
    assert n_params(swin) == n_params(SwinIREncoder(**SWINIR_PRESETS["swinir"])) + 6 * afe(180) + n_params(
        NeuralKriging(64, 256)) == 15_116_098
    assert afe(180) == 388_440  # the official per-group ModMBConv count (spec 1.5)


class _PassThrough(torch.nn.Module):
    def forward(self, x, cond):
        return x


@pytest.mark.parametrize("name,attr", [("eqsr-edsr", "edsr"), ("eqsr-swinir", "swinir")])
def test_plugins_wrap_the_shared_encoders(name, attr):
    torch.manual_seed(0)
    model = eqbench.create_method(name, size="tiny").eval()
    enc = model.encoder
    enc.afe = torch.nn.ModuleList(_PassThrough() for _ in enc.afe)
    x = torch.rand(1, 3, 16, 8)  # a multiple of the window: the plain encoder does not crop either
    with torch.no_grad():
        # with the AFE blocks bypassed, the plug-in encoder is exactly the shared encoder
        assert torch.equal(enc(x, model.scale_cond(x, (32, 16))), getattr(enc, attr)(x))


@pytest.mark.parametrize("name", ["eqsr-edsr", "eqsr-swinir"])
def test_plugins_are_scale_aware_and_band(name):
    torch.manual_seed(0)
    model = eqbench.create_method(name, size="tiny").eval()
    for p in model.parameters():  # the style Linear starts near 0; make the modulation visible
        p.data.add_(0.05 * torch.randn_like(p))
    lr = torch.rand(1, 3, 9, 12)
    with torch.no_grad():
        f2 = model.features(lr - model.mean, model.scale_cond(lr, (18, 24)))
        f3 = model.features(lr - model.mean, model.scale_cond(lr, (27, 36)))
        assert f2.shape == (1, model.encoder.out_dim, 9, 12)
        assert (f2 - f3).abs().max() > 1e-3  # the AFE code (2/H) differs between the two output sizes
        banded = eqbench.create_method(name, size="tiny", band_rows=4).eval()
        banded.load_state_dict(model.state_dict())
        # banded decoding: only the summation order of the pooled ECA statistics differs
        assert (model.upsample(lr, (27, 36)) - banded.upsample(lr, (27, 36))).abs().max().item() <= 1e-5
    with pytest.raises(EqbenchError, match="no official"):
        model.load_official(CKPT)
