"""Keep the C heap from holding freed memory: what a long ingest needs from glibc's malloc.

numpy's arrays, the parser's buffers and Python's large objects come from `malloc`. glibc's
malloc serves a request of at least `M_MMAP_THRESHOLD` bytes with its own mapping, given back
to the kernel by `free`, and smaller ones from its heaps, where freed memory stays in the
process until a trim. The threshold is dynamic by default: each time a mapped block is freed it
rises to that block's size (up to 32 MiB), so after the first batch nearly every array of a
32-MiB batch lands in the heaps. Three threads (parse, link, parquet) allocate and free arrays
of a few MiB there in interleaved order, and the heaps fragment: freed holes between live
blocks cannot be trimmed from the top. Measured on a 2 M-tx chain (`python -m bench.ingest_rss
... --phases`, docs/design/store.md): malloc's free-but-kept bytes grew 150 → 587 MB over the
run while the bytes in use stayed at 250–380 MB, and peak `RssAnon` was 1,183 MB. That growth
is time (batches), not a structure, so no per-item table showed it.

`bound_heap` fixes the threshold at `MMAP_THRESHOLD` (which also stops the dynamic rise), so
every array of a MiB or more is mapped and unmapped on its own; `trim_heap`, called after each
commit, gives back the free pages of the heaps (`malloc_trim(0)` releases whole free pages
anywhere in a heap, not only at its top) and the unused memory of pyarrow's pool. Both are
no-ops where glibc is not the allocator (macOS, musl): there the allocator's own policy holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator
from typing import Any

#: mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Allocations of at least this many bytes get their own mapping. 1 MiB: a batch's per-tx and
#: per-output arrays (tens of thousands of rows and up) are all above it; below it are Python
#: objects and small arrays, which the heap serves faster than mmap would.
MMAP_THRESHOLD = 1 << 20
#: Free memory at the top of a heap beyond this is given back at once (glibc's default is
#: 128 KiB but dynamic; fixing the mmap threshold fixes this one too).
TRIM_THRESHOLD = 1 << 20
#: False leaves malloc as it is (bench/ingest_rss.py's `BENCH_HEAP=off`, the "before" runs).
ENABLED = True


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> Any | None:
    """glibc's handle when it is the C library with malloc_trim and mallopt, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def bound_heap(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Fix malloc's mmap and trim thresholds for this process (see the module docstring).
    Returns whether glibc took them. Process-wide and idempotent; `StoreWriter.open` calls it."""
    libc = _glibc() if ENABLED else None
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)) == 1
    return bool(libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(trim_threshold)) == 1 and ok)


def trim_heap() -> None:
    """Give the free pages of malloc's heaps and pyarrow's pool back to the kernel."""
    if not ENABLED:
        return
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    with contextlib.suppress(ImportError, AttributeError):
        import pyarrow as pa

        pa.default_memory_pool().release_unused()


def heap_stats() -> dict[str, int]:
    """glibc malloc's bytes in use, free but kept in its heaps, and in mapped blocks
    (`mallinfo2`, all arenas), plus pyarrow's allocated bytes; {} where not available."""
    out: dict[str, int] = {}
    libc = _glibc()
    if libc is not None and hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
        out.update(malloc_in_use=m.uordblks, malloc_free_kept=m.fordblks, malloc_mmapped=m.hblkhd)
    with contextlib.suppress(ImportError):
        import pyarrow as pa

        out["arrow_allocated"] = int(pa.total_allocated_bytes())
    return out


#: `reuse_heap`'s thresholds: arrays up to 64 MiB come from malloc's heaps, and up to 1 GiB of
#: free memory stays in them until the trim at the end.
REUSE_MMAP_THRESHOLD = 64 << 20
REUSE_TRIM_THRESHOLD = 1 << 30


@contextlib.contextmanager
def reuse_heap() -> Iterator[None]:
    """While inside: arrays of up to REUSE_MMAP_THRESHOLD come from malloc's heaps and freed
    memory stays there, so a loop that allocates and frees the same arrays over and over (the
    trace's chunks: a walk's entries, rows and scratch, a few MiB each) reuses pages already
    faulted in, where `bound_heap`'s own mapping per array faulted in and zeroed every page
    again for each one (a minor fault per 4 KiB). On leaving: `bound_heap` again and
    `trim_heap`, so what the loop left free is given back as before. For loops whose arrays
    have the same lifetime pattern each round; not for the ingest, which fragments (above)."""
    libc = _glibc() if ENABLED else None
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(REUSE_MMAP_THRESHOLD))
    libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(REUSE_TRIM_THRESHOLD))
    try:
        yield
    finally:
        bound_heap()
        trim_heap()
