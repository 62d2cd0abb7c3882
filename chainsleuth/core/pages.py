"""Read only the pages an answer needs from memory-mapped arrays (docs/design/store.md, "Cold pages").

A cold read of a memory-mapped file makes the kernel read around the faulting page: up to
`read_ahead_kb` (8 MB on the bench VM) per fault. For a scan that is what one wants; for k
scattered rows of an array much larger than the window it reads k windows, so the bytes read
per row grow with the array until it is far larger than k windows (at mainnet's 1.5 G
addresses, a 4-byte state column is 6 GB: each row read cold would bring 8 MB). Two tools here
make a scattered read cost the pages of its rows, whatever the array's length:

- `prefetch_rows(array, rows)` turns read-around off for the array's mapping (`MADV_RANDOM`)
  and asks for exactly the pages holding `rows` (`MADV_WILLNEED` per run of adjacent pages),
  which the kernel reads asynchronously and in parallel; the reads that follow hit the cache.
- `FencedKeys` searches a sorted on-disk key array through a small fence (the first key of
  every page, and of every page of that, ...) so that a search reads one page per level and one
  data page, instead of the ~log2(n / keys per page) cold pages of a binary search.

`PageCounter` counts the pages a search touches (tests assert that this does not depend on n).
"""

from __future__ import annotations

import mmap
from typing import Any, Literal

import numpy as np

__all__ = [
    "PAGE",
    "split_fence",
    "FencedKeys",
    "PageCounter",
    "advise",
    "build_fence",
    "mapping_of",
    "prefetch_rows",
]

PAGE = mmap.PAGESIZE
#: Runs of adjacent pages are advised in one call; gaps up to this many pages are filled in
#: (one call costs more than reading a page or two it did not need).
GAP_PAGES = 2


def mapping_of(array: np.ndarray) -> tuple[mmap.mmap, int] | None:
    """The mmap an array (or view) lies in and the byte offset of its first element there, or
    None for an array in memory."""
    a: Any = array
    while a is not None:
        if isinstance(a, mmap.mmap):
            base = np.frombuffer(a, np.uint8)
            if base.shape[0] == 0:
                return None
            return a, int(array.__array_interface__["data"][0]) - int(base.ctypes.data)
        nested = getattr(a, "_mmap", None)
        if isinstance(nested, mmap.mmap):
            a = nested
            continue
        a = getattr(a, "base", None)
    return None


def advise(array: np.ndarray, option: int) -> bool:
    """madvise the whole mapping `array` lies in (False for an array in memory)."""
    where = mapping_of(array)
    if where is None:
        return False
    where[0].madvise(option)
    return True


def page_runs(byte_offsets: np.ndarray, gap: int = GAP_PAGES) -> np.ndarray:
    """(first page, page count) per run of the sorted unique pages holding `byte_offsets`,
    pages at most `gap` apart joined into one run; shape (runs, 2), int64."""
    pages = np.unique(np.asarray(byte_offsets, np.int64) // PAGE)
    if pages.shape[0] == 0:
        return np.zeros((0, 2), np.int64)
    breaks = np.flatnonzero(np.diff(pages) > gap + 1) + 1
    starts = pages[np.concatenate(([0], breaks))]
    ends = pages[np.concatenate((breaks - 1, [pages.shape[0] - 1]))] + 1
    return np.stack((starts, ends - starts), axis=1)


def prefetch_rows(array: np.ndarray, rows: np.ndarray, random: bool = True) -> int:
    """Ask the kernel for the pages of `array` (memory-mapped, 1-d or rows of a 2-d array)
    that hold `rows`, asynchronously; returns the pages asked for (0 for an array in memory or
    where madvise is missing). With `random` read-around is turned off for the whole mapping,
    so a later fault on a page not prefetched reads that page only."""
    where = mapping_of(array)
    if where is None or not hasattr(mmap, "MADV_WILLNEED"):
        return 0
    mm, start = where
    if random and hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)
    rows = np.asarray(rows, np.int64).reshape(-1)
    rows = rows[(rows >= 0) & (rows < array.shape[0])]
    if rows.shape[0] == 0:
        return 0
    row_bytes = int(array.strides[0])
    offsets = start + rows * row_bytes
    # the last byte of each row too (a row may straddle a page boundary)
    last = offsets + max(1, int(array.itemsize) * int(np.prod(array.shape[1:], dtype=np.int64))) - 1
    runs = page_runs(np.concatenate((offsets, last)))
    size = len(mm)
    asked = 0
    for first, count in runs.tolist():
        lo = first * PAGE
        length = min(count * PAGE, size - lo)
        if length > 0:
            mm.madvise(mmap.MADV_WILLNEED, lo, length)
            asked += count
    return asked


# ------------------------------------------------------------------ fenced sorted search
def build_fence(keys: np.ndarray) -> np.ndarray:
    """The fence of a sorted key array: level 1 = the first key of each page of `keys`, level 2
    = the first key of each page of level 1, ... up to a level of at most one page. Stored top
    level first, concatenated (same dtype): len(keys) / (keys per page) * (1 + 1/kpp + ...)
    entries, ≈ 1/1024 of a u4 array's bytes."""
    per_page = max(1, PAGE // keys.dtype.itemsize)
    levels = []
    level = np.asarray(keys[::per_page]).copy()
    levels.append(level)
    while level.shape[0] > per_page:
        level = level[::per_page].copy()
        levels.append(level)
    return np.concatenate(levels[::-1]) if levels else np.zeros(0, keys.dtype)


def split_fence(fence: np.ndarray, n: int) -> list[np.ndarray]:
    """The levels (top first) of a fence stored as `build_fence` writes it, for n keys."""
    sizes = fence_levels(n, fence.dtype.itemsize)
    if sum(sizes) != fence.shape[0]:
        raise ValueError(
            f"fence of {fence.shape[0]} entries does not fit {n} keys (expected {sum(sizes)})"
        )
    out, at = [], 0
    for size in sizes:
        out.append(fence[at : at + size])
        at += size
    return out


def fence_levels(n: int, itemsize: int) -> list[int]:
    """Entries per fence level for n keys, top level first (as `build_fence` stores them)."""
    per_page = max(1, PAGE // itemsize)
    sizes = [-(-n // per_page)] if n else [0]
    while sizes[-1] > per_page:
        sizes.append(-(-sizes[-1] // per_page))
    return sizes[::-1]


class PageCounter:
    """Counts distinct pages read through `FencedKeys` (per array name): for tests and benches,
    a count of touches, not a timing."""

    def __init__(self) -> None:
        self.pages: dict[str, set[int]] = {}

    def touch(self, name: str, lo: int, hi: int, itemsize: int) -> None:
        """Elements [lo, hi) of array `name` were read."""
        if hi <= lo:
            return
        got = self.pages.setdefault(name, set())
        got.update(range(lo * itemsize // PAGE, ((hi * itemsize) - 1) // PAGE + 1))

    def total(self) -> int:
        return sum(len(v) for v in self.pages.values())


class FencedKeys:
    """Binary search of a sorted (memory-mapped) key array through its fence.

    `searchsorted(value, side)` equals `np.searchsorted(keys, value, side)`; it reads one page
    of each fence level and one page of `keys` (plus one more when equal keys straddle a page),
    so its cold cost does not grow with len(keys). Without a fence (None) it is
    np.searchsorted over the whole array (a store written before fences).

    Example::

        fk = FencedKeys(keys, build_fence(keys))
        lo, hi = fk.searchsorted(7, "left"), fk.searchsorted(7, "right")
    """

    def __init__(
        self,
        keys: np.ndarray,
        fence: np.ndarray | list[np.ndarray] | None,
        counter: PageCounter | None = None,
    ) -> None:
        self.keys = keys
        self.counter = counter
        self.per_page = max(1, PAGE // keys.dtype.itemsize)
        # one array per level, top first (a list), or `build_fence`'s concatenation
        if isinstance(fence, np.ndarray):
            fence = split_fence(fence, keys.shape[0])
        self.fence = fence
        if fence is not None:
            sizes = fence_levels(keys.shape[0], keys.dtype.itemsize)
            got = [int(level.shape[0]) for level in fence]
            if got != sizes:
                raise ValueError(f"fence levels {got} do not fit {keys.shape[0]} keys ({sizes})")

    def _touch(self, name: str, lo: int, hi: int, itemsize: int) -> None:
        if self.counter is not None:
            self.counter.touch(name, lo, hi, itemsize)

    def searchsorted_many(
        self, values: np.ndarray, side: Literal["left", "right"] = "left"
    ) -> np.ndarray:
        """`np.searchsorted(keys, values, side)` (int64) for values of the keys' dtype, level by
        level for all values at once: each value reads the same pages as `searchsorted`, with
        no Python step per value (k values gather k pages of each level: 8 B × k × keys per
        page of working memory, so ask for a few thousand at a time)."""
        keys, n = self.keys, self.keys.shape[0]
        vals = np.asarray(values, keys.dtype).reshape(-1)
        if self.fence is None or n == 0 or vals.shape[0] == 0:
            return np.searchsorted(keys, vals, side=side).astype(np.int64)
        pp = self.per_page
        below = np.less if side == "left" else np.less_equal
        within = np.arange(pp, dtype=np.int64)
        block = np.zeros(vals.shape[0], np.int64)
        for depth, level in enumerate([*self.fence, keys]):
            size = int(level.shape[0])
            idx = block[:, None] * pp + within
            inside = idx < size
            if self.counter is not None:
                name = "keys" if depth == len(self.fence) else f"fence{depth}"
                for b in np.unique(block).tolist():
                    self.counter.touch(name, b * pp, min(size, (b + 1) * pp), keys.dtype.itemsize)
            page = np.asarray(level[np.minimum(idx, size - 1)])
            count = (below(page, vals[:, None]) & inside).sum(axis=1)
            if depth == len(self.fence):
                return block * pp + count
            block = np.maximum(block * pp + count - 1, 0)
        raise AssertionError("unreachable")

    def searchsorted(self, value: Any, side: Literal["left", "right"] = "left") -> int:
        keys, n = self.keys, self.keys.shape[0]
        value = keys.dtype.type(value)
        if self.fence is None:
            self._touch("keys", 0, n, keys.dtype.itemsize)  # a full search: any page
            return int(np.searchsorted(keys, value, side=side))
        if n == 0:
            return 0
        pp = self.per_page
        # Walk down the levels: in each level, entries [lo, hi) of one page are searched for
        # the last page whose first key is < value ("left") or <= value ("right"); its index
        # narrows the next level to one page.
        block = 0  # the page of the current level to read
        for depth, level in enumerate(self.fence):
            lo = block * pp
            hi = min(int(level.shape[0]), lo + pp)
            part = np.asarray(level[lo:hi])
            self._touch(f"fence{depth}", lo, hi, keys.dtype.itemsize)
            # the page whose first key is the last one strictly below (left) / at most (right)
            i = int(np.searchsorted(part, value, side=side)) - 1
            block = max(0, lo + i)
        # `block` is the data page whose range may hold the boundary; the answer lies in
        # [block * pp, (block + 1) * pp] (its end when every key of the page is below)
        lo = block * pp
        hi = min(n, lo + pp)
        part = np.asarray(keys[lo:hi])
        self._touch("keys", lo, hi, keys.dtype.itemsize)
        return lo + int(np.searchsorted(part, value, side=side))
