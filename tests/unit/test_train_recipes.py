"""Recipes: the published schedules as data (../shared/spec/methods.md 1.7, 2.4, 3.4, 4.1, 5.4)."""

from __future__ import annotations

import pytest
import yaml

from eqbench.errors import EqbenchError
from eqbench.method import list_methods, method_entry
from eqbench.train.recipes import get_recipe, recipe_from_dict, with_overrides

K = 1000


@pytest.mark.parametrize("method,name", [(m, n) for m in list_methods() for n in method_entry(m).recipes])
def test_every_builtin_recipe_validates(method, name):
    r = get_recipe(method, name)
    assert r.total_iters > 0 and r.batch_size > 0 and r.phases[0].start == "continue"
    assert recipe_from_dict(r.to_dict()) == r  # the dict a checkpoint records rebuilds the recipe


def test_liif_and_lte_paper():
    for m in ("liif", "lte"):
        r = get_recipe(m, "paper")
        s = r.sampler
        assert (s.kind, s.resize, s.lr_size, s.scale_min, s.scale_max, s.sample_q) == \
            ("points", "pil-bicubic", 48, 1, 4, 2304)
        assert r.batch_size == 16 and r.ema is None and r.loss_weight == 2.0  # L1 on (x - 0.5) / 0.5
        (p,) = r.phases
        assert (p.iters, p.lr, p.milestones, p.gamma) == (1000 * K, 1e-4, (200 * K, 400 * K, 600 * K, 800 * K), 0.5)
    sw = get_recipe("lte", "paper-swinir")
    assert sw.batch_size == 32 and sw.phases[0].lr == 2e-4
    assert sw.phases[0].milestones == (250 * K, 400 * K, 450 * K, 475 * K)  # epochs 500/800/900/950 of 500 it


def test_eqsr_two_phases_with_ema():
    r = get_recipe("eqsr", "paper")
    assert (r.sampler.kind, r.sampler.window, r.batch_size, r.ema, r.betas) == ("window", 48, 32, 0.999, (0.9, 0.99))
    pre, ft = r.phases
    assert (pre.iters, pre.lr, pre.milestones) == (800 * K, 2e-4, (300 * K, 500 * K, 650 * K, 700 * K, 750 * K))
    assert (ft.iters, ft.lr, ft.milestones, ft.start) == (250 * K, 1e-5, (125 * K, 200 * K, 225 * K, 240 * K), "ema")


def test_metasr_and_arbsr_scale_sets():
    m = get_recipe("metasr", "paper")
    assert m.sampler.kind == "pairs" and m.sampler.resize == "matlab-bicubic" and m.sampler.lr_size == 50
    assert m.sampler.scales == tuple((v / 10, v / 10) for v in range(11, 41))
    assert m.loss_weight == 255.0 and m.phases[0].milestones == (200 * K, 400 * K, 600 * K, 800 * K)
    a = get_recipe("arbsr", "paper")
    sym = [s for s in a.sampler.scales if s[0] == s[1]]
    asym = [s for s in a.sampler.scales if s[0] != s[1]]
    assert len(sym) == 30 and len(asym) == 30 and len(set(asym)) == 30
    assert all(v in (1.5, 2.0, 2.5, 3.0, 3.5, 4.0) for s in asym for v in s)
    warm, main = a.phases
    assert (warm.iters, warm.lr, warm.scales) == (1 * K, 5e-5, ((2.0, 2.0), (3.0, 3.0), (4.0, 4.0)))
    assert main.iters == 149 * K and a.total_iters == 150 * K
    # lr = 1e-4 * 2^-(epoch // 30), 1-based epochs of 1000 iterations, epoch 1 being the warm-up
    for epoch in (2, 29, 30, 59, 60, 120, 150):
        assert main.lr_at((epoch - 2) * K) == pytest.approx(1e-4 * 2 ** -(epoch // 30)), epoch
    assert get_recipe("arbsr", "paper-kt").knowledge_transfer == 1.0


def test_lr_schedule_is_a_function_of_the_step():
    p = get_recipe("liif", "paper").phases[0]
    assert [p.lr_at(i) for i in (0, 199_999, 200_000, 799_999, 800_000)] == [1e-4, 1e-4, 5e-5, 1.25e-5, 6.25e-6]


def test_overrides():
    r = with_overrides(get_recipe("eqsr", "paper"), iters=2100, batch_size=4, train_data=("BSD68",))
    assert r.total_iters == 2100 and r.batch_size == 4 and all(p.data == ("BSD68",) for p in r.phases)
    assert [p.iters for p in r.phases] == [1600, 500]
    assert r.phases[0].milestones == (600, 1000, 1300, 1400, 1500)
    s = with_overrides(get_recipe("liif", "paper"), sampler="pairs", resize="matlab-bicubic").sampler
    assert (s.kind, s.lr_size, s.resize, len(s.scales)) == ("pairs", 50, "matlab-bicubic", 30)
    a = with_overrides(get_recipe("arbsr", "paper"), sampler="eqsr")  # the old name of `window`
    assert a.sampler.kind == "window" and all(not p.scales for p in a.phases)
    with pytest.raises(EqbenchError, match="unknown batch kind 'lif'"):
        with_overrides(r, sampler="lif")
    with pytest.raises(EqbenchError, match="fewer than the recipe's 2 phases"):
        with_overrides(r, iters=1)


def test_yaml_recipe_file(tmp_path):
    d = get_recipe("liif", "cpu").to_dict()
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({**d, "method": "*", "batch_size": 3}))
    r = get_recipe("lte", str(tmp_path / "mine.yaml"))
    assert r.method == "lte" and r.batch_size == 3
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**d, "method": "liif"}))
    with pytest.raises(EqbenchError, match="is for method 'liif', not 'lte'"):
        get_recipe("lte", str(tmp_path / "other.yaml"))


@pytest.mark.parametrize("change,msg", [
    ({"batch_sise": 3}, "unknown field 'batch_sise' \\(did you mean 'batch_size'"),
    ({"sampler": {"kind": "pairs"}}, "a pairs sampler needs a list of scales"),
    ({"sampler": {"kind": "liif", "resize": "nearest"}}, "resize: must be one of"),
    ({"sampler": {"kind": "liif", "sample_q": 5000}}, "sample_q 5000 exceeds"),
    ({"phases": []}, "phases: must be a non-empty list"),
    ({"phases": [{"name": "a", "iters": 0, "lr": 1e-4}]}, "iters: must be a positive integer"),
    ({"phases": [{"name": "a", "iters": 5, "lr": -1}]}, "lr: must be positive"),
    ({"phases": [{"name": "a", "iters": 5, "lr": 1e-4, "start": "ema"}]}, "first phase cannot start from EMA"),
    ({"ema": 1.5}, "ema: a decay in \\(0, 1\\)"),
    ({"optimizer": "sgd"}, "only optimizer 'adam'"),
    ({"sampler": {"kind": "pairs", "scales": ["0.5"]}}, "below 1"),
])
def test_bad_recipes_are_named(change, msg):
    d = {**get_recipe("liif", "cpu").to_dict(), **change}
    with pytest.raises(EqbenchError, match=msg):
        recipe_from_dict(d)
