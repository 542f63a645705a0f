"""What a method is and can do is declared where it is registered (eqbench/method.py)."""

from __future__ import annotations

import pytest

import eqbench.method as method
from eqbench.errors import EqbenchError
from eqbench.method import (
    BackboneInit,
    TransferStudent,
    WindowDecoder,
    create_method,
    list_methods,
    method_entry,
    reference_method,
)


def test_learned_and_reference_are_declared():
    assert reference_method() == "bicubic"
    assert [m for m in list_methods() if not method_entry(m).learned] == ["bicubic"]
    # every learned built-in declares its training recipes beside it (baselines/recipes.py)
    assert all({"paper", "cpu"} <= set(method_entry(m).recipes) for m in list_methods() if m != "bicubic")


@pytest.mark.parametrize("name, abilities", [
    ("eqsr", {WindowDecoder}), ("eqsr-edsr", {WindowDecoder}), ("arbsr", {TransferStudent, BackboneInit}),
    ("liif", set()), ("metasr", set()), ("bicubic", set()),
])  # fmt: skip
def test_optional_abilities_are_protocols(name, abilities):
    m = create_method(name, size="tiny")
    assert {p for p in (WindowDecoder, TransferStudent, BackboneInit) if isinstance(m, p)} == abilities


def test_without_the_entry_points_the_error_names_the_fix(monkeypatch):
    monkeypatch.setattr(method, "_loaded", [])
    monkeypatch.setattr(method, "entry_points", lambda group: [])
    for _ in range(2):  # and again: a failed lookup does not leave the registry marked as loaded
        with pytest.raises(EqbenchError, match=r"eqbench.method_modules entry points.*pip install -e \."):
            list_methods()


def test_entry_point_modules_are_imported_once(monkeypatch):
    loaded = []

    class EP:
        name, value = "mine", "my_methods"

        def load(self):
            loaded.append(self.value)

    monkeypatch.setattr(method, "_loaded", [])
    monkeypatch.setattr(method, "entry_points", lambda group: [EP(), EP()] if group == method.ENTRY_POINT_GROUP else [])
    list_methods()
    list_methods()
    assert loaded == ["my_methods"]
