"""`eqbench report A.json B.json --sensitivity METHOD`: one method under every protocol, side by side."""

from __future__ import annotations

import json

import pytest

from eqbench.cli import main
from eqbench.errors import EqbenchError
from eqbench.report.sensitivity import sensitivity_table


def _doc(protocol, values, method="bicubic"):
    rows = [{"kind": "eval", "metric": "psnr-y", "method": method, "dataset": "Set5", "scale": [s, s], "value": v}
            for s, v in values.items()]
    return {"config": {"protocol": protocol}, "rows": rows}


def test_table_spread_and_missing_cells():
    t = sensitivity_table([_doc("matlab@1", {2.0: 33.6396, 3.0: 30.385}), _doc("eqsr@1", {2.0: 33.6678})], "bicubic")
    assert t.protocols == ["matlab@1", "eqsr@1"] and t.rows == [("Set5", "2"), ("Set5", "3")]
    assert t.spread(("Set5", "2")) == pytest.approx(0.0282)
    assert t.cells(("Set5", "3")) == ["30.3850", "-", "-"]
    with pytest.raises(EqbenchError, match="no 'liif' rows"):
        sensitivity_table([_doc("matlab@1", {2.0: 1.0})], "liif")
    with pytest.raises(EqbenchError, match="both under protocol matlab@1"):
        sensitivity_table([_doc("matlab@1", {2.0: 1.0}), _doc("matlab@1", {2.0: 2.0})], "bicubic")


def test_cli_sensitivity_from_two_runs(tiny_root, tmp_path, capsys):
    docs = []
    for p in ("matlab", "eqsr"):
        assert main(["run", "--methods", "bicubic", "--datasets", "Set5", "--scales", "2", "--protocol", p,
                     "--data-root", str(tiny_root), "--out", str(tmp_path / p)]) == 0
        docs.append(tmp_path / p / "results.json")
    capsys.readouterr()
    assert main(["report", *map(str, docs), "--sensitivity", "bicubic", "--format", "md"]) == 0
    out = capsys.readouterr().out
    vals = [next(r["value"] for r in json.loads(d.read_text())["rows"] if r["metric"] == "psnr-y") for d in docs]
    assert f"| Set5 | x2 | {vals[0]:.4f} | {vals[1]:.4f} | {abs(vals[0] - vals[1]):.4f} |" in out
    assert main(["report", *map(str, docs), "--sensitivity", "bicubic", "-o", str(tmp_path / "s.html")]) == 0
    assert "matlab@1" in (tmp_path / "s.html").read_text()
    assert main(["report", *map(str, docs)]) == 2
    assert "--sensitivity METHOD" in capsys.readouterr().err
