"""Property: for a generated set of bad arguments and files, every command exits non-zero with one error
line and no traceback, and results already written stay byte-for-byte intact (issue 21).

The cases are generated: each command's valid base arguments with one mutation from its table of bad
values (bad names, numbers, scales, paths, files, devices, results files, configs), plus combinations of
two mutations drawn with a fixed seed. The CLI runs in-process (eqbench.cli.main, SystemExit caught,
stderr captured); a few cases also run as real processes. `pytest -s` prints the count per kind.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eqbench.cli import main

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "eqbench" / "zoo"


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data root, a finished run (its folder is the 'results intact' witness) and bad files."""
    w = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    (w / "data" / "Set5").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(w / "data" / "Set5" / f"im{i}.png")
    code = main(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root",
                 str(w / "data"), "--out", str(w / "run"), "--no-progress"])
    assert code == 0
    good = json.loads((w / "run" / "results.json").read_text())
    row = good["rows"][0]
    files = {
        "empty.json": b"", "truncated.json": (w / "run" / "results.json").read_bytes()[:100],
        "binary.json": bytes(range(256)), "list.json": b"[1, 2]", "other.json": b'{"a": 1}',
        "newer.json": json.dumps({**good, "schema_version": 99}).encode(),
        "norows.json": json.dumps({k: v for k, v in good.items() if k != "rows"}).encode(),
        "badvalue.json": json.dumps({**good, "rows": [{**row, "value": "abc"}]}).encode(),
        "noscale.json": json.dumps({**good, "rows": [{k: v for k, v in row.items() if k != "scale"}]}).encode(),
        "badrow.json": json.dumps({**good, "rows": ["row"]}).encode(),
        "otherprotocol.json": json.dumps({**good, "config": {**good["config"], "protocol": "liif@1"},
                                          "rows": [{**row, "protocol": "liif@1"}]}).encode(),
        "text.pth": b"not a checkpoint\n", "junk.yaml": b"\x00\x01\x02", "list.yaml": b"[1, 2]\n",
        "types.yaml": b"methods: bicubic\nlimit: [1, 2]\n",
        "scales.yaml": b"methods: bicubic\nscales: two\n",  # bad even where --scales overrides it
        "recipe.yaml": b"phases: nope\n", "afile": b"x",
    }
    (w / "bad").mkdir()
    for name, data in files.items():
        (w / "bad" / name).write_bytes(data)
    # Data roots whose Set5 holds one bad image next to a good one.
    png = (w / "data" / "Set5" / "im0.png").read_bytes()
    for root, name, data in (("truncated", "x.png", png[: len(png) // 2]), ("notimage", "x.png", b"not a png"),
                             ("empty", "x.png", b""), ("bomb", "x.png", _bomb_png())):
        (w / "roots" / root / "Set5").mkdir(parents=True)
        (w / "roots" / root / "Set5" / "im0.png").write_bytes(png)
        (w / "roots" / root / "Set5" / name).write_bytes(data)
    return w


def _bomb_png() -> bytes:
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def _cases(w: Path) -> list[tuple[str, str, list[str]]]:
    """(command, kind, argv) for every single mutation of each command's valid base arguments."""
    bad, data, run_out, res = w / "bad", str(w / "data"), str(w / "run"), str(w / "run" / "results.json")
    fresh = str(w / "fresh")
    run_base = ["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--data-root", data,
                "--out", fresh, "--no-progress"]
    results_files = [str(bad / n) for n in ("empty.json", "truncated.json", "binary.json", "list.json", "other.json",
                                            "newer.json", "norows.json", "badvalue.json", "noscale.json",
                                            "badrow.json", "missing.json")] + [str(bad)]
    mut: dict[str, dict[str, list[list[str]]]] = {
        "run": {
            "name": [["--methods", "nosuch"], ["--methods", "LIIF"], ["--datasets", "nosuch"],
                     ["--protocol", "nosuch"], ["--analyses", "bogus"], ["--size", "huge"]],
            "scale": [["--scales", s] for s in ("0.5", "nan", "inf", "-2", "abc", "2x", "1x2x3", "1e400", "0", "",
                                                 "1e300", "2,")],
            "number": [["--limit", "0"], ["--limit", "-1"], ["--limit", "x"], ["--seed", "x"]],
            "weights": [["--methods", "liif", "--weights", "liif"], ["--methods", "liif", "--weights",
                        f"liif={bad / 'missing.pth'}"], ["--methods", "liif", "--weights", f"liif={bad / 'text.pth'}"],
                        ["--weights", f"liif={bad / 'text.pth'}"], ["--methods", "liif", "--weights", f"liif={bad}"]],
            "device": [["--device", d] for d in ("cuda", "cuda:3", "nonsense", "cpu:2", "")],
            "config": [["--config", str(bad / n)] for n in ("missing.yaml", "junk.yaml", "list.yaml", "types.yaml",
                                                            "scales.yaml")] + [["--config", str(bad)]],
            "output": [["--out", str(bad / "afile")], ["--results-name", "a/b.json"], ["--results-name", "x.txt"],
                       ["--out", run_out], ["--out", run_out, "--resume", "--protocol", "classic-y"],
                       ["--resume", "--force"]],
        },
        "analyze": {
            "name": [["--methods", "nosuch"], ["--datasets", "nosuch"], ["--protocol", "bogus"],
                     ["--size", "huge"]],
            "number": [[o, v] for o, v in (("--crops", "0"), ("--crop-size", "0"), ("--batch-size", "2"),
                                           ("--input-sizes", "0"), ("--eq-crop", "3"), ("--min-measurements", "0"),
                                           ("--limit", "0"), ("--crops", "x"))],
            "scale": [["--scales", "abc"], ["--memory-scale", "abc"], ["--timing-scale", "0.5"], ["--scales", "nan"]],
            "weights": [["--methods", "liif", "--weights", f"liif={bad / 'missing.pth'}"],
                        ["--methods", "liif", "--weights", f"liif={bad / 'text.pth'}"],
                        ["--methods", "liif", "--weights", f"liif={bad / 'junk.yaml'}"]],
            "device": [["--device", d] for d in ("cuda", "cuda:3", "nonsense")],
            "output": [["--out", str(bad / "afile")]],
        },
        "report": {
            "results file": [[f] for f in results_files],
            "option": [[res, "--metric", "bogus"], [res, "--format", "bogus"], [res, "-o", str(bad)],
                       [res, "-o", str(bad / "afile" / "r.html")], [res, "--format", "md", "--metric", "bogus"]],
        },
        "compare": {
            "results file": [[f, "--baseline", res] for f in results_files]
            + [[res, "--baseline", f] for f in results_files],
            "number": [[res, "--baseline", res, "--tolerance", t] for t in ("-1", "nan", "inf", "x")],
            "output": [[res, "--baseline", res, "--markdown", str(bad / "afile" / "s.md")]],
        },
        "datasets": {"name": [["verify", "nosuch"], ["bogus"], ["verify", "set5x"]]},
        "methods": {"option": [["extra"], ["--bogus"]]},
        "train": {
            "name": [["--method", "nosuch"], ["--train-data", "nosuch"], ["--train-data", "BSD86"],
                     ["--val-data", "nosuch"], ["--size", "huge"], ["--sampler", "bogus"], ["--recipe", "nosuch"]],
            "number": [[o, v] for o, v in (("--iters", "0"), ("--batch-size", "0"), ("--keep", "-1"),
                                           ("--workers", "-1"), ("--log-every", "0"), ("--iters", "x"))],
            "option": [["--option", "junk"], ["--teacher", "x=y"], ["--val-scales", "abc"]],
            "weights": [["--init", str(bad / "missing.pth")], ["--init", str(bad / "text.pth")]],
            "config": [["--recipe", str(bad / "recipe.yaml")], ["--recipe", str(bad / "junk.yaml")]],
            "device": [["--device", d] for d in ("cuda", "cuda:3", "nonsense")],
            "output": [["--out", str(bad / "afile")]],
        },
        "zoo": {"option": [["add"], ["add", str(bad / "missing")], ["add", str(bad)], ["bogus"],
                           ["cards", "--baseline", str(bad / "missing.json")],
                           ["cards", "--baseline", str(bad / "badvalue.json")]]},
    }
    base = {
        "run": run_base,
        "analyze": ["analyze", "equivariance", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2",
                    "--data-root", data, "--out", fresh],
        "report": ["report"], "compare": ["compare"], "datasets": ["datasets", "--data-root", data],
        "methods": ["methods"], "zoo": ["zoo"],
        "train": ["train", "--method", "liif", "--size", "tiny", "--train-data", "Set5", "--data-root", data,
                  "--iters", "1", "--out", str(w / "train"), "--no-progress"],
    }
    roots = [["--data-root", str(w / "roots" / r)] for r in ("truncated", "notimage", "empty", "bomb")]
    roots += [["--data-root", str(w / "nosuch")], ["--data-root", str(bad / "afile")]]
    for cmd in ("run", "analyze", "train"):
        mut[cmd]["data"] = roots
    cases = [(cmd, kind, base[cmd] + m) for cmd, kinds in mut.items() for kind, ms in kinds.items() for m in ms]
    # Pairs of mutations of `run` (two things wrong at once: still one line, still nothing written).
    r = random.Random(21)
    flat = [m for k, ms in mut["run"].items() if k != "output" for m in ms]
    cases += [("run", "two mutations", run_base + a + b) for a, b in (r.sample(flat, 2) for _ in range(20))]
    cases += [("cli", "command", []), ("cli", "command", ["nosuch"]), ("cli", "command", ["--bogus"])]
    return cases


def _call(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    except Exception as e:  # noqa: BLE001  (any escaping exception is the failure this test looks for)
        return -1, capsys.readouterr().err + f"\nTraceback: {type(e).__name__} escaped: {e}"
    return code, capsys.readouterr().err


def test_bad_inputs_property(world, capsys, monkeypatch):
    monkeypatch.setenv("EQBENCH_LOCK_TIMEOUT", "0")
    witness = (world / "run" / "results.json").read_bytes()
    zoo_before = _tree_digest(ZOO)
    outcomes: collections.Counter = collections.Counter()
    failures = []
    for cmd, kind, argv in _cases(world):
        code, err = _call(argv, capsys)
        # eqbench's own errors: "eqbench: error: ..."; argparse's: "eqbench run: error: ..." after its usage
        errors = [ln for ln in err.splitlines() if ln.startswith("eqbench") and ": error: " in ln]
        intact = ((world / "run" / "results.json").read_bytes() == witness
                  and not (world / "fresh" / "results.json").exists()
                  and not list((world / "train").glob("checkpoints/*"))
                  and not (world / "train" / "final.safetensors").exists())
        ok = code not in (0, None) and "Traceback" not in err and len(errors) >= 1 and intact
        outcomes[(cmd, kind, "ok" if ok else "FAILED")] += 1
        if not ok:
            failures.append(f"{' '.join(argv[:12])} -> exit {code}: {err.strip()[-300:]}")
    assert _tree_digest(ZOO) == zoo_before
    assert not [p for p in world.rglob("*.tmp")]
    total = sum(outcomes.values())
    print(f"\n{total} bad inputs:")
    for (cmd, kind, status), n in sorted(outcomes.items()):
        print(f"  {cmd:>9} {kind:<14} {status:<6} {n}")
    assert not failures, "\n".join(failures)
    assert total >= 180


@pytest.mark.parametrize("argv", [
    ["run", "--methods", "bicubic", "--scales", "1e400"],
    ["report", "{bad}/badvalue.json"],
    ["compare", "{run}/results.json", "--baseline", "{bad}/noscale.json"],
    ["train", "--method", "liif", "--device", "cuda:3", "--out", "{bad}/t"],
])
def test_bad_inputs_in_a_real_process(world, argv):
    argv = [a.format(bad=world / "bad", run=world / "run") for a in argv]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
           "EQBENCH_DATA": str(world / "data")}
    res = subprocess.run([sys.executable, "-m", "eqbench", *argv], capture_output=True, text=True, env=env,
                         cwd=world, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("eqbench: error:")
