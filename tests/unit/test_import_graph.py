"""The package's floors, read from every `import` in the source (also the lazy ones inside functions).

A module may import only from its own floor or a lower one (docs/architecture.md):

    5 commands/, cli.py, __main__.py   parse the command line, call run/ or train/
    4 train/                           the trainer
    3 run/                             the only job runner and results writer
    2 analysis/                        analysis kernels
    1 baselines/                       the methods
    0 services: method, registry, results, provenance, scoring, costs, protocol, scales, checkpoint,
      errors, metrics/, data/, zoo/, report/ (and the package's __init__)

And the units of the package (each subpackage, each top-level module, baselines) form no cycle, so every
unit can be read, tested and replaced from the bottom up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOORS = {"commands": 5, "cli": 5, "__main__": 5, "train": 4, "run": 3, "analysis": 2, "baselines": 1}
SERVICES = 0


def unit_of(module: str) -> str:
    """'eqbench.run.config' -> 'run'; 'eqbench.method' -> 'method'; 'eqbench' -> '__init__';
    'baselines.eqsr' -> 'baselines'."""
    parts = module.split(".")
    if parts[0] == "baselines":
        return "baselines"
    return parts[1] if len(parts) > 1 else "__init__"


def floor_of(unit: str) -> int:
    return FLOORS.get(unit, SERVICES)


def module_name(path: Path, repo: Path = REPO) -> str:
    rel = path.relative_to(repo).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, repo: Path = REPO) -> set[str]:
    """Absolute names of the eqbench/baselines modules `path` imports (`from . import x` resolved)."""
    mod = module_name(path, repo)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            # `from .. import checkpoint` imports the module eqbench.checkpoint, not the package
            out.update(f"{target}.{a.name}" for a in node.names if a.name != "*")
    return {m for m in out if m.split(".")[0] in ("eqbench", "baselines")}


def package_files() -> list[Path]:
    return sorted(p for top in ("eqbench", "baselines") for p in (REPO / top).rglob("*.py"))


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """{unit: {imported unit: [the importing modules]}} between different units."""
    modules = {module_name(p) for p in package_files()}
    graph: dict[str, dict[str, list[str]]] = {}
    for p in package_files():
        src = module_name(p)
        for target in imports_of(p):
            # `from ..data import batches` names the package and the module; keep what exists
            if target not in modules and target.rpartition(".")[0] in modules:
                continue
            a, b = unit_of(src), unit_of(target)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, []).append(src)
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_scanner_sees_relative_and_lazy_imports(tmp_path):
    pkg = tmp_path / "eqbench" / "run"
    pkg.mkdir(parents=True)
    (tmp_path / "eqbench" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "x.py").write_text("from ..train import y\nimport os\n\ndef f():\n    from .. import method as m\n"
                              "    import baselines.eqsr\n")
    got = imports_of(pkg / "x.py", tmp_path)
    assert {"eqbench.train", "eqbench.train.y", "eqbench.method", "baselines.eqsr"} <= got
    assert "os" not in got


def test_cycle_finder():
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": []}, "b": {}}) == []


def test_no_module_imports_from_a_higher_floor():
    bad = [f"{src} (floor {floor_of(a)}) imports {b} (floor {floor_of(b)})"
           for a, targets in unit_graph().items() for b, srcs in targets.items() for src in sorted(set(srcs))
           if floor_of(b) > floor_of(a)]
    assert not bad, "imports up a floor:\n" + "\n".join(bad)


def test_the_units_form_no_cycle():
    graph = unit_graph()
    found = cycles(graph)
    detail = [f"{' <-> '.join(c)}: " + "; ".join(f"{a}->{b} in {sorted(set(graph[a][b]))[0]}"
                                                   for a in c for b in graph.get(a, {}) if b in c) for c in found]
    assert not found, "import cycles:\n" + "\n".join(detail)


@pytest.mark.parametrize("unit", ["method", "registry"])
def test_the_contract_does_not_import_the_implementations(unit):
    # Built-in methods are found through the `eqbench.method_packages` entry point (pyproject.toml).
    assert "baselines" not in unit_graph().get(unit, {})
