"""Shape rules of the package (eqbench/ and baselines/), read from the source with ast and text search."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def _package_files() -> list[Path]:
    return sorted(p for top in ("eqbench", "baselines") for p in (REPO / top).rglob("*.py"))


def test_no_function_over_60_lines():
    long = []
    for p in _package_files():
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_LINES:
                long.append(f"{p.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_method_name_or_capability_probe_outside_baselines():
    # What a method is and can do is declared where it is registered (eqbench/method.py).
    pattern = re.compile(r'"bicubic"|hasattr\(method')
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in sorted((REPO / "eqbench").rglob("*.py"))
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not hits, "\n".join(hits)
