"""The creating-tx fence (`kernels.creator_fence`, `kernels.creators_of`) and the trace kernel
that searches through it.

An output's creating tx is `searchsorted(tx_first_output, o, "right") - 1`: the fence must give
exactly that for every output, at every step width (shift 0 is the full output -> tx map), on
the small simulated world's store and on hand-made arrays with one-output txs, many-output txs
and txs without outputs (the search must still return the last such tx, as searchsorted does).
The backward trace through the engine must equal the kernel called with the plain binary
search's answers (a fence of shift 0 built from searchsorted itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters
from chainsleuth.store import tracerows
from chainsleuth.store.store import Store
from chainsleuth.trace import engine, kernels


def _reference(first_output: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(first_output), outputs, side="right") - 1


@pytest.mark.parametrize("shift", [0, 1, 3, kernels.FENCE_SHIFT, 8])
def test_fence_finds_every_outputs_creating_tx(small_world: tuple[Path, Path], shift: int) -> None:
    _, data = small_world
    g = Store.open(data).graph
    first = g.tx_first_output
    outputs = np.arange(g.n_outputs, dtype=np.int64)
    fence = kernels.creator_fence(first, g.n_outputs, shift)
    assert fence.dtype == np.uint32
    assert fence.shape[0] == ((g.n_outputs - 1) >> shift) + 2
    got = kernels.creators_of(first, fence, shift, outputs)
    np.testing.assert_array_equal(got, _reference(first, outputs))


@pytest.mark.parametrize("shift", [0, 1, 2, 4])
def test_fence_with_empty_and_wide_txs(shift: int) -> None:
    rng = np.random.default_rng(shift)
    # outputs per tx: mostly 1-3, some 0 (as searchsorted, the last of equal firsts wins), a
    # few much wider than a fence step
    per_tx = rng.choice([0, 1, 1, 2, 3, 40, 100], size=3000).astype(np.int64)
    per_tx[0] = max(per_tx[0], 1)
    per_tx[-1] = max(per_tx[-1], 1)
    first = np.concatenate([[0], np.cumsum(per_tx)[:-1]]).astype(np.int64)
    n_outputs = int(per_tx.sum())
    outputs = np.arange(n_outputs, dtype=np.int64)
    fence = kernels.creator_fence(first, n_outputs, shift)
    got = kernels.creators_of(first, fence, shift, outputs)
    np.testing.assert_array_equal(got, _reference(first, outputs))


def test_engine_keeps_one_fence_per_store(small_world: tuple[Path, Path]) -> None:
    _, data = small_world
    a = engine.creator_fence(Store.open(data))
    b = engine.creator_fence(Store.open(data))
    assert a is b


def test_backward_trace_equals_the_binary_search(small_world: tuple[Path, Path]) -> None:
    """trace_back (fence of FENCE_SHIFT) against the kernel handed searchsorted's answer for
    every output (a shift-0 fence is that answer): entries, rows, amounts, dropped."""
    _, data = small_world
    store = Store.open(data)
    g = store.graph
    rng = np.random.default_rng(11)
    cluster_of = np.asarray(Clusters(data).cluster_of, np.int64)
    stop = np.zeros(cluster_of.shape[0], np.bool_)
    stop[cluster_of[rng.random(cluster_of.shape[0]) < 0.02]] = True
    is_coinjoin = rng.random(g.n_txs) < 0.01
    seeds = rng.integers(0, g.n_outputs, 4000).astype(np.int64)
    opts = engine.TraceOptions(policy="haircut", max_hops=12, min_fraction=0.01)
    got = engine.trace_back(
        data, seeds, opts, stop_clusters=stop, cluster_of=cluster_of, is_coinjoin=is_coinjoin
    )
    exact = _reference(g.tx_first_output, np.arange(g.n_outputs + 1, dtype=np.int64))
    values = np.asarray(g.output_value)[seeds].astype(np.int64)
    seed_min = np.ceil(values * 0.01).astype(np.int64)
    want = kernels.trace_kernel(
        True,
        engine.POLICIES["haircut"],
        seeds,
        values,
        12,
        seed_min,
        opts.max_entries,
        opts.max_entries_per_seed,
        False,
        g.tx_first_input,
        g.tx_first_output,
        g.input_spent_output,
        g.output_value,
        g.output_address,
        g.output_spent_by_tx,
        stop,
        cluster_of,
        is_coinjoin,
        g.tx_height,
        -1,
        1 << 31,
        exact.astype(np.uint32),
        0,
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        *tracerows.EMPTY_ROWS,
        *kernels.empty_work(),
    )[:11]
    e_output, e_amount, e_parent, e_tx, e_seed, e_hops, e_flags, r_entry, r_kind, r_tx, drop = want
    assert r_entry.shape[0] > 1000 and int(e_hops.max()) >= 3  # a walk of several hops
    np.testing.assert_array_equal(got.entry_output, e_output)
    np.testing.assert_array_equal(got.entry_parent, e_parent)
    np.testing.assert_array_equal(got.entry_tx, e_tx)
    np.testing.assert_array_equal(got.entry_hops, e_hops)
    np.testing.assert_array_equal(got.entry, r_entry)
    np.testing.assert_array_equal(got.amount, e_amount[r_entry])
    np.testing.assert_array_equal(got.flags, e_flags[r_entry])
    np.testing.assert_array_equal(got.seed, e_seed[r_entry].astype(np.int64))
    np.testing.assert_array_equal(got.kind, r_kind)
    np.testing.assert_array_equal(got.tx, r_tx)
    np.testing.assert_array_equal(got.dropped, drop)


def test_kept_scratch_gives_the_same_walk(small_world: tuple[Path, Path]) -> None:
    """The engine hands the kernel the scratch of the thread's previous call (grown by a larger
    walk, left holding its data): a walk after a larger one, of another policy and direction,
    equals the same walk in a fresh thread (which starts from empty scratch)."""
    import threading

    _, data = small_world
    g = Store.open(data).graph
    rng = np.random.default_rng(3)
    big = rng.integers(0, g.n_outputs, 6000).astype(np.int64)
    small = rng.integers(0, g.n_outputs, 700).astype(np.int64)
    opts = engine.TraceOptions(policy="haircut", max_hops=10, min_fraction=0.01)

    walks = [
        lambda: engine.trace_back(data, big, opts),
        lambda: engine.trace_back(data, small, opts, policy="fifo"),
        lambda: engine.trace_forward(data, small, opts, policy="poison", max_entries_per_seed=50),
        lambda: engine.trace_back(data, small, opts, policy="poison", max_entries_per_seed=50),
    ]
    fresh: list[engine.TraceResult] = []
    for walk in walks:
        # each walk alone in a new thread: its scratch starts empty
        t = threading.Thread(target=lambda walk=walk: fresh.append(walk()))
        t.start()
        t.join()
    reused = [walk() for walk in walks]  # one thread, one after the other
    assert engine._WORK.arrays is not None  # the scratch was kept
    for k in range(4):
        a, b = reused[k], fresh[k]
        assert len(a) > 100
        for name in ("seed", "output", "tx", "amount", "hops", "kind", "flags", "entry"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(a.entry_parent, b.entry_parent)
        np.testing.assert_array_equal(a.dropped, b.dropped)


def test_fence_step_keeps_the_fence_small() -> None:
    assert kernels.fence_shift(5_453_293) == kernels.FENCE_SHIFT  # the large simulated world
    for n in (0, 1 << 20, 1 << 31, 3_100_000_000, 1 << 40):
        shift = kernels.fence_shift(n)
        assert shift >= kernels.FENCE_SHIFT
        assert (n >> shift) * 4 <= kernels.FENCE_MAX_BYTES
        assert shift == kernels.FENCE_SHIFT or (n >> (shift - 1)) * 4 > kernels.FENCE_MAX_BYTES
    assert kernels.fence_shift(3_100_000_000) == 8  # mainnet's outputs: 48 MB
