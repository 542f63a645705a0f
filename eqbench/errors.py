"""User-facing errors.

Every problem a user can fix (bad input, missing data, unknown name) raises `EqbenchError` with one
sentence that says what is wrong and how to fix it. The CLI prints it as one line and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import math
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


class NonFiniteOutput(EqbenchError):
    """A model produced NaN or Inf on one input: the cell it belongs to is not scored."""


def check_finite(t, what: str) -> None:
    """Raise NonFiniteOutput naming `what` when tensor `t` holds NaN or Inf."""
    import torch

    # One reduction instead of an elementwise mask: a NaN or Inf anywhere makes the sum non-finite, so a
    # finite sum proves every element finite; only a non-finite sum (maybe mere overflow) is checked fully.
    if t.is_floating_point() and math.isfinite(t.sum(dtype=torch.float64).item()):
        return
    if not bool(torch.isfinite(t).all()):
        kind = "NaN" if bool(torch.isnan(t).any()) else "Inf"
        raise NonFiniteOutput(f"{what}: the model output holds {kind} values; nothing was scored for it "
                              "(check the weights, e.g. a diverged or corrupt checkpoint)")


class NoScorableImage(EqbenchError):
    """Every image of a cell was too small for its scale: the cell is not scored."""


class CellErrors(EqbenchError):
    """Some cells failed (each already reported on its own line); the others were written."""

    def __init__(self, failed: list[str], where: str, doc: dict | None = None) -> None:
        self.failed, self.doc = list(failed), doc
        super().__init__(f"{len(failed)} cell(s) not scored ({'; '.join(failed[:4])}"
                         f"{' ...' if len(failed) > 4 else ''}); the other cells are in {where}")


def report_cell_error(cell: str, e: Exception) -> str:
    """Print one error line for a failed cell now (the job goes on with the other cells); returns `cell`."""
    import sys

    print(f"eqbench: error: {cell}: {e}", file=sys.stderr)
    return cell


def output_error(path, e: OSError) -> EqbenchError:
    """One line for a failed write: what, why, and the fix (the previous file, if any, is intact)."""
    import errno

    fix = {errno.ENOSPC: "free disk space", errno.EDQUOT: "free disk space (quota exceeded)",
           errno.EROFS: "the file system is read-only", errno.EACCES: "fix the folder's permissions",
           errno.EPERM: "fix the folder's permissions"}.get(e.errno, "check the folder")  # fmt: skip
    return EqbenchError(f"cannot write {path}: {e.strerror or e}; {fix} or choose another output folder "
                        "(files already written there are unchanged)")
