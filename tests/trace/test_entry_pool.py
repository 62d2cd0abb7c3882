"""Walks inside `engine.pooled_entries` write their entries into arrays kept from earlier walks
(issue 13 item 6: the pages are faulted in once, not once a chunk). A kept array is handed to a
walk only when no result views it any more: a result still held must never be overwritten by a
later walk, and the pooled walks must give what unpooled ones give, field for field."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chainsleuth.store.store import Store
from chainsleuth.trace import engine, kernels
from chainsleuth.trace.engine import TraceResult, trace_back

FIELDS = ("seed", "output", "tx", "amount", "hops", "kind", "flags", "entry", "dropped")
ENTRY_FIELDS = ("entry_parent", "entry_tx", "entry_output", "entry_hops")


def _seeds(data: Path, n: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(k)
    return np.sort(rng.choice(Store.open(data).counts["outputs"], n, replace=False))


def _copy(r: TraceResult) -> dict[str, np.ndarray]:
    return {name: np.array(getattr(r, name), copy=True) for name in FIELDS + ENTRY_FIELDS}


def _assert_equal(r: TraceResult, want: dict[str, np.ndarray]) -> None:
    for name, a in want.items():
        np.testing.assert_array_equal(getattr(r, name), a, err_msg=name)


def _address(a: np.ndarray) -> int:
    data: int = a.__array_interface__["data"][0]
    return data


def test_pooled_walks_equal_unpooled_and_never_share_a_live_result(
    small_world: tuple[Path, Path],
) -> None:
    _, data = small_world
    seed_sets = [_seeds(data, 400, k) for k in range(4)]
    want = [_copy(trace_back(data, s, max_hops=3, min_fraction=0.05)) for s in seed_sets]
    assert sum(w["entry_output"].shape[0] for w in want) > 2_000  # walks of some size
    # each walk fits the room it starts with with a margin (a block's children are made room
    # for before the small shares are dropped), so it writes into the set it is given
    room = kernels.entry_room(400, engine.DEFAULT_MAX_ENTRIES)
    assert max(w["entry_output"].shape[0] for w in want) <= room // 2
    with engine.pooled_entries():
        first = trace_back(data, seed_sets[0], max_hops=3, min_fraction=0.05)
        # `first` is alive: the next walks must write elsewhere, and leave it as it was
        second = trace_back(data, seed_sets[1], max_hops=3, min_fraction=0.05)
        assert not np.shares_memory(first.entry_output, second.entry_output)
        third = trace_back(data, seed_sets[2], max_hops=3, min_fraction=0.05)
        for r in (second, third):
            assert not np.shares_memory(first.entry_parent, r.entry_parent)
        _assert_equal(first, want[0])
        _assert_equal(second, want[1])
        _assert_equal(third, want[2])
        # once a result and its views are gone, its arrays are written again (no new pages)
        where = _address(first.entry_output)
        del first
        fourth = trace_back(data, seed_sets[3], max_hops=3, min_fraction=0.05)
        _assert_equal(fourth, want[3])
        assert _address(fourth.entry_output) == where
        _assert_equal(second, want[1])
        _assert_equal(third, want[2])
        # a view kept of a result holds its arrays as the result would
        kept = third.entry_tx[:10]
        del third
        fifth = trace_back(data, seed_sets[2], max_hops=3, min_fraction=0.05)
        assert not np.shares_memory(kept, fifth.entry_tx)
        _assert_equal(fifth, want[2])
    assert engine._POOL is None  # let go at the block's end


def test_unpooled_walks_keep_nothing(small_world: tuple[Path, Path]) -> None:
    _, data = small_world
    r = trace_back(data, _seeds(data, 50, 9), max_hops=3)
    assert r.entry_output.shape[0] >= 50
    assert engine._POOL is None
