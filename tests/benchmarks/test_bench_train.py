"""Training speed: one iteration (batch building + forward + backward + Adam step) per tiny preset, with
the method's `cpu` recipe (its own batch builder, default batch), on 16 BSD68 images held in memory.

Against the official code: LIIF with the EDSR-baseline encoder at paper widths, batch 16, 2304 queries
(`test_bench_liif_paper_step`, slow) was timed beside yinboc/liif's train_liif.py loop on the same
images outside the repository; the ratio is in eqbench/train/README.md ("Speed").
Run the timings with:  pytest tests/benchmarks/test_bench_train.py --benchmark-enable
"""

from __future__ import annotations

import pytest
import torch

import eqbench
from eqbench.train.data import BatchPlan, make_loader, single_threaded
from eqbench.train.recipes import get_recipe, with_overrides
from eqbench.train.step import TrainForward, train_step


def _trainable_tiny() -> list[str]:
    out = []
    for name in eqbench.list_methods():
        m = eqbench.create_method(name, size="tiny")
        if any(p.requires_grad for p in m.parameters()):
            out.append(name)
    return out


@pytest.fixture(scope="module")
def images(data_root):
    from eqbench.data.io import load_image

    files = sorted((data_root / "BSD68").glob("*.png"))[:16]
    if len(files) < 16:
        pytest.skip("BSD68 not found under the data root")
    return [load_image(p) for p in files]


def _step_fn(name: str, size: str, recipe_name: str, images, batch: int | None = None):
    torch.manual_seed(0)
    method = eqbench.create_method(name, size=size)
    recipe = with_overrides(get_recipe(name, recipe_name, tuple(method.query_modes)), batch_size=batch)
    scales = recipe.phases[-1].scales or recipe.sampler.scales if recipe.sampler.kind == "pairs" else ()
    model = TrainForward(method, recipe.sampler.kind)
    opt = torch.optim.Adam(method.parameters(), lr=recipe.phases[0].lr)
    step = {"i": 0}

    def one_iteration():
        plan = BatchPlan(seed=0, phase_index=0, phase_start=0, start=step["i"], stop=step["i"] + 1,
                         global_batch=recipe.batch_size, rank=0, world=1, n_images=len(images), scales=scales)
        for batch in single_threaded(make_loader(images, recipe.sampler, plan, 0)):
            loss = train_step(model, opt, batch, recipe, recipe.phases[0].lr)
        step["i"] += 1
        return loss

    return one_iteration, recipe


@pytest.mark.parametrize("name", _trainable_tiny())
def test_bench_tiny_train_step(benchmark, images, name):
    torch.set_num_threads(2)
    # Timed: the recipe's batch. Smoke run (--benchmark-disable, the default suite): a batch of 2.
    fn, recipe = _step_fn(name, "tiny", "cpu", images, batch=None if benchmark.enabled else 2)
    loss = benchmark.pedantic(fn, rounds=3, warmup_rounds=1) if benchmark.enabled else benchmark(fn)
    assert loss == loss and loss > 0  # a finite, positive L1
    benchmark.extra_info.update(batch=recipe.batch_size, sampler=recipe.sampler.kind)


@pytest.mark.slow
def test_bench_liif_paper_step(benchmark, images):
    torch.set_num_threads(2)
    fn, recipe = _step_fn("liif", "paper", "paper", images)
    loss = benchmark.pedantic(fn, rounds=2, warmup_rounds=1) if benchmark.enabled else benchmark(fn)
    assert loss == loss and loss > 0
    benchmark.extra_info.update(batch=recipe.batch_size, sample_q=recipe.sampler.sample_q)
