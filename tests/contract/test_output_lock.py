"""One writer per output (issue 21): the fcntl lock of eqbench/lock.py, across real processes.

Each test starts real processes (a lock held by another process is the whole point); the lock is
in-process re-entrant, so an in-process second writer would not be refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eqbench.lock import lock_path, output_lock
from eqbench.results import load_results
from tests.helpers.cli import run_cli as _run

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from eqbench.lock import output_lock
with output_lock(sys.argv[1], sys.argv[2], what="test holder"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)


def _holder(folder: Path, name: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), name, str(seconds)], stdout=subprocess.PIPE,
                         text=True, env=_env())
    assert p.stdout.readline().strip() == "locked"
    return p




def _eval_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root", str(root),
            "--out", str(out), "--no-progress", *extra]


def test_second_writer_refused_with_one_line(tiny_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert _run(_eval_args(tiny_root, out), capsys)[0] == 0
    before = (out / "results.json").read_bytes()
    holder = _holder(out, "results.json", 30)
    try:
        monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "0.3")
        code, _, err = _run(_eval_args(tiny_root, out, "--resume", "--scales", "3"), capsys)
        assert code == 2 and "Traceback" not in err
        assert f"is being written by pid {holder.pid} (test holder" in err and len(err.strip().splitlines()) == 1
        assert (out / "results.json").read_bytes() == before
        # analyze and report into the same file wait for the same lock
        code, _, err = _run(["analyze", "equivariance", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2",
                             "--data-root", str(tiny_root), "--out", str(out)], capsys)
        assert code == 2 and "is being written by" in err
        assert (out / "results.json").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_writer_waits_for_the_lock(tiny_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    holder = _holder(out, "results.json", 1.5)
    monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "60")
    t0 = time.monotonic()
    code, _, err = _run(_eval_args(tiny_root, out), capsys)
    holder.wait()
    assert code == 0, err
    assert "waiting up to 60 s" in err and time.monotonic() - t0 > 1.0
    assert len(load_results(out / "results.json")["rows"]) == 3


def test_sigkilled_holder_leaves_no_stale_lock(tiny_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    holder = _holder(out, "results.json", 600)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert lock_path(out, "results.json").exists()  # the file stays; the kernel dropped the lock
    monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "0")
    code, _, err = _run(_eval_args(tiny_root, out), capsys)
    assert code == 0, err
    assert "pid" not in err


def test_sigkilled_run_then_resume(tiny_root, tmp_path):
    """A real `eqbench run` killed with SIGKILL mid-run: its lock dies with it, --resume continues."""
    out = tmp_path / "o"
    args = [sys.executable, "-m", "eqbench", *_eval_args(tiny_root, out)[:-1], "--scales", "2", "3", "4", "6"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_env(EQBENCH_LOCK_TIMEOUT="0"))
    deadline = time.monotonic() + 120
    while not (out / "results.json").exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    res = subprocess.run(args + ["--resume"], capture_output=True, text=True, env=_env(EQBENCH_LOCK_TIMEOUT="0"))
    assert res.returncode == 0, res.stderr
    scales = {tuple(r["scale"]) for r in load_results(out / "results.json")["rows"]}
    assert scales == {(2.0, 2.0), (3.0, 3.0), (4.0, 4.0), (6.0, 6.0)}


def test_two_concurrent_resumed_runs_keep_both(tiny_root, tmp_path):
    """Issue 21's failure: two runs into one --out each kept only its own cells. Now the second waits for
    the lock and merges under it (--resume), so the file holds both runs' cells."""
    out = tmp_path / "o"
    procs = [subprocess.Popen([sys.executable, "-m", "eqbench", *_eval_args(tiny_root, out, "--resume", "--scales", s,
                                                                              "--no-report")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(EQBENCH_LOCK_TIMEOUT="120"))
             for s in ("2", "3")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert {tuple(r["scale"]) for r in doc["rows"]} == {(2.0, 2.0), (3.0, 3.0)}
    assert len(doc["rows"]) == 6


def test_two_runs_without_resume_second_refused(tiny_root, tmp_path):
    out = tmp_path / "o"
    procs = [subprocess.Popen([sys.executable, "-m", "eqbench", *_eval_args(tiny_root, out, "--scales", s,
                                                                              "--no-report")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(EQBENCH_LOCK_TIMEOUT="120"))
             for s in ("2", "3")]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], errs
    loser = errs[[p.returncode for p in procs].index(2)]
    assert "already holds a run; pass --resume" in loser and "Traceback" not in loser
    assert len(load_results(out / "results.json")["rows"]) == 3


def test_lock_is_reentrant_and_bad_timeout(tmp_path, monkeypatch):
    with output_lock(tmp_path, "x.json"), output_lock(tmp_path, "x.json"):
        pass
    monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "soon")
    from eqbench.errors import EqbenchError

    with pytest.raises(EqbenchError, match="EQBENCH_LOCK_TIMEOUT must be a number"):
        with output_lock(tmp_path, "y.json"):
            pass


def test_train_folder_is_locked(tmp_path, capsys, monkeypatch):
    out = tmp_path / "t"
    out.mkdir()
    holder = _holder(out, "train", 30)
    try:
        monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "0")
        code, _, err = _run(["train", "--method", "liif", "--size", "tiny", "--train-data", "samples", "--iters", "1",
                             "--out", str(out), "--no-progress"], capsys)
        assert code == 2 and "is being written by" in err and "Traceback" not in err
        assert sorted(p.name for p in out.iterdir()) == [".train.lock"]
    finally:
        holder.kill()
        holder.wait()
