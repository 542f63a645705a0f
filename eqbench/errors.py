"""User-facing errors.

Every problem a user can fix (bad input, missing data, unknown name) raises `EqbenchError` with one
sentence that says what is wrong and how to fix it. The CLI prints it as one line and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EqbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class EqbenchWarning(UserWarning):
    """A recoverable input problem (the CLI prints it as one 'warning:' line)."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' when a close match exists, else ''."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return f" (did you mean {lowered[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> EqbenchError:
    choices = sorted(choices)
    return EqbenchError(f"unknown {kind} {name!r}{suggest(name, choices)}; known: {', '.join(choices)}")
