"""Every parity test runs twice: with the Winograd 3x3 convolutions of CPU inference (the default) and with
the official order of operations (EQBENCH_CONV=direct, oneDNN's direct convolution); see
eqbench/fastconv.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, params=["winograd", "direct"])
def conv3x3_algorithm(request, monkeypatch):
    if request.param == "direct":
        monkeypatch.setenv("EQBENCH_CONV", "direct")
    else:
        monkeypatch.delenv("EQBENCH_CONV", raising=False)
    return request.param
