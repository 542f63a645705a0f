"""`eqbench train` on the command line: flags, one-line errors, and resume after SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from eqbench.cli import main
from eqbench.train import checkpoints as ck
from tests.helpers.train_toy import cli_script, recipe_file, subprocess_env, toy, toy_data_root  # noqa: F401  (fixtures)


def test_cli_trains_with_the_issue_flags(toy, capsys):  # noqa: F811
    rec = recipe_file(toy.tmp / "r.yaml", iters=50)
    out = toy.tmp / "run"
    argv = ["train", "--method", "toy-train", "--size", "tiny", "--recipe", rec, "--sampler", "eqsr",
            "--train-data", "big", "--data-root", str(toy.root), "--iters", "3", "--batch-size", "2",
            "--seed", "1", "--save-every", "2", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert (out / "final.safetensors").is_file()
    assert [d.name for d in ck.list_checkpoints(out / "checkpoints")] == ["00000002", "00000003"]
    import json

    meta = json.loads((out / "checkpoints" / "00000003" / "meta.json").read_text())
    assert meta["sampler"] == "window" and meta["total_iters"] == 3 and meta["batch_size"] == 2
    assert meta["recipe"]["sampler"]["lr_size"] == 48  # --sampler brings the builder's published sizes
    assert meta["recipe"]["phases"][0]["milestones"] == [2]  # 25 of 50, rescaled to 3 iterations
    assert "wrote" in capsys.readouterr().out
    assert main(["train", "--resume", "--out", str(out), "--no-progress"]) == 0  # finished: rewrites final


@pytest.mark.parametrize("argv,msg", [
    (["train", "--out", "X"], "--method is required"),
    (["train", "--method", "toy-train"], "--out DIR is required"),
    (["train", "--method", "toy-train", "--out", "X", "--iters", "0"], "--iters must be positive"),
    (["train", "--method", "toy-train", "--out", "X", "--option", "feats"], "--option takes KEY=VALUE"),
    (["train", "--method", "toy-train", "--out", "X", "--option", "width=3"], "has no option 'width'"),
    (["train", "--method", "toy-train", "--out", "X", "--train-data", "nope"], "unknown dataset 'nope'"),
    (["train", "--resume", "--out", "X"], "cannot resume: X does not exist"),
])
def test_cli_errors_are_one_line(toy, capsys, monkeypatch, argv, msg):  # noqa: F811
    monkeypatch.chdir(toy.tmp)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eqbench: error: ") and msg in err[0], err


def test_sigkill_then_resume_is_bit_identical(toy):  # noqa: F811
    """A real SIGKILL at a random moment after the first checkpoints (possibly mid-write)."""
    script, env = cli_script(toy.tmp), subprocess_env(toy)
    rec = recipe_file(toy.tmp / "r.yaml", iters=40, batch=2)

    def cmd(out):
        return [sys.executable, str(script), "train", "--method", "toy-train", "--option", "dropout=0.2",
                "--recipe", rec, "--train-data", "toy", "--save-every", "2", "--out", str(out),
                "--no-progress"]

    # The reference runs in this process with the subprocesses' single thread (OMP_NUM_THREADS=1):
    # bit identity is a claim about one machine configuration.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(cmd(toy.tmp / "ref")[2:]) == 0
    finally:
        torch.set_num_threads(threads)
    victim = toy.tmp / "victim"
    p = subprocess.Popen(cmd(victim), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not any(int(d.name) >= 4 for d in ck.list_checkpoints(victim / "checkpoints")):
        assert p.poll() is None and time.time() - t0 < 300, "the run ended before it could be killed"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.1))  # 36 more steps and 18 saves remain: it cannot finish first
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait() == -signal.SIGKILL
    assert not (victim / "final.safetensors").exists()
    killed_at = int(ck.list_checkpoints(victim / "checkpoints")[-1].name)
    resume = [sys.executable, str(script), "train", "--resume", "--out", str(victim), "--no-progress"]
    res = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    a, b = load_file(str(toy.tmp / "ref" / "final.safetensors")), load_file(str(victim / "final.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), f"diverged after the kill at step {killed_at}"
