"""core/heap.py: freed arrays go back to the kernel instead of staying in malloc's heaps.

Each case runs in a fresh interpreter (malloc's settings are process-wide): a 16-MiB array
mapped and freed first raises glibc's dynamic mmap threshold, as a writer's first batch does;
then 64 arrays of 2 MiB are made with a small live block after each (pinning the heap, as the
parse and parquet threads' objects do), and freed. What stays resident is the heap's hold.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from chainsleuth.core import heap

SCRIPT = """
import sys
import numpy as np
from chainsleuth.core import heap

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024

mode = sys.argv[1]
if mode == "bound":
    assert heap.bound_heap()
x = np.ones(16 << 20, np.uint8)
del x
base = anon()
big, pins = [], []
for _ in range(64):
    big.append(np.ones(2 << 20, np.uint8))
    pins.append(np.ones(4096, np.uint8))
del big
if mode == "trim":
    heap.trim_heap()
print(anon() - base)
"""


def _held(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(heap._glibc() is None, reason="glibc's malloc only")
def test_freed_arrays_leave_the_heap() -> None:
    held_default = _held("default")
    # the control: without the fix the heap keeps most of the 128 MiB (else this test could
    # not tell the fix from nothing)
    assert held_default > 64 << 20, held_default
    # a fixed 1-MiB threshold maps each 2-MiB array on its own, unmapped when freed
    assert _held("bound") < 16 << 20
    # a trim gives back the free pages between the live blocks
    assert _held("trim") < 16 << 20


def test_disabled_heap_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "ENABLED", False)
    assert heap.bound_heap() is False
    heap.trim_heap()  # a no-op, no error
    assert isinstance(heap.heap_stats(), dict)
