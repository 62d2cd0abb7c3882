"""core.pages: the fenced search answers what np.searchsorted answers, reading a number of
pages that does not depend on the array's length; prefetching asks for exactly the pages of
the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core import pages
from chainsleuth.core.pages import FencedKeys, PageCounter, build_fence, fence_levels


def _mapped(tmp: Path, name: str, values: np.ndarray) -> np.ndarray:
    path = tmp / name
    values.tofile(path)
    return np.memmap(path, dtype=values.dtype, mode="r", shape=values.shape)


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.integers(0, 3000), min_size=0, max_size=5000),
    probes=st.lists(st.integers(0, 3005), min_size=1, max_size=20),
    dtype=st.sampled_from([np.uint32, np.uint64]),
    page=st.sampled_from([16, 64, 4096]),
)
def test_fenced_search_equals_full_search(
    values: list[int], probes: list[int], dtype: type, page: int
) -> None:
    """Random sorted keys (many duplicates, pages small enough for 3+ fence levels), random
    probes: the same index as np.searchsorted on both sides."""
    old = pages.PAGE
    pages.PAGE = page  # small pages: several fence levels on small arrays
    try:
        keys = np.sort(np.asarray(values, dtype))
        fence = build_fence(keys)
        assert fence.shape[0] == sum(fence_levels(keys.shape[0], keys.dtype.itemsize))
        fk = FencedKeys(keys, fence)
        for p in probes:
            for side in ("left", "right"):
                assert fk.searchsorted(p, side) == int(np.searchsorted(keys, dtype(p), side)), (
                    p,
                    side,
                )
        want_probes = np.asarray(probes, dtype)
        for side in ("left", "right"):  # all probes at once: the same indexes
            got = fk.searchsorted_many(want_probes, side)
            assert got.tolist() == np.searchsorted(keys, want_probes, side).tolist(), side
    finally:
        pages.PAGE = old


def _pages_per_search(n: int, rng: np.random.Generator) -> int:
    keys = np.sort(rng.integers(0, 4 * n, n).astype(np.uint32))
    counter = PageCounter()
    fk = FencedKeys(keys, build_fence(keys), counter)
    worst = 0
    for p in rng.integers(0, 4 * n, 50):
        counter.pages.clear()
        fk.searchsorted(int(p), "left")
        fk.searchsorted(int(p), "right")
        worst = max(worst, counter.total())
        counter.pages.clear()
        fk.searchsorted_many(np.array([p], np.uint32), "right")
        assert counter.total() <= worst  # the vectorised search reads the same pages
    return worst


def test_pages_touched_do_not_grow_with_n() -> None:
    """A left and a right search read the same handful of pages at 10^4 and 10^7 keys (one per
    fence level and a data page or two), while a plain binary search reads ~log2(n / 1024)."""
    rng = np.random.default_rng(7)
    small, large = _pages_per_search(10_000, rng), _pages_per_search(10_000_000, rng)
    # 10^7 u4 keys: 9,766 data pages, a 2-level fence; 10^4 keys: 10 pages, 1 level
    assert large <= small + 2  # one page per extra fence level (left and right share it)
    assert large <= 6
    counter = PageCounter()
    keys = np.arange(10_000_000, dtype=np.uint32)
    FencedKeys(keys, None, counter).searchsorted(5, "left")
    assert counter.total() > 1000  # without a fence: any page may be read


def test_fence_that_does_not_fit_is_refused() -> None:
    keys = np.arange(5000, dtype=np.uint32)
    with pytest.raises(ValueError, match="do not fit|does not fit"):
        FencedKeys(keys, build_fence(keys)[:-1])


def test_page_runs_join_near_pages() -> None:
    p = pages.PAGE
    offs = np.array([0, 10, p * 1, p * 2 + 5, p * 10, p * 100, p * 101 - 1])
    runs = pages.page_runs(offs, gap=2)
    assert runs.tolist() == [[0, 3], [10, 1], [100, 1]]
    assert pages.page_runs(np.zeros(0, np.int64)).shape == (0, 2)


def test_prefetch_rows_asks_for_the_rows_pages(tmp_path: Path) -> None:
    values = np.arange(1 << 20, dtype=np.uint32)  # 4 MiB, 1024 pages
    mapped = _mapped(tmp_path, "a.bin", values)
    per_page = pages.PAGE // 4
    rows = np.array([0, 1, 5 * per_page, 500 * per_page + 3, (1 << 20) - 1, -1, 1 << 21])
    asked = pages.prefetch_rows(np.asarray(mapped)[: 1 << 20], rows)
    assert asked == 4  # pages 0, 5, 500 and the last one; rows outside are ignored
    assert pages.prefetch_rows(values, rows) == 0  # in memory: nothing to ask
    # a view that starts inside the file: the offset is the view's
    view = np.asarray(mapped)[per_page:]
    assert pages.mapping_of(view) is not None
    assert pages.mapping_of(view)[1] == pages.PAGE  # type: ignore[index]
    assert np.asarray(mapped)[rows[:5]].tolist() == values[rows[:5]].tolist()
