"""One writer per output: an advisory fcntl lock on a lock file beside what is written.

`eqbench run`, `analyze`, `report` and `train` read a results file (or a training folder), change it and
write it back; two processes doing that on the same file would each keep only their own changes. So every
writer holds `output_lock(folder, name)` for its whole read-modify-write: a second writer waits up to
$EQBENCH_LOCK_TIMEOUT seconds (default 10) for the lock, then refuses with one line naming the holder.

The lock is `flock(2)` on `<folder>/.<name>.lock`: the kernel drops it when the holding process exits,
however it exits (SIGKILL included), so a lock file left behind by a dead process is never "stale": the
next writer simply gets the lock. The file's content (pid, command, start time) is only for the message.
Locks are re-entrant within a process (nested writers of the same file share the outer hold).
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EqbenchError

DEFAULT_TIMEOUT = 10.0
_HELD: dict[str, int] = {}  # lock path -> nesting depth in this process


def lock_timeout() -> float:
    raw = os.environ.get("EQBENCH_LOCK_TIMEOUT")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    try:
        v = float(raw)
    except ValueError:
        v = -1.0
    if not (v >= 0 and v != float("inf")):
        raise EqbenchError(f"$EQBENCH_LOCK_TIMEOUT must be a number of seconds >= 0, got {raw!r}")
    return v


def lock_path(folder: str | os.PathLike, name: str) -> Path:
    return Path(folder) / f".{name}.lock"


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 400).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text.replace("\n", ", ") or "another process"


@contextmanager
def output_lock(folder: str | os.PathLike, name: str, *, what: str = "eqbench",
                timeout: float | None = None) -> Iterator[Path]:
    """Hold the lock on `<folder>/<name>` (folder must exist) for the body of the `with`."""
    path = lock_path(folder, name)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    fd = _open(path)
    try:
        _acquire(fd, path, Path(folder) / name, lock_timeout() if timeout is None else timeout)
        _note(fd, what)
        _HELD[key] = 1
        try:
            yield path
        finally:
            del _HELD[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise EqbenchError(f"cannot create the lock file {path}: {e.strerror}; choose a writable --out") from None


def _acquire(fd: int, path: Path, target: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as e:  # e.g. a file system without locks
            raise EqbenchError(f"cannot lock {path}: {e.strerror}; use an output folder on a local disk") from None
        if time.monotonic() >= deadline:
            raise EqbenchError(f"{target} is being written by {_holder(fd)}; wait for it to finish (or raise "
                               "$EQBENCH_LOCK_TIMEOUT), or choose another --out")
        if not told and timeout >= 1:
            print(f"eqbench: waiting up to {timeout:g} s for {_holder(fd)} to finish writing {target}",
                  file=sys.stderr)
            told = True
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _note(fd: int, what: str) -> None:
    info = f"pid {os.getpid()} ({what}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
    except OSError:
        pass  # the note is only for the message of a waiting process


def make_out_folder(out: str | os.PathLike) -> Path:
    """Create the output folder (one line naming the problem when that is impossible)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EqbenchError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EqbenchError(f"cannot create the output folder {out}: {e.strerror}; choose another --out") from None
    if not os.access(out, os.W_OK):
        raise EqbenchError(f"the output folder {out} is not writable; choose another --out")
    return out
