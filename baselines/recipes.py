"""The training recipes of the built-in methods, as plain data beside them (fields: eqbench/train/recipes.py).

Each method declares its table where it is registered (`register_method(..., recipes=LIIF)`); the
trainer reads it from the registry (`method_entry(name).recipes`).

`paper`: the official schedules (../shared/spec/methods.md 1.7, 2.4, 3.4, 4.1, 5.4). Epoch-based
official schedules are converted at 1000 iterations per epoch (DIV2K x20 repeats / batch 16 for
LIIF/LTE; MetaSR and ArbSR define 1000 iterations per epoch themselves).

`cpu`: what makes a useful `tiny` model on two CPU cores within 30 minutes (BSD68 + SunHays80): the
method's own batch builder and LR resize, batch 8, 2000 iterations, a higher learning rate (4e-4;
1e-3 for LIIF/LTE: tiny models tolerate it, and would not converge at 1e-4 in 2000 steps) with two
late x0.5 steps, and no EMA (a 0.999 average lags a short run). Patch sizes are cut where the dense
supervision would not fit the budget. Seconds per iteration at batch 8 on the 2-core machine at load
~1.6 (tests/benchmarks/test_bench_train.py): LIIF 0.29, LTE 0.27 (48 LR, 2304 px); MetaSR 0.18 at LR 24
(at 50 the HR patches reach 200^2); ArbSR 0.21 at LR 32. The EQSR family decodes only the 32 x 32 target
window (`forward_windows`, as the official training): EQSR 0.56-0.67, eqsr-edsr 0.22 s/it at 1 thread
(the whole-crop decoding used before cost 1.9 s/it for EQSR). Under shared load everything is 3-10x slower.

A method without recipes gets the generic ones (`GENERIC`, keyed by batch kind), whose sampler follows
what the method can do: points for `query_modes` with "points", windows for "grid", else pairs.
"""

from __future__ import annotations

K = 1000
METASR_SCALES = tuple(f"{v / 10:g}" for v in range(11, 41))  # 1.1 .. 4.0
_HALVES = tuple(f"{v / 10:g}" for v in range(15, 41, 5))  # 1.5 .. 4.0
ARBSR_SCALES = METASR_SCALES + tuple(f"{a}x{b}" for a in _HALVES for b in _HALVES if a != b)

POINTS_SAMPLER = {"kind": "points", "resize": "pil-bicubic", "lr_size": 48, "scale_min": 1, "scale_max": 4,
                 "sample_q": 2304}
WINDOW_SAMPLER = {"kind": "window", "resize": "pil-bicubic", "lr_size": 48, "scale_min": 1, "scale_max": 4,
                 "window": 48}
# The EQSR family on CPU: 32 x 32 LR crops, the 32 x 32 target window decoded (see the docstring).
WINDOW_CPU_SAMPLER = {**WINDOW_SAMPLER, "lr_size": 32, "window": 32}
PAIRS_SAMPLER = {"kind": "pairs", "resize": "matlab-bicubic", "lr_size": 50, "scales": METASR_SCALES}

_CPU_DATA = ("BSD68", "SunHays80")


def cpu_recipe(sampler: dict, iters: int = 2000, lr: float = 4e-4, batch: int = 8, **extra) -> dict:
    return {
        "source": "eqbench cpu recipe (not published)",
        "sampler": sampler, "batch_size": batch, **extra,
        "phases": [{"name": "main", "iters": iters, "lr": lr, "data": _CPU_DATA,
                    "milestones": [int(iters * 0.7), int(iters * 0.9)], "gamma": 0.5}],
    }


_LIIF_PAPER = {
    "source": "liif:configs/train-div2k/train_edsr-baseline-liif.yaml (also train_rdn-liif.yaml)",
    "sampler": POINTS_SAMPLER, "batch_size": 16, "loss_weight": 2.0,
    "phases": [{"name": "main", "iters": 1000 * K, "lr": 1e-4, "data": ["DIV2K-train"],
                "milestones": [200 * K, 400 * K, 600 * K, 800 * K], "gamma": 0.5}],
}

_EQSR_PAPER = {
    "source": "eqsr:options/train/train_EQSR_ImageNet_from_scratch.yml + "
              "train_EQSR_finetune_from_ImageNet_pretrain.yml (4 GPUs x 8)",
    "sampler": WINDOW_SAMPLER, "batch_size": 32, "betas": [0.9, 0.99], "ema": 0.999,
    "phases": [
        {"name": "pretrain", "iters": 800 * K, "lr": 2e-4, "data": ["ImageNet-train"],
         "milestones": [300 * K, 500 * K, 650 * K, 700 * K, 750 * K], "gamma": 0.5},
        {"name": "finetune", "iters": 250 * K, "lr": 1e-5, "data": ["DF2K"], "start": "ema",
         "milestones": [125 * K, 200 * K, 225 * K, 240 * K], "gamma": 0.5},
    ],
    "notes": "EQSR's DF2K finetune uses enlarge ratio 20; ImageNet keeps images with both sides > 193.",
}

_METASR_PAPER = {
    "source": "metasr: README + option.py (official Meta-RDN; LR by MATLAB imresize, rgb_range 255)",
    "sampler": PAIRS_SAMPLER, "batch_size": 16, "loss_weight": 255.0,
    "phases": [{"name": "main", "iters": 1000 * K, "lr": 1e-4, "data": ["DIV2K-train"],
                "milestones": [200 * K, 400 * K, 600 * K, 800 * K], "gamma": 0.5}],
}

_ARBSR_PAPER = {
    "source": "arbsr: main.sh, option.py, trainer.py (init from RCAN_BIX4 via --init; rgb_range 255)",
    "sampler": {**PAIRS_SAMPLER, "scales": ARBSR_SCALES}, "batch_size": 16, "loss_weight": 255.0,
    "phases": [
        {"name": "warmup", "iters": 1 * K, "lr": 5e-5, "data": ["DIV2K-train"], "scales": ["2", "3", "4"]},
        # trainer.py: lr = 1e-4 * 2^-(epoch // 30) for 1-based epochs 2..150 (epoch 1 is the warm-up
        # above), so the halvings fall on epochs 30, 60, 90, 120, 150 = local iterations 28k, 58k, ...
        {"name": "main", "iters": 149 * K, "lr": 1e-4, "data": ["DIV2K-train"],
         "milestones": [28 * K, 58 * K, 88 * K, 118 * K, 148 * K], "gamma": 0.5},
    ],
}

# LIIF/LTE cpu: lr 1e-3 (measured on liif tiny, same batches: training L1 ~15% below lr 4e-4 after
# 100-140 iterations).
LIIF = {"paper": _LIIF_PAPER, "cpu": cpu_recipe(POINTS_SAMPLER, lr=1e-3, loss_weight=2.0)}
LTE = {
    "paper": {**_LIIF_PAPER, "source": "lte:configs/train-div2k/train_edsr-baseline-lte.yaml"},
    "paper-swinir": {
        **_LIIF_PAPER, "source": "lte:configs/train-div2k/train_swinir-lte.yaml (4 GPUs)",
        "batch_size": 32,
        "phases": [{"name": "main", "iters": 500 * K, "lr": 2e-4, "data": ["DIV2K-train"],
                    "milestones": [250 * K, 400 * K, 450 * K, 475 * K], "gamma": 0.5}],
    },
    "cpu": cpu_recipe(POINTS_SAMPLER, lr=1e-3, loss_weight=2.0),
}
METASR = {
    "paper": _METASR_PAPER,
    "paper-liif": {**_LIIF_PAPER, "source": "liif:configs/train-div2k/train_edsr-baseline-metasr.yaml"},
    "cpu": cpu_recipe({**PAIRS_SAMPLER, "lr_size": 24}),
}
ARBSR = {
    "paper": _ARBSR_PAPER,
    "paper-kt": {**_ARBSR_PAPER, "knowledge_transfer": 1.0,
                 "notes": "ArbSR paper Sec. 3.3: + lambda * L1(student, fixed-scale teacher features)"},
    "cpu": cpu_recipe({**PAIRS_SAMPLER, "scales": ARBSR_SCALES, "lr_size": 32}),
}
EQSR = {
    "paper": _EQSR_PAPER,
    # Windowed (only the 32 x 32 target is decoded, as the official training: 0.67 s/it at batch 8,
    # 1 thread; the dense crop decoding used before cost 1.9 s/it) at LIIF's cpu lr.
    "cpu": cpu_recipe(WINDOW_CPU_SAMPLER, iters=3000, lr=1e-3),
}
# eqsr-edsr-tiny (NK width 64; the earlier NK 32 never beat bicubic at x6, Set5 -0.22 dB after 13000
# iterations): 0.22 s/it at 1 thread, 6.5 it/s with `torchrun --nproc_per_node 2` (same global batch),
# so 15000 iterations take 38 min on the two cores (the zoo model: Set5 x6 +1.12 dB over bicubic).
EQSR_EDSR = {**EQSR, "cpu": cpu_recipe(WINDOW_CPU_SAMPLER, iters=15000, lr=1e-3)}
EQSR_SWINIR = EQSR

# For methods that declare no recipes, by the batch kind their query modes call for.
GENERIC = {
    "points": {"cpu": cpu_recipe(POINTS_SAMPLER)},
    "window": {"cpu": cpu_recipe(WINDOW_CPU_SAMPLER)},
    "pairs": {"cpu": cpu_recipe({**PAIRS_SAMPLER, "lr_size": 32})},
}
