"""eqbench.wrap: each style's tensor conventions, chunking, taps, and one clear error per misuse."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import eqbench
from eqbench.errors import EqbenchError


class Bilinear(nn.Module):
    def forward(self, x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class BilinearCoordCell(nn.Module):
    """grid_sample at the queried centres (row, col) -> (x, y), border padding; records what it was given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, coord, cell):
        self.calls.append((x.detach().clone(), coord.shape[1], cell[0, 0].tolist()))
        g = coord.flip(-1).unsqueeze(1)
        y = F.grid_sample(x, g, mode="bilinear", padding_mode="border", align_corners=False)
        return y[:, :, 0].permute(0, 2, 1)


@pytest.fixture
def lr():
    return torch.rand(2, 3, 9, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("out", [(18, 26), (31, 45), (13, 52)])  # x2, x3.5-ish, 1.5x4-ish
def test_coord_cell_equals_out_size_bilinear(lr, out):
    a = eqbench.wrap(Bilinear(), style="out_size")
    b = eqbench.wrap(BilinearCoordCell(), style="coord-cell", chunk=50)
    torch.testing.assert_close(b.upsample(lr, out), a.upsample(lr, out), rtol=0, atol=1e-12)


def test_coord_cell_liif_conventions_and_chunks(lr):
    net = BilinearCoordCell()
    m = eqbench.wrap(net, style="coord-cell", chunk=100)
    m.upsample(lr, (20, 30))
    assert [q for _, q, _ in net.calls] == [100] * 6  # 600 queries in chunks of at most 100
    x, _, cell = net.calls[0]
    torch.testing.assert_close(x, (lr - 0.5) / 0.5)  # LIIF's input normalisation
    assert cell == pytest.approx([2 / 20, 2 / 30])  # (2/H, 2/W), row first
    whole = eqbench.wrap(BilinearCoordCell(), style="coord-cell").upsample(lr, (20, 30))
    torch.testing.assert_close(m.upsample(lr, (20, 30)), whole, rtol=0, atol=0)


def test_coord_cell_coordinates_are_pixel_centres_row_col():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x, coord, cell):
            seen["coord"] = coord
            return torch.zeros(*coord.shape[:2], 3, dtype=x.dtype)

    eqbench.wrap(Probe(), style="coord-cell").upsample(torch.rand(1, 3, 2, 3), (2, 4))
    c = seen["coord"][0].view(2, 4, 2)
    torch.testing.assert_close(c[:, 0, 0], torch.tensor([-0.5, 0.5]))  # rows: centres of 2 pixels
    torch.testing.assert_close(c[0, :, 1], torch.tensor([-0.75, -0.25, 0.25, 0.75]))  # cols
    eqbench.wrap(Probe(), style="coord-cell", coord_order="xy").upsample(torch.rand(1, 3, 2, 3), (2, 4))
    torch.testing.assert_close(seen["coord"][0].view(2, 4, 2)[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_coord_cell_query_points_is_liif_forward_unclamped(lr):
    m = eqbench.wrap(BilinearCoordCell(), style="coord-cell")
    assert m.query_modes == ("points",)
    coord = torch.tensor([[[-1.5, 0.0], [0.0, 0.0]]], dtype=torch.float64).expand(2, 2, 2)
    y = m.query_points(lr, coord, torch.full_like(coord, 0.1))
    assert y.shape == (2, 2, 3)
    torch.testing.assert_close(y[:, 1], F.grid_sample(lr, torch.zeros(2, 1, 1, 2, dtype=lr.dtype),
                                                      align_corners=False)[:, :, 0, 0])  # the image centre
    # A float64 module trained on float32 batches: computed in the module's dtype, returned in the input's.
    conv = eqbench.wrap(nn.Conv2d(3, 3, 1).double(), style="coord-cell", encode=None, query=None)
    conv.net.forward = lambda x, c, cell: x.flatten(2).transpose(1, 2)[:, : c.shape[1]]
    y32 = conv.query_points(lr.float(), coord.float(), torch.full_like(coord, 0.1).float())
    assert y32.dtype == torch.float32


def test_scale_style_passes_the_scale_and_checks_the_size(lr):
    got = []

    class MetaLike(nn.Module):
        def __init__(self, off=0):
            super().__init__()
            self.off = off

        def forward(self, x, s):
            got.append(s)
            sh, sw = s if isinstance(s, tuple) else (s, s)
            return F.interpolate(x, size=(round(x.shape[2] * sh) + self.off, round(x.shape[3] * sw)), mode="nearest")

    assert eqbench.wrap(MetaLike(), style="scale").upsample(lr, (27, 39)).shape == (2, 3, 27, 39)
    assert got[-1] == 3.0 and isinstance(got[-1], float)
    with pytest.raises(EqbenchError, match="asymmetric"):
        eqbench.wrap(MetaLike(), style="scale").upsample(lr, (18, 52))
    assert eqbench.wrap(MetaLike(), style="scale", scale_type="pair").upsample(lr, (18, 52)).shape[-2:] == (18, 52)
    assert got[-1] == (2.0, 4.0)
    with pytest.raises(EqbenchError, match=r"protocol's output size is \(27, 39\)"):
        eqbench.wrap(MetaLike(off=1), style="scale").upsample(lr, (27, 39))


def test_fixed_style_only_its_scale(lr):
    class X2(nn.Module):
        def forward(self, x):
            return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    m = eqbench.wrap(X2(), style="fixed", scale=2, std=1 / 255)
    torch.testing.assert_close(m.upsample(lr, (18, 26)), lr.repeat_interleave(2, -1).repeat_interleave(2, -2))
    with pytest.raises(EqbenchError, match="fixed x2 network.*--scales 2"):
        m.upsample(lr, (27, 39))
    with pytest.raises(EqbenchError, match="integer scale"):
        eqbench.wrap(X2(), style="fixed")


def test_taps_are_module_paths_of_the_wrapped_module():
    from eqbench.analysis.taps import resolve_taps

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = net

        def forward(self, x, size):
            return F.interpolate(self.body(x), size=size)

    m = eqbench.wrap(Net(), style="out_size", taps=("body.0", "body.1"), name="mine")
    assert resolve_taps(m) == ("net.body.0", "net.body.1") and m.method_name == "mine"
    with pytest.raises(EqbenchError, match="taps="):
        resolve_taps(eqbench.wrap(Net(), style="out_size"))
    with pytest.raises(EqbenchError, match="tap 'body.7' is not a submodule"):
        eqbench.wrap(Net(), style="out_size", taps=("body.7",))


@pytest.mark.parametrize("call, match", [
    (lambda: eqbench.wrap(Bilinear(), style="pixel"), "unknown wrap style 'pixel'"),
    (lambda: eqbench.wrap(Bilinear(), style="out_size", chunk=5), "convention of style 'out_size'.*'chunk'"),
    (lambda: eqbench.wrap(lambda x: x, style="out_size"), "needs a torch.nn.Module"),
    (lambda: eqbench.wrap(Bilinear(), style="coord-cell", encode="gen_feat"), "both encode= and query="),
    (lambda: eqbench.wrap(Bilinear(), style="coord-cell", chunk=0), "chunk must be a positive"),
])
def test_misuse_is_one_clear_error(call, match):
    with pytest.raises(EqbenchError, match=match):
        call()


def test_wrong_output_shape_names_the_call(lr):
    class Bad(nn.Module):
        def forward(self, x, size):
            return x

    with pytest.raises(EqbenchError, match=r"forward\(x, \(18, 26\)\) returned shape \(2, 3, 9, 13\)"):
        eqbench.wrap(Bad(), style="out_size").upsample(lr, (18, 26))


def test_weights_for_the_wrapped_module(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 3, 1)

        def forward(self, x, size):
            return F.interpolate(self.c(x), size=size)

    src = Net()
    torch.save({"model": {"sd": src.state_dict()}}, tmp_path / "w.pth")  # LIIF's checkpoint layout
    from eqbench.checkpoint import load_weights

    m = load_weights(eqbench.wrap(Net(), style="out_size"), tmp_path / "w.pth")
    torch.testing.assert_close(m.net.c.weight, src.c.weight)
