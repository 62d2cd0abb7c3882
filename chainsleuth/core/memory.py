"""Giving freed heap memory back to the system between the phases of a long pass.

glibc's malloc serves arrays below its mmap threshold from the heap, and the threshold rises
(up to 32 MiB) each time a larger mapped block is freed; freed heap chunks below the top stay
resident. A pass that allocates a range's arrays (megabytes each), frees them and allocates the
next range's keeps the earlier range's pages as anonymous memory; Arrow's pool (mimalloc or
jemalloc) keeps freed segments likewise (≈ 35 MB after a range's evidence tables on the 2 M-tx
chain). `release_freed()` asks both to return their free pages: `release_unused()` on Arrow's
pool and glibc's `malloc_trim(0)` (glibc ≥ 2.8; elsewhere, musl or macOS, that part does
nothing), so what is resident between ranges is what is in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["release_freed"]


@functools.cache
def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed() -> None:
    """Return the free pages of Arrow's memory pool (mimalloc or jemalloc keep them for
    reuse) and of the C heap (glibc `malloc_trim(0)`) to the system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
