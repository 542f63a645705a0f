"""The parity tests of the methods built on eqbench's 3x3 convolutions (EDSR/RDN/RCAN backbones, ArbSR's
adapters) run twice: with the Winograd convolutions of CPU inference (the default) and with the official
order of operations (EQBENCH_CONV=direct, oneDNN's direct convolution); see eqbench/fastconv.py. The other
modules here (EQSR's own convolutions, bicubic, resize, the bilinear plug-in) have no such convolution, so
a second run would repeat the first."""

from __future__ import annotations

import pytest

CONV_MODULES = {"test_arbsr", "test_metasr", "test_liif_lte", "test_eqsr_plugins"}


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.rsplit(".", 1)[-1] in CONV_MODULES:
        metafunc.parametrize("conv3x3_algorithm", ["winograd", "direct"], indirect=True)


@pytest.fixture(autouse=True)
def conv3x3_algorithm(request, monkeypatch):
    algorithm = getattr(request, "param", "winograd")
    if algorithm == "direct":
        monkeypatch.setenv("EQBENCH_CONV", "direct")
    else:
        monkeypatch.delenv("EQBENCH_CONV", raising=False)
    return algorithm
