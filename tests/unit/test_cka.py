"""Linear CKA: the reference cases, invariances, symmetry, and CKA across scales of a toy method."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eqbench.analysis.cka import (
    GramStore,
    gram_linear,
    hsic0,
    hsic1,
    linear_cka,
    minibatch_cka,
    minibatch_hsic,
)
from eqbench.analysis.taps import batch_slices, capture_grams, collect_grams, resolve_taps, scale_cka
from eqbench.errors import EqbenchError
from eqbench.method import SRMethod, create_method

REF = json.loads((Path(__file__).parents[1] / "fixtures/cka_reference/cka_reference.json").read_text())
REL = 1e-10  # the file's stated float64 tolerance


def _orthogonal_invariance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10))
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    return x, x @ q


def _isotropic_scaling():
    x = np.random.default_rng(0).standard_normal((64, 10))
    return x, 3.0 * x


def _independent():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 10))
    return x, rng.standard_normal((64, 10))


def _minibatch_256():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((256, 32))
    w = rng.standard_normal((32, 16))
    e = rng.standard_normal((256, 16))
    return x, x @ w + 4.0 * e


def _conv_exact():
    fx = np.random.default_rng(3).standard_normal((32, 4, 6, 6))
    return fx, fx.repeat(2, axis=2).repeat(2, axis=3)


def _conv_noise():
    rng = np.random.default_rng(3)
    fx = rng.standard_normal((32, 4, 6, 6))
    e = rng.standard_normal((32, 4, 12, 12))
    return fx, fx.repeat(2, axis=2).repeat(2, axis=3) + 1.0 * e


def _kornblith():
    rs = np.random.RandomState(1337)  # the legacy global-state stream numpy.random.seed(1337) sets up
    x = rs.randn(100, 10)
    return x, rs.randn(100, 10) + x


INPUTS = {
    "orthogonal_invariance": _orthogonal_invariance,
    "isotropic_scaling": _isotropic_scaling,
    "independent": _independent,
    "minibatch_256": _minibatch_256,
    "conv_nearest_upsample_exact": _conv_exact,
    "conv_upsample_plus_noise": _conv_noise,
    "kornblith_demo_anchor": _kornblith,
}


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= REL * abs(want)


def test_every_reference_case_has_an_input_generator():
    assert sorted(c["name"] for c in REF["cases"]) == sorted(INPUTS)


@pytest.mark.parametrize("case", REF["cases"], ids=[c["name"] for c in REF["cases"]])
def test_reference_case(case):
    x, y = INPUTS[case["name"]]()
    exp = case["expected"]
    kx, ky = gram_linear(x), gram_linear(y)
    assert _close(linear_cka(x, y), exp["cka_linear_biased"])
    assert _close(linear_cka(x, y, unbiased=True), exp["cka_linear_unbiased_fullbatch"])
    assert _close(hsic0(kx, ky), exp["hsic0_xy"])
    assert _close(hsic1(kx, ky), exp["hsic1_xy_fullbatch"])
    n_checked = 0
    for key, want in exp.items():
        if not key.startswith("cka_minibatch_unbiased_bs") or key.endswith("_parts"):
            continue
        bs = int(key.rsplit("bs", 1)[1])
        batches = [(x[i : i + bs], y[i : i + bs]) for i in range(0, x.shape[0], bs)]  # contiguous, no shuffle
        assert _close(minibatch_cka(batches), want)
        xy, xx, yy, k = minibatch_hsic(batches)
        parts = exp[key + "_parts"]
        assert k == parts["k"]
        for got, name in ((xy, "sum_hsic1_xy"), (xx, "sum_hsic1_xx"), (yy, "sum_hsic1_yy")):
            assert _close(got, parts[name]), name
        # The EQSR supplement's Eq. 5 as printed is our value / k (its 1/k sits in the numerator only).
        assert _close(minibatch_cka(batches) / k, exp[f"eqsr_eq5_as_printed_bs{bs}"])
        n_checked += 1
    assert n_checked >= 1


def test_minibatch_cka_of_identical_features_is_one_not_one_over_k():
    x = torch.randn(64, 7, generator=torch.Generator().manual_seed(0))
    val = minibatch_cka([(x[i : i + 16], x[i : i + 16]) for i in range(0, 64, 16)])
    assert val == pytest.approx(1.0, abs=1e-12)  # float64 rounding only


@pytest.mark.parametrize("unbiased", [False, True])
def test_invariances_and_symmetry_float32(unbiased):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, 4, 4, generator=g)
    y = x.reshape(40, -1) @ torch.randn(48, 20, generator=g) + 0.5 * torch.randn(40, 20, generator=g)
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    base = linear_cka(x, y, unbiased=unbiased)
    assert 0.05 < base < 0.999  # a non-trivial value, so the equalities below mean something
    # float32 inputs, float64 accumulation: the transforms are applied in float64 and differ only by
    # the float32 -> float64 rounding of y, well inside 1e-6.
    assert linear_cka(y, x, unbiased=unbiased) == pytest.approx(base, abs=1e-12)
    assert linear_cka(x, y.double() @ q, unbiased=unbiased) == pytest.approx(base, abs=1e-6)
    assert linear_cka(x, 7.5 * y.double(), unbiased=unbiased) == pytest.approx(base, abs=1e-6)


def test_minibatch_symmetry_and_scaling():
    g = torch.Generator().manual_seed(2)
    x, y = (
        torch.randn(48, 9, generator=g, dtype=torch.float64),
        torch.randn(48, 5, generator=g, dtype=torch.float64),
    )
    y = y + x[:, :5]
    batches = [(x[i : i + 12], y[i : i + 12]) for i in range(0, 48, 12)]
    v = minibatch_cka(batches)
    assert minibatch_cka([(b, a) for a, b in batches]) == pytest.approx(v, rel=1e-12)
    assert minibatch_cka([(a, 0.1 * b) for a, b in batches]) == pytest.approx(v, rel=1e-12)


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(EqbenchError, match="same number of examples"):
        linear_cka(torch.randn(10, 3), torch.randn(11, 3))
    with pytest.raises(EqbenchError, match="at least 4 examples"):
        minibatch_cka([(torch.randn(3, 2), torch.randn(3, 2))])
    with pytest.raises(EqbenchError, match="no batches"):
        minibatch_cka([])
    with pytest.raises(EqbenchError, match="torch.Tensor or numpy"):
        linear_cka([[1.0]], [[2.0]])
    assert math.isnan(linear_cka(torch.ones(8, 3), torch.randn(8, 3)))  # constant features: undefined


def test_batches_never_leave_a_remainder_below_four():
    assert [s.stop - s.start for s in batch_slices(66, 16)] == [16, 16, 16, 18]
    assert [s.stop - s.start for s in batch_slices(70, 16)] == [16, 16, 16, 16, 6]
    with pytest.raises(EqbenchError, match="at least 4"):
        batch_slices(64, 2)


class ToySR(SRMethod):
    """Encoder convs at LR size, bicubic feature resize to the output, a conv decoder.

    With `scale_aware`, the encoder's channels are weighted by a scale-dependent, non-isotropic
    vector, so the encoder features differ between scales (linear CKA is invariant to isotropic
    scaling only).
    """

    feature_taps = ("head", "body.0", "body.2", "up_conv", "tail")

    def __init__(self, scale_aware: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.up_conv = nn.Conv2d(8, 8, 3, padding=1)
        self.tail = nn.Conv2d(8, 3, 3, padding=1)
        self.scale_aware = scale_aware

    def _upsample(self, lr, out_size):
        f = self.head(lr)
        if self.scale_aware:
            r = out_size[0] / lr.shape[-2]
            w = torch.linspace(0.2, 1.0, 8, dtype=f.dtype, device=f.device) ** (r - 1.0)
            f = f * w.view(1, -1, 1, 1)
        f = self.body(f)
        f = F.interpolate(f, size=out_size, mode="bicubic", align_corners=False)
        return self.tail(self.up_conv(f)) + F.interpolate(lr, size=out_size, mode="bicubic", align_corners=False)


def _crops(n=24, size=12):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def test_encoder_taps_are_identical_across_scales_decoder_taps_are_not():
    model = ToySR().eval()
    store = GramStore()
    taps = collect_grams(store, "toy", model, _crops(), [2, 3, 4], batch_size=8)
    res = scale_cka(store, "toy", taps, [2, 3, 4], 24)
    assert list(res.per_layer) == ["2-3", "2-4", "3-4"]
    for pair, vals in res.per_layer.items():
        # head/body run on the same LR at every scale: identical features, CKA 1 up to float64 rounding.
        assert vals[:3] == pytest.approx([1.0, 1.0, 1.0], abs=1e-9), pair
        # after the resize the features are different images of the same content: below 1, well above 0.
        assert all(0.3 < v < 1.0 - 1e-6 for v in vals[3:]), (pair, vals)
    m = np.array(res.matrices["2-4"])
    assert m.shape == (5, 5)
    assert np.allclose(np.diag(m)[:3], 1.0, atol=1e-9)


def test_scale_aware_features_differ_across_scales():
    store = GramStore()
    taps = collect_grams(store, "toy", ToySR(scale_aware=True).eval(), _crops(), [2, 4], batch_size=8)
    res = scale_cka(store, "toy", taps, [2, 4], 24)
    assert res.per_layer["2-4"][0] == pytest.approx(1.0, abs=1e-9)  # "head" runs before the modulation
    assert res.per_layer["2-4"][1] < 0.999  # body.0 sees differently weighted channels at x2 and x4


def test_store_matrix_equals_pairwise_minibatch_cka():
    g = torch.Generator().manual_seed(4)
    feats = {k: torch.randn(20, 6, generator=g, dtype=torch.float64) for k in "abc"}
    feats["c"] = feats["c"] + feats["a"]
    store = GramStore()
    for k, f in feats.items():
        for b, sl in enumerate(batch_slices(20, 5)):
            store.add(k, b, gram_linear(f[sl]))
    c = store.cka(["a", "b", "c"])
    for i, ka in enumerate("abc"):
        for j, kb in enumerate("abc"):
            want = minibatch_cka([(feats[ka][s], feats[kb][s]) for s in batch_slices(20, 5)])
            assert float(c[i, j]) == pytest.approx(want, rel=1e-12)


def test_a_module_that_runs_twice_contributes_its_concatenated_outputs():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x) + self.lin(2 * x)

    m, x = Twice(), torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad(), capture_grams(m, ["lin"], 6) as grams:
        m(x)
    with torch.no_grad():
        both = torch.cat([m.lin(x), m.lin(2 * x)], dim=1)
    assert torch.allclose(grams["lin"], gram_linear(both), rtol=1e-12, atol=1e-12)


def test_taps_are_validated():
    with pytest.raises(EqbenchError, match="declares no feature_taps"):
        resolve_taps(create_method("bicubic"))
    with pytest.raises(EqbenchError, match="not a submodule"):
        resolve_taps(ToySR(), ["head", "nope"])


def test_heatmaps_are_written_as_png_and_svg(tmp_path):
    from eqbench.analysis.plots import cka_heatmap, layer_scale_heatmap

    paths = cka_heatmap([[1.0, 0.5], [0.5, 1.0]], ["a", "b"], ["a", "b"], tmp_path / "m", title="t")
    paths += layer_scale_heatmap({"2-3": [1.0, 0.9], "2-4": [1.0, 0.8]}, ["a", "b"], tmp_path / "l")
    assert sorted(p.suffix for p in paths) == [".png", ".png", ".svg", ".svg"]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(b"\x89PNG") if p.suffix == ".png" else b"<svg" in data


def test_cli_cka_writes_matrices_and_heatmaps(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from eqbench.cli import main
    from eqbench.method import METHODS, MethodEntry

    monkeypatch.setitem(METHODS._items, "toy", MethodEntry("toy", lambda *, size="paper": ToySR(), "test only"))
    monkeypatch.setitem(
        METHODS._items,
        "toy-aware",
        MethodEntry("toy-aware", lambda *, size="paper": ToySR(True), "test only"),
    )
    (tmp_path / "data/Set5").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (30 + i, 34, 3), dtype=np.uint8)).save(tmp_path / f"data/Set5/{i}.png")
    out = tmp_path / "out"
    argv = ["analyze", "cka", "--methods", "toy", "toy-aware", "--size", "tiny", "--scales", "2", "3",
            "--crops", "16", "--crop-size", "12", "--batch-size", "8", "--random-init",
            "--data-root", str(tmp_path / "data"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    entries = {(e["kind"], e.get("method") or "~".join(e["methods"]), "-".join(e.get("scales", []))): e
               for e in doc["analyses"]["cka"]}  # fmt: skip
    # per method: one layers-across-scales entry and one layer x layer matrix per scale pair; one
    # between-methods matrix per scale
    assert sorted(entries) == sorted([("layers-across-scales", "toy", ""), ("layers-across-scales", "toy-aware", ""),
                                      ("layer-by-layer", "toy", "2-3"), ("layer-by-layer", "toy-aware", "2-3"),
                                      ("between-methods", "toy~toy-aware", "2-2"),
                                      ("between-methods", "toy~toy-aware", "3-3")])  # fmt: skip
    toy = entries[("layers-across-scales", "toy", "")]
    assert toy["xlabels"] == list(ToySR.feature_taps) and toy["ylabels"] == ["x2 vs x3"] and toy["n_crops"] == 16
    assert toy["matrix"][0][:3] == pytest.approx([1.0] * 3, abs=1e-9)
    cross = entries[("between-methods", "toy~toy-aware", "2-2")]["matrix"]
    assert np.array(cross).shape == (5, 5)
    assert cross[0][0] == pytest.approx(1.0, abs=1e-9)  # same weights, "head" is unmodulated
    assert main(["report", str(out / "results.json")]) == 0  # the HTML report renders the heatmaps
    html = (out / "report.html").read_text()
    # small multiples: one figure per scale pair (both methods as panels), one per scale between methods
    assert 'id="fig-cka-lbl-2-3"' in html
    assert "CKA between methods at x2" in html and "CKA between methods at x3" in html
    assert html.count('<figure id="fig-cka-') == 4  # layers-across-scales + 1 layer x layer + 2 between methods
    assert main(argv) == 0  # a second run replaces the entries
    assert len(json.loads((out / "results.json").read_text())["analyses"]["cka"]) == 6
    for stem in ("cka_toy_layers_across_scales", "cka_toy_x2_vs_x3", "cka_toy_vs_toy-aware_x3"):
        assert (out / "figures" / f"{stem}.png").is_file() and (out / "figures" / f"{stem}.svg").is_file()
    assert main([*argv[:3], "bicubic", *argv[5:]]) == 2  # no feature taps: one clear error
    assert "declares no feature_taps" in capsys.readouterr().err
    assert main([a for a in argv if a != "--random-init"]) == 2  # learned methods need weights
    assert "no weights for toy, toy-aware" in capsys.readouterr().err


def test_gram_does_not_modify_its_input():
    x = np.random.default_rng(6).standard_normal((8, 5))
    before = x.copy()
    gram_linear(x)
    linear_cka(x, x[:, :3], unbiased=True)
    assert np.array_equal(x, before)


def test_centring_keeps_small_differences_on_a_large_common_component():
    # Deep ReLU layers: a large shared offset, tiny per-example variation. HSIC is invariant to the
    # offset; computed from uncentred Grams, float64 cancellation makes it 1e5 times too large.
    g = torch.Generator().manual_seed(7)
    z = 1e-3 * torch.randn(16, 200, generator=g, dtype=torch.float64)
    y = z + 1e-3 * torch.randn(16, 200, generator=g, dtype=torch.float64)
    want = hsic1(gram_linear(z), gram_linear(y))
    assert hsic1(gram_linear(40.0 + z), gram_linear(40.0 + y)) == pytest.approx(want, rel=1e-9)
    assert linear_cka(40.0 + z, 40.0 + y, unbiased=True) == pytest.approx(linear_cka(z, y, unbiased=True), rel=1e-9)
