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
EQSR (needs einops): the arch files are loaded by path (EQSR/archs/__init__.py's registry scan skipped);
cupy and BasicSR's registry are stubbed, and arch_util's `trunc_normal_`/`to_2tuple` and the validation
dataset's `make_coord` are compiled alone (their modules import torchvision and BasicSR's ops); the
CuPy involution (`_involution_cuda`, CUDA-only) is replaced by a CPU one that sums the same 3x3 offsets,
in the kernel's order, with F.unfold. The official timing includes that CPU involution.
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

METHODS = ("liif", "lte", "metasr", "arbsr", "eqsr")


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


def _compile_functions(path, names, scope):
    """Top-level functions `names` of an official source file, compiled on their own into `scope`
    (their modules import deps that the test path does not use)."""
    tree = ast.parse(open(path).read())
    fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]
    exec(compile(ast.Module(fns, []), path, "exec"), scope)
    return scope


def _trainer_function(root, name):
    """One method of the official trainer.py, compiled on its own (the module imports training-only deps)."""
    import torch
    return _compile_functions(os.path.join(root, "trainer.py"), {name}, {"torch": torch, "math": math})[name]


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


# EQSR's published configuration: network_g of the official options/test/*.yml (`upscale` is stored,
# never used; the Neural Kriging upsampler's width is hard-coded to 256 in the arch file).
EQSR_PAPER = dict(upscale=4, in_chans=3, img_size=64, window_size=16, compress_ratio=3, squeeze_factor=30,
                  conv_scale=0.01, overlap_ratio=0.5, img_range=1.0, depths=[5] * 6, embed_dim=180,
                  num_heads=[6] * 6, mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")


def _involution_unfold(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """CPU stand-in for EQSR's CuPy `_involution_cuda`: out[n, c, h, w] = sum over the kernel offsets
    (kh, kw), in the CUDA kernel's order, of weight[n, c // (C / G), kh, kw, h, w] * input at the
    offset (zero outside), the input's neighbourhoods taken with F.unfold."""
    import torch.nn.functional as F
    from torch.nn.modules.utils import _pair
    n, c, _, _ = input.shape
    g, kh, kw, oh, ow = weight.shape[1:]
    cols = F.unfold(input, (kh, kw), dilation=_pair(dilation), padding=_pair(padding), stride=_pair(stride))
    cols = cols.view(n, g, c // g, kh * kw, oh, ow)
    weight = weight.reshape(n, g, 1, kh * kw, oh, ow)
    out = cols[:, :, :, 0] * weight[:, :, :, 0]
    for k in range(1, kh * kw):
        out = out + cols[:, :, :, k] * weight[:, :, :, k]
    out = out.reshape(n, c, oh, ow)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _official_eqsr(root, torch):
    import collections.abc
    import importlib.util
    import warnings
    from itertools import repeat

    import torch.nn.functional as F
    archs = os.path.join(root, "EQSR", "archs")
    if not os.path.isdir(archs):
        sys.exit(f"side_by_side: {root} has no EQSR/archs (expected a checkout of neuralchen/EQSR)")
    try:
        import einops  # noqa: F401  (used by the official arch files)
    except ImportError:
        sys.exit("side_by_side: the official EQSR code needs einops (pip install einops)")

    def stub(name, **attrs):  # no __path__: nothing of the real packages is imported by accident
        sys.modules[name] = m = types.ModuleType(name)
        m.__dict__.update(attrs)

    # Unused imports stubbed: cupy (the involution's CUDA kernel; its memoize decorator runs at import),
    # BasicSR's registry (and its package __init__, which imports every arch, dataset and model).
    stub("cupy", _util=types.SimpleNamespace(memoize=lambda **k: (lambda f: f)))
    for name in ("basicsr", "basicsr.utils", "basicsr.archs", "EQSR", "EQSR.archs"):
        stub(name)
    stub("basicsr.utils.registry", ARCH_REGISTRY=types.SimpleNamespace(register=lambda *a: (lambda c: c)))
    # arch_util imports torchvision and BasicSR's DCN op: the initialisers the arch uses compiled alone
    util = _compile_functions(os.path.join(root, "basicsr", "archs", "arch_util.py"),
                              {"_no_grad_trunc_normal_", "trunc_normal_", "_ntuple"},
                              {"torch": torch, "math": math, "warnings": warnings, "collections": collections,
                               "repeat": repeat})
    stub("basicsr.archs.arch_util", trunc_normal_=util["trunc_normal_"], to_2tuple=util["_ntuple"](2))

    def load(name):  # the file itself, not EQSR/archs/__init__.py's registry scan (relative imports resolve)
        spec = importlib.util.spec_from_file_location(f"EQSR.archs.{name}", os.path.join(archs, f"{name}.py"))
        mod = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    inv = load("Involution_Kernel_Abs_Pos")
    del sys.modules["cupy"]  # imported now; einops would take the stub in sys.modules for a CuPy backend
    inv._involution_cuda = _involution_unfold
    arch = load("hat_ModMBFormer_Sim_arch")
    # the validation dataset's coordinates (basicsr/data/DSF_val_dataset.py imports torchvision)
    data = _compile_functions(os.path.join(root, "basicsr", "data", "DSF_val_dataset.py"),
                              {"make_coord"}, {"torch": torch})
    torch.manual_seed(0)
    model = arch.EQSR(**EQSR_PAPER).eval()
    win = EQSR_PAPER["window_size"]

    def ckpt(path):
        sd = model.state_dict()
        torch.save({"params_ema": sd, "params": sd}, path)

    def run(lr, H, W):
        # DSF_val_Dataset.__getitem__ (batched by the loader), then HATModel pre_process/process/post_process
        hr_coord = data["make_coord"]((H, W))  # to_pixel_samples(crop_hr)
        cell = torch.ones_like(hr_coord)
        cell[:, :, 0] = cell[:, :, 0] * 2 / H
        cell[:, :, 1] = cell[:, :, 1] * 2 / W
        coord, cell = hr_coord.unsqueeze(0), cell.permute(2, 0, 1).unsqueeze(0)
        h, w = lr.shape[-2:]
        pad_h, pad_w = (win - h % win) % win, (win - w % win) % win
        with torch.no_grad():
            img = F.pad(lr, (0, pad_w, 0, pad_h), "reflect")
            return model(img, coord, cell, pad_h, pad_w, H / h).clamp_(0, 1)
    return model, ckpt, run


def official(method, root, torch):
    if method in ("liif", "lte"):
        return _official_implicit(root, method, torch)
    return {"metasr": _official_metasr, "arbsr": _official_arbsr, "eqsr": _official_eqsr}[method](root, torch)


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
