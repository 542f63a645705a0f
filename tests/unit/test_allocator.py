"""eqbench.allocator: large freed buffers stay in the heap after keep_freed_memory (glibc), not before;
the user's own settings win. Each case runs in a fresh process (the setting is process-wide)."""

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt thresholds are glibc's")

PROBE = r"""
import json, re, sys
import numpy as np
from eqbench.allocator import keep_freed_memory
ok = keep_freed_memory() if sys.argv[1] == "keep" else None
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/self/status").read()).group(1)) // 1024
before = rss()
a = np.ones(100 * 2**20 // 8)  # 100 MiB, touched
del a
print(json.dumps({"ok": ok, "kept_mib": rss() - before}))
"""


def _probe(mode, **env):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
    return json.loads(out.stdout)


def test_freed_buffers_stay_in_the_heap_only_after_the_call():
    assert _probe("default")["kept_mib"] < 10  # glibc's default: a 100 MiB block is mmapped and unmapped
    kept = _probe("keep")
    assert kept["ok"] is True and kept["kept_mib"] >= 90


@pytest.mark.parametrize("env", [{"EQBENCH_MALLOC": "default"}, {"MALLOC_MMAP_THRESHOLD_": "131072"}])
def test_the_users_choice_wins(env):
    res = _probe("keep", **env)
    assert res["ok"] is False and res["kept_mib"] < 10


@pytest.mark.parametrize("ram_gib, kept_mib", [(4, 512), (24, 24 * 1024 // 16), (256, 2048)])
def test_kept_free_heap_scales_with_ram_within_bounds(monkeypatch, ram_gib, kept_mib):
    from eqbench import allocator

    page = 4096
    monkeypatch.setattr(allocator.os, "sysconf",
                        lambda name: ram_gib * 2**30 // page if name == "SC_PHYS_PAGES" else page)
    monkeypatch.delitem(allocator._done, "release_above", raising=False)
    assert allocator.release_above_bytes() == kept_mib * 2**20
    monkeypatch.delitem(allocator._done, "release_above")
