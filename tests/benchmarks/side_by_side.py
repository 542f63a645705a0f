"""eqbench vs the official code: process CPU time of one `upsample`, side by side, alternating rounds.

    python tests/benchmarks/side_by_side.py liif --official /work/official/liif --scales 2 4 --rounds 5
    python tests/benchmarks/side_by_side.py liif --official ... --ref /tmp/eqbench-old --threads 2

Every contestant runs in its own worker process (the official repositories' `models`/`model` packages
would collide with each other and with an older eqbench); the parent sends "run" to the workers in
alternating order (A B, B A, ...) and each worker reports the process CPU time (time.process_time: all
of its threads) and the wall time of one call; ratios are of CPU times (the machine is shared).
Weights: the official model is built under torch.manual_seed(0) at the paper size (official
initialisation), its state_dict is saved in the official checkpoint format and loaded by eqbench's
`load_official`; input torch.rand(1, 3, n, n) under manual_seed(0). Outputs are compared (max abs
difference, [0, 1] range, clamped as both test paths clamp) before timing.

The official code is NOT part of this repository: `--official` points at a checkout of the commit named
in /work/shared/spec/methods.md. Adaptations made here at run time, none changing arithmetic:
`.cuda()` is a no-op (LIIF/LTE hard-code it in query_rgb); timm (imported by LTE's unused SwinIR) and
tensorboardX (imported by utils.py) are stubbed; ArbSR's grid_sample gets align_corners=True (PyTorch
1.1's behaviour, which eqbench follows); Meta-SR's `input_matrix_wpn` is compiled alone from trainer.py.
`--ref PATH` adds a third contestant: another eqbench source tree (e.g. `git archive` of an older commit).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from argparse import Namespace

import numpy as np

METHODS = ("liif", "lte", "metasr", "arbsr")


# ------------------------------------------------------------------------------------------------
# Official adapters: build (seeded), checkpoint, and the official test path for one image.

def _stub_cuda(torch):
    torch.Tensor.cuda = lambda self, *a, **k: self


def _official_implicit(root, name, torch):
    sys.path.insert(0, root)
    _stub_cuda(torch)
    timm = types.ModuleType("timm")
    timm.models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = layers.to_2tuple = layers.trunc_normal_ = None
    tbx = types.ModuleType("tensorboardX")
    tbx.SummaryWriter = None
    sys.modules.update({"timm": timm, "timm.models": timm.models, "timm.models.layers": layers,
                        "tensorboardX": tbx})
    import models  # the official package
    enc = {"name": "edsr-baseline", "args": {"no_upsampling": True}}
    hidden = [256] * (4 if name == "liif" else 3)
    args = {"encoder_spec": enc, "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": hidden}}}
    if name == "lte":
        args["hidden_dim"] = 256
    torch.manual_seed(0)
    model = models.make({"name": name, "args": args}).eval()
    from utils import make_coord

    def ckpt(path):
        torch.save({"model": {"name": name, "args": args, "sd": model.state_dict()}}, path)

    def run(lr, H, W):  # liif/test.py batched_predict with eval_bsize 30000, then *0.5+0.5, clamp
        with torch.no_grad():
            inp = (lr - 0.5) / 0.5
            coord = make_coord((H, W)).unsqueeze(0)
            cell = torch.ones_like(coord)
            cell[:, :, 0] *= 2 / H
            cell[:, :, 1] *= 2 / W
            model.gen_feat(inp)
            preds, n = [], coord.shape[1]
            for ql in range(0, n, 30000):
                preds.append(model.query_rgb(coord[:, ql:ql + 30000], cell[:, ql:ql + 30000]))
            pred = torch.cat(preds, dim=1) * 0.5 + 0.5
            return pred.clamp_(0, 1).view(1, H, W, 3).permute(0, 3, 1, 2)
    return model, ckpt, run


def _trainer_function(root, name):
    """One method of the official trainer.py, compiled on its own (the module imports training-only deps)."""
    src = open(os.path.join(root, "trainer.py")).read()
    fn = next(n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef) and n.name == name)
    import torch
    scope = {"torch": torch, "math": math}
    exec(compile(ast.Module([fn], []), "trainer.py", "exec"), scope)
    return scope[name]


def _official_metasr(root, torch):
    sys.path.insert(0, root)
    from model import metardn
    a = Namespace(scale=[2], G0=64, RDNkSize=3, RDNconfig="B", rgb_range=255, n_colors=3)
    torch.manual_seed(0)
    model = metardn.MetaRDN(a).eval()
    wpn = _trainer_function(root, "input_matrix_wpn")

    def ckpt(path):
        torch.save(model.state_dict(), path)

    def run(lr, H, W):
        r = H / lr.shape[-2]
        model.args.scale = [r]
        model.set_scale(0)
        with torch.no_grad():
            pos, _ = wpn(None, lr.shape[-2], lr.shape[-1], r)
            return (model(lr * 255.0, pos) / 255.0).clamp_(0, 1)
    return model, ckpt, run


def _official_arbsr(root, torch):
    sys.path.insert(0, root)
    import torch.nn.functional as F
    from model import arbrcan
    gs = F.grid_sample
    arbrcan.F = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    arbrcan.F.grid_sample = lambda *a, **k: gs(*a, **{**k, "align_corners": True})
    torch.manual_seed(0)
    model = arbrcan.ArbRCAN(Namespace(data_train="DIV2K", rgb_range=255, n_colors=3, res_scale=1)).eval()

    def ckpt(path):
        torch.save(model.state_dict(), path)

    def run(lr, H, W):
        model.set_scale(H / lr.shape[-2], W / lr.shape[-1])
        with torch.no_grad():
            return (model(lr * 255.0) / 255.0).clamp_(0, 1)
    return model, ckpt, run


def official(method, root, torch):
    if method in ("liif", "lte"):
        return _official_implicit(root, method, torch)
    return {"metasr": _official_metasr, "arbsr": _official_arbsr}[method](root, torch)


def ours(method, ckpt_path, torch, options):
    import eqbench
    model = eqbench.create_method(method, size="paper", **options).eval()
    model.load_official(ckpt_path)

    def run(lr, H, W):
        with torch.inference_mode():
            return model.upsample(lr, (H, W))
    return run


# ------------------------------------------------------------------------------------------------
# Worker: build, run once (output saved), then time "run" requests from stdin.

def worker(a):
    import torch
    proto, sys.stdout = sys.stdout, sys.stderr  # official code prints while building: keep the protocol clean
    torch.set_num_threads(a.threads)
    ckpt = os.path.join(a.tmp, "ckpt.pt")
    if a.role == "official":
        _, save, run = official(a.method, a.official, torch)
        save(ckpt)
    else:
        if a.role == "ref":  # the other tree first, and not the editable install's finder of this one
            sys.path.insert(0, a.ref)
            sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
        run = ours(a.method, ckpt, torch, json.loads(a.options))
    torch.manual_seed(0)
    lr = torch.rand(1, 3, a.size, a.size)
    H = W = a.size * a.scale
    if a.role != "official":
        import eqbench
        print(f"{a.role}: eqbench from {os.path.dirname(eqbench.__file__)}", file=sys.stderr)
    np.save(os.path.join(a.tmp, f"{a.role}.npy"), run(lr, H, W).numpy())
    print("ready", file=proto, flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t0, w0 = time.process_time(), time.perf_counter()
        run(lr, H, W)
        print(time.process_time() - t0, time.perf_counter() - w0, file=proto, flush=True)


def _spawn(a, role, tmp, scale):
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    cmd = [sys.executable, os.path.abspath(__file__), a.method, "--worker", role, "--tmp", tmp,
           "--scale", str(scale), "--size", str(a.size), "--threads", str(a.threads),
           "--options", a.options, "--official", a.official or "", "--ref", a.ref or ""]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        sys.exit(f"side_by_side: the {role} worker failed to start (see its stderr above)")
    return p


def compare(a, scale):
    roles = ["official", "eqbench"] + (["ref"] if a.ref else [])
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for role in roles:  # official first: it writes the checkpoint
            procs[role] = _spawn(a, role, tmp, scale)
        outs = {r: np.load(os.path.join(tmp, f"{r}.npy")) for r in roles}
        times = {r: [] for r in roles}
        walls = {r: [] for r in roles}
        for i in range(a.rounds):
            for role in roles if i % 2 == 0 else roles[::-1]:
                procs[role].stdin.write("run\n")
                procs[role].stdin.flush()
                cpu, wall = procs[role].stdout.readline().split()
                times[role].append(float(cpu))
                walls[role].append(float(wall))
        for p in procs.values():
            p.stdin.close()
            p.wait()
    diff = {r: float(np.abs(outs[r] - outs["official"]).max()) for r in roles if r != "official"}
    med = {r: statistics.median(t) for r, t in times.items()}
    return {"method": a.method, "options": json.loads(a.options), "scale": scale, "size": a.size,
            "threads": a.threads, "load": os.getloadavg(), "max_abs_diff": diff,
            "cpu_s": {r: [round(x, 3) for x in t] for r, t in times.items()},
            "wall_s": {r: [round(x, 3) for x in t] for r, t in walls.items()},
            "ratio_of_medians": {r: round(med[r] / med["official"], 3) for r in roles if r != "official"},
            "per_round_ratio": {r: [round(x / y, 3) for x, y in zip(times[r], times["official"])]
                                for r in roles if r != "official"}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("method", choices=METHODS)
    p.add_argument("--official", help="checkout of the official repository (outside eqbench)")
    p.add_argument("--ref", help="another eqbench source tree to time as a third contestant")
    p.add_argument("--options", default="{}", help="JSON options for eqbench.create_method")
    p.add_argument("--scales", nargs="+", type=int, default=[2, 4])
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--worker", choices=["official", "eqbench", "ref"])
    p.add_argument("--tmp")
    a = p.parse_args(argv)
    if a.worker:
        a.role = a.worker
        return worker(a)
    if not a.official or not os.path.isdir(a.official):
        sys.exit(f"side_by_side: --official must be a checkout of the official {a.method} code (got {a.official!r})")
    for s in a.scales:
        print(json.dumps(compare(a, s)), flush=True)


if __name__ == "__main__":
    main()
