"""Maintaining the zoo: add a finished training run, write the model cards from a results.json.

    eqbench zoo add runs/zoo/liif --train-command "OMP_NUM_THREADS=1 eqbench train ..." --wall-seconds 1234
    eqbench zoo cards --baseline reports/baseline.json      # cards + the README margins table

Weights are copied to weights/<method>-<size>.safetensors, the run's log.csv to logs/, and the manifest
entry (sha256, training metadata) is rewritten atomically.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import EqbenchError
from ..method import reference_method
from ..results import write_text_atomic
from . import MANIFEST, ZOO_DIR, _load, sha256_file

CARD_SCALES = ("2", "3", "4", "6")
CARD_SETS = ("Set5", "Set14")


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"format": 1, "models": {}}


def _save(doc: dict) -> None:
    write_text_atomic(MANIFEST, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    _load.cache_clear()


def _last_meta(run: Path) -> dict:
    metas = sorted((run / "checkpoints").glob("*/meta.json"))
    if not metas:
        raise EqbenchError(f"{run} has no checkpoints/*/meta.json: is it an `eqbench train` output folder?")
    return json.loads(metas[-1].read_text())


def add_run(run: str | Path, *, command: str, wall_seconds: float | None = None,
            stage1: str | Path | None = None) -> dict:
    """`stage1`: the run this one started from with --init (its log is kept as logs/<stem>-stage1.csv)."""
    run = Path(run)
    final = run / "final.safetensors"
    if not final.is_file():
        raise EqbenchError(f"{final} not found: the run has not finished")
    meta = _last_meta(run)
    if meta.get("step") != meta.get("total_iters"):
        raise EqbenchError(f"{run}: last checkpoint is step {meta.get('step')} of {meta.get('total_iters')}")
    method, size = meta["method"], meta["size"]
    stem = f"{method}-{size}"
    (ZOO_DIR / "weights").mkdir(exist_ok=True)
    (ZOO_DIR / "logs").mkdir(exist_ok=True)
    shutil.copyfile(final, ZOO_DIR / "weights" / f"{stem}.safetensors")
    shutil.copyfile(run / "log.csv", ZOO_DIR / "logs" / f"{stem}.csv")
    stage1_info = None
    if stage1 is not None:
        first = _last_meta(Path(stage1))
        shutil.copyfile(Path(stage1) / "log.csv", ZOO_DIR / "logs" / f"{stem}-stage1.csv")
        stage1_info = {"recipe": first["recipe"].get("name"), "iterations": first.get("total_iters"),
                       "lr": [p["lr"] for p in first["recipe"]["phases"]], "seed": first.get("seed"),
                       "log": f"logs/{stem}-stage1.csv"}  # fmt: skip
    log_rows = (run / "log.csv").read_text().strip().splitlines()
    elapsed = float(log_rows[-1].split(",")[5]) if len(log_rows) > 1 else None
    recipe = meta["recipe"]
    entry = {
        "size": size, "options": meta.get("options", {}), "file": f"weights/{stem}.safetensors",
        "sha256": sha256_file(ZOO_DIR / "weights" / f"{stem}.safetensors"), "card": f"cards/{stem}.md",
        "log": f"logs/{stem}.csv",
        "train": {"recipe": recipe.get("name"), "sampler": meta.get("sampler"), "resize": meta.get("resize"),
                  "batch_size": meta.get("batch_size"), "iterations": meta.get("total_iters"),
                  "lr": [p["lr"] for p in recipe["phases"]], "loss": recipe.get("loss"), "seed": meta.get("seed"),
                  "data": meta.get("data"), "git": meta.get("git"), "torch": meta.get("torch"),
                  "device": meta.get("device"), "processes": meta.get("world_size", 1),
                  "wall_seconds": wall_seconds, "train_loop_seconds": elapsed,
                  "command": command, "init": meta.get("init"), "stage1": stage1_info},
    }  # fmt: skip
    doc = _manifest()
    doc["models"][method] = {**doc["models"].get(method, {}), **entry}
    _save(doc)
    return entry


def scores_from(baseline: dict) -> dict[str, dict]:
    """{method: {"Set5 x2": {"psnr-y", "ssim-y", "margin"}}} for the card scales, margins vs the reference
    method (bicubic)."""
    ref = reference_method()
    vals: dict[tuple, float] = {}
    for r in baseline["rows"]:
        if r.get("kind", "eval") == "eval" and r["scale"][0] == r["scale"][1]:
            vals[(r["method"], r["dataset"], f"{r['scale'][0]:g}", r["metric"])] = r["value"]
    out: dict[str, dict] = {}
    for (m, ds, s, metric), v in vals.items():
        if metric != "psnr-y" or s not in CARD_SCALES or ds not in CARD_SETS:
            continue
        bic = vals.get((ref, ds, s, "psnr-y"))
        out.setdefault(m, {})[f"{ds} x{s}"] = {"psnr-y": round(v, 4), "ssim-y": round(vals[(m, ds, s, "ssim-y")], 5),
                                              "margin": None if bic is None else round(v - bic, 4)}
    return out


def margins_table(scores: dict[str, dict]) -> str:
    cols = [f"{ds} x{s}" for ds in CARD_SETS for s in CARD_SCALES]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    ref = reference_method()
    for m, sc in scores.items():
        if m == ref:
            continue
        cells = [f"{sc[c]['margin']:+.2f}" if c in sc and sc[c]["margin"] is not None else "-" for c in cols]
        lines.append(f"| {m}-tiny | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_cards(baseline_path: str | Path) -> str:
    from ..results import load_results

    base = load_results(baseline_path)
    scores = scores_from(base)
    doc = _manifest()
    for m, e in doc["models"].items():
        e["scores"] = scores.get(m, {})
        write_text_atomic(ZOO_DIR / e["card"], card(m, e, base["config"].get("protocol", "?"), baseline_path))
    _save(doc)
    return margins_table({m: scores[m] for m in doc["models"] if m in scores})


def card(method: str, e: dict, protocol: str, baseline: str | Path) -> str:
    t = e["train"]
    wall = f"{t['wall_seconds'] / 60:.1f} min" if t.get("wall_seconds") else "?"
    loop = f"{t['train_loop_seconds'] / 60:.1f} min" if t.get("train_loop_seconds") else "?"
    loop = ("stage 2 " if t.get("stage1") else "") + f"training loop {loop}"
    rows = "\n".join(f"| {k} | {v['psnr-y']:.2f} | {v['ssim-y']:.4f} | {v['margin']:+.2f} |"
                     for k, v in e.get("scores", {}).items())  # fmt: skip
    recipe = (f"`{t['recipe']}`: {t['sampler']} batches ({t['resize']} LR), batch {t['batch_size']}, "
              f"{t['iterations']} iterations, Adam lr {t['lr']}, {t['loss']} loss")
    if t.get("stage1"):
        s1 = t["stage1"]
        recipe = (f"stage 1 `{s1['recipe']}` ({s1['iterations']} iterations, lr {s1['lr']}, seed {s1['seed']}, "
                  f"log `{s1['log']}`), then stage 2 from its weights: " + recipe)
    git = t.get("git") or {}
    dirty = " with uncommitted changes" if git.get("dirty") else ""
    if dirty and t.get("code_note"):
        dirty += f" ({t['code_note']})"
    procs = t.get("processes", 1)
    how = (f"{procs} torchrun processes of 1 thread (the whole machine)" if procs > 1
           else "1 thread per run, other runs and jobs alongside")
    data = " + ".join(t["data"]["main"]["datasets"]) + f" ({t['data']['main']['images']} images)"
    return f"""# {method}-tiny (eqbench CPU zoo)

| | |
|---|---|
| method | `{method}`, size `{e['size']}`, options `{json.dumps(e['options'])}` |
| weights | `{e['file']}` (sha256 `{e['sha256']}`) |
| recipe | {recipe} |
| data | {data} from `../shared/datasets` |
| seed | {t['seed']} |
| code | eqbench git `{git.get('sha')}`{dirty}, torch {t['torch']}, {t['device']} |
| wall time | {wall} ({loop}) on the 2-core CPU machine, {how} |
| log | `{e['log']}` (loss, lr, it/s every 10 iterations) |

Command:

```bash
{t['command']}
```

## Scores

PSNR-Y / SSIM-Y under `{protocol}` from `{Path(baseline).as_posix()}`; margin = PSNR-Y minus bicubic's (dB).
x6 is out of the training range (scales 1-4).

| set, scale | PSNR-Y | SSIM-Y | vs bicubic |
|---|---|---|---|
{rows}

A tiny model trained for minutes on 148 images: useful for smoke runs, the analyses and CI, not as a
stand-in for the paper models.
"""
