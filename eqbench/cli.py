"""The `eqbench` command line. Every subcommand's --help ends with examples."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import EqbenchError

EXAMPLES = {
    "run": """examples:
  eqbench run --methods bicubic --datasets Set5 Set14 --scales 2 3 4 --protocol classic-y \\
      --data-root ../shared/datasets --out out/bicubic
  eqbench run --methods bicubic liif --datasets Set5 --scales 2 2.75 1.5x4 --weights liif=liif.safetensors""",
    "datasets": """examples:
  eqbench datasets --data-root ../shared/datasets
  eqbench datasets verify Set5 --data-root ../shared/datasets""",
    "methods": """examples:
  eqbench methods""",
}


def _add_common_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="folder holding the datasets (default: $EQBENCH_DATA, else the user "
                   "cache folder ~/.cache/eqbench/data)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="eqbench", description="Benchmark and scale-equivariance analysis suite "
                                 "for arbitrary-scale super-resolution.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("run", help="evaluate methods on datasets and scales", epilog=EXAMPLES["run"],
                       formatter_class=fmt)
    p.add_argument("--methods", nargs="+", required=True, help="method names, or 'all'")
    p.add_argument("--datasets", nargs="+", default=["Set5", "Set14"], help="dataset names (datasets.yaml)")
    p.add_argument("--scales", nargs="+", default=["2", "3", "4"], help="2, 2.75, or HxW like 1.5x4")
    p.add_argument("--protocol", default="matlab", help="matlab (default), classic-y, arbsr, basicsr, liif")
    p.add_argument("--size", default="paper", choices=["paper", "tiny"], help="model preset")
    p.add_argument("--weights", nargs="*", default=[], metavar="METHOD=PATH", help="weights per method")
    p.add_argument("--limit", type=int, help="at most N images per dataset (smoke runs)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (results.json goes there)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue a run in --out, skipping finished cells")
    g.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    _add_common_data(p)

    p = sub.add_parser("datasets", help="list datasets and their status, or verify checksums",
                       epilog=EXAMPLES["datasets"], formatter_class=fmt)
    p.add_argument("action", nargs="?", choices=["list", "verify"], default="list")
    p.add_argument("names", nargs="*", help="datasets to verify (default: all found)")
    _add_common_data(p)

    sub.add_parser("methods", help="list registered methods", epilog=EXAMPLES["methods"], formatter_class=fmt)
    return ap


def _parse_weights(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for it in items:
        if "=" not in it:
            raise EqbenchError(f"--weights takes METHOD=PATH, got {it!r}")
        k, v = it.split("=", 1)
        out.append((k.strip(), v.strip()))
    return tuple(out)


def cmd_run(a: argparse.Namespace) -> int:
    from .method import list_methods
    from .protocol import get_protocol
    from .report.tables import text_table
    from .run.runner import RunConfig, run
    from .scales import parse_scale

    methods = list_methods() if a.methods == ["all"] else a.methods
    if a.limit is not None and a.limit < 1:
        raise EqbenchError("--limit must be a positive number of images")
    weights = _parse_weights(a.weights)
    for m, _ in weights:
        if m not in methods:
            raise EqbenchError(f"--weights names {m!r}, which is not among --methods {' '.join(methods)}")
    cfg = RunConfig(
        methods=tuple(dict.fromkeys(methods)), datasets=tuple(dict.fromkeys(a.datasets)),
        scales=tuple(dict.fromkeys(parse_scale(s) for s in a.scales)), protocol=get_protocol(a.protocol),
        out=Path(a.out), data_root=a.data_root, size=a.size, weights=weights, limit=a.limit,
        device=a.device, seed=a.seed, resume=a.resume, force=a.force,
    )

    def progress(m, ds, scale, cell):
        print(f"  {m:>10} {ds:>8} {scale.label():>7}  psnr-y {cell.mean('psnr-y'):.4f}  "
              f"ssim-y {cell.mean('ssim-y'):.5f}  ({len(cell.per_image)} images)", file=sys.stderr)

    doc = run(cfg, progress=progress)
    print(text_table(doc))
    print(f"wrote {cfg.out / 'results.json'}")
    return 0


def cmd_datasets(a: argparse.Namespace) -> int:
    from .data.datasets import load_catalog, resolve_data_root, status, verify

    root, origin = resolve_data_root(a.data_root)
    catalog = load_catalog()
    names = a.names or list(catalog)
    for n in names:
        if n not in catalog:
            from .errors import unknown_name

            raise unknown_name("dataset", n, catalog)
    print(f"data root: {root} (from {origin})")
    bad = 0
    rows = []
    for n in names:
        st = status(catalog[n], root)
        if a.action == "verify" or (a.action == "list" and catalog[n].checksums and st.found):
            state, problems = verify(st, root)
        else:
            state, problems = ("-" if st.found else "missing"), []
        if a.action == "verify" and state in ("mismatch", "missing"):
            bad += 1
        found = "found" if st.found else "missing"
        rows.append((n, catalog[n].role, found, f"{st.count}/{catalog[n].images}", state, str(st.folder)))
        for pr in problems[:10]:
            rows.append(("", "", "", "", pr, ""))
    widths = [max(len(r[i]) for r in rows + [("dataset", "role", "status", "images", "checksums", "location")])
              for i in range(6)]
    for r in [("dataset", "role", "status", "images", "checksums", "location")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if bad:
        raise EqbenchError(f"{bad} dataset(s) failed verification")
    return 0


def cmd_methods(a: argparse.Namespace) -> int:
    from .method import list_methods, method_entry

    for n in list_methods():
        e = method_entry(n)
        opts = ", ".join(e.options) or "-"
        print(f"{n:<12} sizes: {'/'.join(e.sizes):<11} options: {opts:<40} {e.description}")
    return 0


COMMANDS = {"run": cmd_run, "datasets": cmd_datasets, "methods": cmd_methods}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"eqbench: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data.io import EqbenchWarning

    default_show = warnings.showwarning

    def show(message, category, *rest, **kw):
        if issubclass(category, EqbenchWarning):
            return _show_warning(message, category, *rest)
        return default_show(message, category, *rest, **kw)

    warnings.showwarning = show
    try:
        return COMMANDS[args.command](args)
    except EqbenchError as e:
        print(f"eqbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("eqbench: interrupted; finished cells are saved (continue with --resume)", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = default_show


if __name__ == "__main__":
    sys.exit(main())
