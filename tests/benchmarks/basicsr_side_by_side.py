#!/usr/bin/env python
"""BasicSR vs eqbench: process CPU time of the whole Set14 bicubic evaluation, side by side, alternating rounds.

    python tests/benchmarks/basicsr_side_by_side.py --basicsr DIR [--pythonpath DIR ...] [--eqbench CHECKOUT]
        [--data-root DIR] [--passes 5] [--rounds 3] [--fixture JSON]

The job timed on both sides: for every Set14 image and each scale s in 2, 3, 4, crop the HR image to a
multiple of s, make LR = imresize(HR, 1/s) rounded to 8 bits, SR = imresize(LR, s) rounded to 8 bits, and
score PSNR-Y and SSIM-Y with s border pixels shaved.
  BasicSR: `imresize` of basicsr/utils/matlab_functions.py and `calculate_psnr`/`calculate_ssim` of
    basicsr/metrics/psnr_ssim.py (test_y_channel=True, BGR arrays), on images read with
    cv2.imread(IMREAD_COLOR), i.e. BGR with the greyscale image as three equal channels.
  eqbench: what tests/benchmarks/test_bench_eval.py times: create_method("bicubic", uint8=False),
    get_protocol("basicsr") and evaluate_images once per scale, on eqbench.data.io.load_image's arrays
    (greyscale repeated to three channels, as BasicSR reads it).

How it is measured: each side runs in a worker process of its own (this script, with the python that
runs it), everything limited to 1 thread (OMP/MKL/OpenBLAS, torch, cv2). A worker loads the images
(not timed), runs the job once to warm up, then --passes times, and reports the median process CPU time
(time.process_time) of a pass. A round is one BasicSR worker followed by one eqbench worker; --rounds
rounds are run and the ratio BasicSR/eqbench is given per round and as the median over rounds (CPU
time, not wall time: the machine is shared). Before the timings are believed, the per-image numbers
are checked: every round of a side must give the same numbers, the two sides must agree within 1e-4 dB
PSNR-Y and 2e-6 SSIM-Y, and both must match the BasicSR reference numbers in
tests/fixtures/basicsr/set14_bicubic.json. A digest of the timed eqbench tree's *.py files is taken in
every round, so edits made to it while the rounds run are reported. Exit status 1 if any check fails.

BasicSR is NOT part of this repository. `--basicsr` is an extracted BasicSR source tree (the folder
that holds basicsr/), e.g. the PyPI sdist:
    pip download basicsr==1.4.2 --no-deps -d /tmp/bsr && tar xzf /tmp/bsr/basicsr-1.4.2.tar.gz -C /tmp/bsr
    -> --basicsr /tmp/bsr/basicsr-1.4.2      (a git checkout of XPixelGroup/BasicSR works the same way)
Its psnr_ssim.py imports cv2, which the eqbench venv does not have; install it into a folder of its own
and name that folder with --pythonpath (appended to sys.path in the BasicSR worker only):
    pip install --target /tmp/bsr/deps opencv-python-headless --no-deps   -> --pythonpath /tmp/bsr/deps
numpy and torch are the running python's. Only the two modules above (and the color_util, metric_util
and registry modules they import) are loaded: basicsr's package __init__ files, which import every
arch, dataset and model, are replaced at run time by empty packages pointing at the real folders.

`--eqbench` is the eqbench source tree to time (default: the checkout holding this script); it is put
first on sys.path and the editable install's import hook is removed, so nothing is taken from another
tree. The line "native kernels on/off/absent" tells whether eqbench/native.py exists in that tree and,
if so, whether its compiled kernels loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

PROG = "basicsr_side_by_side"
HERE = Path(__file__).resolve().parent
REPO = Path(__file__).resolve().parents[2]  # the eqbench checkout holding this script
FIXTURE = Path("tests") / "fixtures" / "basicsr" / "set14_bicubic.json"
SCALES = (2, 3, 4)
TOL_PSNR, TOL_SSIM = 1e-4, 2e-6
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
USAGE_ERROR = 3  # a worker's exit status for a one-line setup error (printed on its last stderr line)


def fail(msg: str, code: int = 2):
    """One line on stderr, no traceback."""
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(code)


def basicsr_problem(root: Path) -> str | None:
    """Why `root` is not a usable BasicSR source tree, or None."""
    if not root.is_dir():
        return f"--basicsr {root}: no such folder"
    need = ("basicsr/utils/matlab_functions.py", "basicsr/utils/color_util.py", "basicsr/utils/registry.py",
            "basicsr/metrics/psnr_ssim.py", "basicsr/metrics/metric_util.py")
    missing = [f for f in need if not (root / f).is_file()]
    if missing:
        return (f"--basicsr {root} is not a BasicSR source tree (no {missing[0]}); "
                "give the folder that holds basicsr/, e.g. an extracted basicsr-1.4.2.tar.gz")
    return None


def basicsr_version(root: Path) -> str:
    """basicsr/version.py's __version__ (sdist), else the VERSION file (git checkout), else the folder name."""
    version_py, version_file = root / "basicsr" / "version.py", root / "VERSION"
    if version_py.is_file():
        m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", version_py.read_text())
        if m:
            return m.group(1)
    if version_file.is_file():
        return version_file.read_text().strip()
    return root.name


# ----------------------------------------------------------------------------------------------- workers
def _one_thread_torch():
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def _timed(run, passes):
    run()  # warm-up (also first-use compilation and caches)
    times = []
    for _ in range(passes):
        t0 = time.process_time()
        out = run()
        times.append(time.process_time() - t0)
    return times, out


def _import_basicsr(root: Path, pythonpath: list[Path]):
    """The two BasicSR modules from the source tree, without running basicsr/__init__.py (it imports
    archs, data, models, ...): empty package modules whose __path__ points at the real folders."""
    sys.path.extend(str(p) for p in pythonpath)  # cv2 (numpy and torch come from the running python)
    try:
        import cv2
    except ImportError as e:
        where = ", ".join(str(p) for p in pythonpath) or "no --pythonpath given"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        fail(f"cannot import cv2 ({msg}; searched the running python and {where}); "
             "install it with: pip install --target DIR opencv-python-headless --no-deps, then --pythonpath DIR",
             USAGE_ERROR)
    pkg = root / "basicsr"
    for name, folder in (("basicsr", pkg), ("basicsr.utils", pkg / "utils"), ("basicsr.metrics", pkg / "metrics")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(folder)]
        sys.modules[name] = mod
    import basicsr.utils.color_util as color_util
    sys.modules["basicsr.utils"].bgr2ycbcr = color_util.bgr2ycbcr  # metric_util: from basicsr.utils import bgr2ycbcr
    import basicsr.utils.registry  # noqa: F401  (the real one: it has no dependencies)
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
    from basicsr.utils.matlab_functions import imresize
    return cv2, imresize, calculate_psnr, calculate_ssim


def worker_basicsr(args) -> dict:
    _one_thread_torch()
    cv2, imresize, calculate_psnr, calculate_ssim = _import_basicsr(args.basicsr, args.pythonpath)
    import numpy as np
    cv2.setNumThreads(1)
    files = sorted((args.data_root / "Set14").glob("*.png"))
    images = [(p.stem, cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in files]  # BGR uint8, grey -> 3 channels

    def to_u8(x):  # as BasicSR's tensor2img: clamp to [0, 1], x255, round, uint8
        return (np.clip(x, 0, 1) * 255.0).round().astype(np.uint8)

    def run():
        res = {}
        for name, img in images:
            r = res.setdefault(name, {})
            for s in SCALES:
                h, w = img.shape[:2]
                hr = img[:h - h % s, :w - w % s, ...]
                lr = to_u8(imresize(hr / 255.0, 1 / s))
                sr = to_u8(imresize(lr / 255.0, s))
                r[f"x{s}"] = {"psnr_y": float(calculate_psnr(sr, hr, crop_border=s, test_y_channel=True)),
                              "ssim_y": float(calculate_ssim(sr, hr, crop_border=s, test_y_channel=True))}
        return res

    times, per_image = _timed(run, args.passes)
    return {"times": times, "per_image": per_image,
            "info": f"basicsr {basicsr_version(args.basicsr)} from {args.basicsr}, cv2 {cv2.__version__} "
                    f"({cv2.getNumThreads()} thread), numpy {np.__version__}"}


def _tree_digest(pkg: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def worker_eqbench(args) -> dict:
    checkout = args.eqbench
    # This tree first, and without the editable install's finder: it resolves eqbench.* submodules that the
    # tree lacks (e.g. eqbench.native in an older commit) from the installed checkout instead.
    sys.path.insert(0, str(checkout))
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    torch = _one_thread_torch()
    import numpy as np

    import eqbench
    from eqbench.data.io import load_image
    from eqbench.method import create_method
    from eqbench.protocol import get_protocol
    from eqbench.run.evaluate import evaluate_images
    from eqbench.scales import parse_scale
    origin = Path(eqbench.__file__).resolve()
    if checkout not in origin.parents:
        fail(f"eqbench imported from {origin}, not from {checkout}", USAGE_ERROR)
    tree = _tree_digest(origin.parent)  # the checkout may be edited while rounds run: compare between rounds
    files = sorted((args.data_root / "Set14").glob("*.png"))
    images = []
    for p in files:
        a = load_image(p)
        images.append((p.stem, a if a.ndim == 3 else a[..., None].repeat(3, axis=2)))
    method = create_method("bicubic", uint8=False)
    protocol = get_protocol("basicsr")

    def run():
        return {s: evaluate_images(method, images, parse_scale(s), protocol) for s in SCALES}

    times, cells = _timed(run, args.passes)
    per_image: dict = {}
    for s, cell in cells.items():
        for name, v in cell.per_image.items():
            per_image.setdefault(name, {})[f"x{s}"] = {"psnr_y": float(v["psnr-y"]), "ssim_y": float(v["ssim-y"])}
    if (origin.parent / "native.py").is_file():
        from eqbench import native
        nat = "native kernels " + ("on" if native.lib() is not None else "off")
    else:
        nat = "native kernels absent (no eqbench/native.py)"
    foreign = sorted(n for n, m in list(sys.modules.items()) if (n == "eqbench" or n.startswith("eqbench."))
                     and getattr(m, "__file__", None) and checkout not in Path(m.__file__).resolve().parents)
    if foreign:
        fail(f"eqbench modules loaded from outside {checkout}: {', '.join(foreign)}", USAGE_ERROR)
    return {"times": times, "per_image": per_image, "tree": tree,
            "info": f"eqbench from {origin.parent}, torch {torch.__version__} "
                    f"({torch.get_num_threads()} thread), numpy {np.__version__}, {nat}"}


# ------------------------------------------------------------------------------------------------ driver
def run_worker(side: str, args) -> dict:
    env = dict(os.environ, **THREAD_ENV, EQBENCH_DATA=str(args.data_root),
               PYTHONDONTWRITEBYTECODE="1")  # no __pycache__ written into the timed trees
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--eqbench", str(args.eqbench),
           "--basicsr", str(args.basicsr), "--data-root", str(args.data_root), "--passes", str(args.passes)]
    for p in args.pythonpath:
        cmd += ["--pythonpath", str(p)]
    p = subprocess.run(cmd, env=env, cwd=str(HERE), capture_output=True, text=True)
    if p.returncode == USAGE_ERROR and p.stderr.strip():
        print(p.stderr.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        fail(f"the {side} worker failed (exit {p.returncode})", 1)
    return json.loads(p.stdout.strip().splitlines()[-1])


def max_diffs(a: dict, b: dict):
    dp = ds = 0.0
    where_p = where_s = None
    missing = sorted({(n, k) for n in a for k in a[n]} ^ {(n, k) for n in b for k in b[n]})
    for n in a:
        for k in a[n]:
            if n not in b or k not in b[n]:
                continue
            d1 = abs(a[n][k]["psnr_y"] - b[n][k]["psnr_y"])
            d2 = abs(a[n][k]["ssim_y"] - b[n][k]["ssim_y"])
            if d1 > dp:
                dp, where_p = d1, f"{n} {k}"
            if d2 > ds:
                ds, where_s = d2, f"{n} {k}"
    return dp, where_p, ds, where_s, missing


def report_diff(label, a, b) -> bool:
    dp, wp, ds, ws, missing = max_diffs(a, b)
    ok = dp <= TOL_PSNR and ds <= TOL_SSIM and not missing
    print(f"  {label}: max |dPSNR-Y| {dp:.3g} dB ({wp}), max |dSSIM-Y| {ds:.3g} ({ws})"
          + (f", missing {missing}" if missing else "") + ("  OK" if ok else "  FAIL"))
    return ok


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--basicsr", type=Path, required=True,
                    help="extracted BasicSR source tree (the folder holding basicsr/), outside this repository")
    ap.add_argument("--pythonpath", type=Path, action="append", default=[], metavar="DIR",
                    help="folder appended to sys.path in the BasicSR worker (e.g. a pip --target with cv2); repeatable")
    ap.add_argument("--eqbench", type=Path, default=REPO,
                    help=f"eqbench source tree to time (first on sys.path; default: {REPO})")
    ap.add_argument("--data-root", type=Path, default=None,
                    help="folder holding Set14/ (default: $EQBENCH_DATA)")
    ap.add_argument("--passes", type=int, default=5, help="timed passes per worker (after 1 warm-up)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fixture", type=Path, default=None,
                    help=f"BasicSR reference numbers (default: <eqbench>/{FIXTURE}, else this checkout's)")
    ap.add_argument("--worker", choices=("basicsr", "eqbench"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.data_root is None:
        if not os.environ.get("EQBENCH_DATA"):
            fail("no data: give --data-root DIR or set EQBENCH_DATA (the folder holding Set14/)")
        args.data_root = Path(os.environ["EQBENCH_DATA"])
    args.data_root = args.data_root.expanduser().resolve()
    args.basicsr = args.basicsr.expanduser().resolve()
    args.eqbench = args.eqbench.expanduser().resolve()
    args.pythonpath = [p.expanduser().resolve() for p in args.pythonpath]
    return args


def check_setup(args):
    problem = basicsr_problem(args.basicsr)
    if problem:
        fail(problem)
    for p in args.pythonpath:
        if not p.is_dir():
            fail(f"--pythonpath {p}: no such folder")
    if not (args.eqbench / "eqbench" / "__init__.py").is_file():
        fail(f"--eqbench {args.eqbench} is not an eqbench source tree (no eqbench/__init__.py)")
    if not sorted((args.data_root / "Set14").glob("*.png")):
        fail(f"no Set14/*.png under {args.data_root} (set --data-root or EQBENCH_DATA)")
    if args.passes < 1 or args.rounds < 1:
        fail("--passes and --rounds must be at least 1")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        out = worker_basicsr(args) if args.worker == "basicsr" else worker_eqbench(args)
        out["median"] = statistics.median(out["times"])
        print(json.dumps(out))
        return
    check_setup(args)

    print(f"command: {' '.join([sys.executable] + sys.argv)}")
    print(f"eqbench checkout: {args.eqbench}", end="")
    try:
        rev = subprocess.run(["git", "-C", str(args.eqbench), "log", "-1", "--format=%h %s"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(args.eqbench), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        print(f" @ {rev[:90]}{' (+ uncommitted changes)' if dirty else ''}")
    except OSError:
        print()
    load0 = os.getloadavg()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"{args.rounds} rounds x (1 warm-up + {args.passes} timed passes) per side; "
          f"median process CPU time per pass, 1 thread")

    ratios, results = [], {"basicsr": [], "eqbench": []}
    for r in range(1, args.rounds + 1):
        b = run_worker("basicsr", args)
        e = run_worker("eqbench", args)
        results["basicsr"].append(b)
        results["eqbench"].append(e)
        ratio = b["median"] / e["median"]
        ratios.append(ratio)
        print(f"round {r}: basicsr {b['median']:.3f} s (passes {min(b['times']):.3f}-{max(b['times']):.3f}), "
              f"eqbench {e['median']:.3f} s (passes {min(e['times']):.3f}-{max(e['times']):.3f}), "
              f"ratio basicsr/eqbench {ratio:.2f}  [load {os.getloadavg()[0]:.2f}, eqbench *.py {e['tree']}]",
              flush=True)
    print(f"median ratio basicsr/eqbench: {statistics.median(ratios):.2f} "
          f"(basicsr median {statistics.median(x['median'] for x in results['basicsr']):.3f} s, "
          f"eqbench median {statistics.median(x['median'] for x in results['eqbench']):.3f} s)")
    load1 = os.getloadavg()
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print("sides:\n  basicsr: " + results["basicsr"][0]["info"] + "\n  eqbench: " + results["eqbench"][0]["info"])

    print("per-image agreement (tolerance 1e-4 dB PSNR-Y, 2e-6 SSIM-Y):")
    ok = True
    bs, eq = results["basicsr"][0]["per_image"], results["eqbench"][0]["per_image"]
    for side in ("basicsr", "eqbench"):  # every round of a side gives the same numbers
        for x in results[side][1:]:
            if x["per_image"] != results[side][0]["per_image"]:
                print(f"  {side}: per-image numbers differ between rounds  FAIL")
                ok = False
    trees = [x["tree"] for x in results["eqbench"]]
    if len(set(trees)) > 1:
        print(f"  WARNING: the eqbench sources changed between rounds ({' '.join(trees)}): "
              "rounds measured different code")
    ok &= report_diff("basicsr vs eqbench", bs, eq)
    fixture = args.fixture
    if fixture is None:
        fixture = args.eqbench / FIXTURE if (args.eqbench / FIXTURE).is_file() else REPO / FIXTURE
    if fixture.is_file():
        ref = json.loads(fixture.read_text())["per_image"]
        ok &= report_diff(f"basicsr vs {fixture.name}", bs, ref)
        ok &= report_diff(f"eqbench vs {fixture.name}", eq, ref)
    else:
        print(f"  (no fixture at {fixture})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
