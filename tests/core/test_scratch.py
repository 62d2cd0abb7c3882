"""core/scratch.py: file-backed arrays sit in the page cache, not in anonymous memory, and
leave no file behind."""

from __future__ import annotations

import mmap
import subprocess
import sys
from pathlib import Path

import numpy as np

from chainsleuth.core.scratch import Scratch, scratch_array

SCRIPT = """
import sys
import numpy as np
from chainsleuth.core.scratch import Scratch

def status():
    out = {}
    for line in open("/proc/self/status"):
        name, _, rest = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            out[name] = int(rest.split()[0]) * 1024
    return out

before = status()
if sys.argv[2] == "scratch":
    a = Scratch(sys.argv[1]).full(64 << 20, 7, np.uint8)  # 64 MiB, every page written
else:
    a = np.full(64 << 20, 7, np.uint8)
assert int(a[::4096].sum()) == 7 * ((64 << 20) // 4096)
after = status()
print(after["RssAnon"] - before["RssAnon"])
"""


def _anon_growth(tmp_path: Path, mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def test_a_written_scratch_array_is_file_pages_not_anonymous_memory(tmp_path: Path) -> None:
    # the same 64 MiB written: as a numpy array it is anonymous memory, in a scratch file it
    # is not (page cache: resident or already written back and dropped, the kernel's choice)
    assert _anon_growth(tmp_path, "numpy") >= 60 << 20
    assert _anon_growth(tmp_path, "scratch") < 16 << 20  # interpreter noise only


def test_scratch_files_are_unlinked_at_once(tmp_path: Path) -> None:
    a = Scratch(tmp_path, min_bytes=0).zeros(1000, np.int64)
    a[:] = np.arange(1000)
    assert list(tmp_path.iterdir()) == []
    assert isinstance(a.base, (mmap.mmap, memoryview)) or a.base is not None
    assert int(a.sum()) == 999 * 1000 // 2


def test_scratch_arrays_start_as_zeros_or_the_fill(tmp_path: Path) -> None:
    s = Scratch(tmp_path, min_bytes=0)
    assert not s.empty(5000, np.bool_).any()
    full = s.full(3000, -1, np.int32)
    assert full.dtype == np.int32 and (full == -1).all() and full.flags.writeable
    assert s.mapped_bytes == 5000 + 3000 * 4


def test_small_arrays_and_no_scratch_stay_in_memory(tmp_path: Path) -> None:
    s = Scratch(tmp_path)  # default min_bytes: 1 MiB
    small = s.full(10, 3, np.int64)
    assert small.flags.owndata and (small == 3).all() and s.mapped_bytes == 0
    plain = scratch_array(None, 10, np.uint8, 2)
    assert plain.flags.owndata and (plain == 2).all()
    empty = Scratch(tmp_path, min_bytes=0).zeros(0, np.uint8)
    assert empty.shape == (0,)


def test_a_full_disk_is_an_oserror_when_the_array_is_made(tmp_path: Path) -> None:
    """Blocks are reserved up front: past the file size limit the error comes at `empty`
    (EFBIG here, ENOSPC on a full disk), never as a SIGBUS on a later write."""
    script = (
        "import resource, signal, sys, numpy as np\n"
        "from chainsleuth.core.scratch import Scratch\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
        "try:\n"
        "    Scratch(sys.argv[1], min_bytes=0).zeros(4 << 20, np.uint8)\n"
        "except OSError as e:\n"
        "    print('OSError', e.errno)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("OSError")
    assert list(tmp_path.iterdir()) == []
