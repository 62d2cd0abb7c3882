"""The union-find on an edge list (`kernels.union_edges`, `ranges.union_edges_parallel`) and
the parallel flatten (`ranges.flatten_parallel`), against scipy's connected components and
the sequential kernels.

The parallel union links roots from several threads without locks and repairs the links a race
lost; these tests pin that the result is exactly the sequential one (same cluster id, the
smallest address id, for every address), on graphs built to make threads race on one root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from chainsleuth.cluster import kernels
from chainsleuth.cluster.publish import flatten
from chainsleuth.cluster.ranges import (
    MIN_PARALLEL_EDGES,
    flatten_parallel,
    union_edges_parallel,
)
from chainsleuth.store.layout import NONE32


def _min_id_labels(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """The smallest address id of each address's component, from scipy."""
    graph = sp.coo_matrix((np.ones(a.shape[0], np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(graph.tocsr(), directed=False)
    smallest = np.full(comp.max() + 1, n, np.int64)
    np.minimum.at(smallest, comp, np.arange(n))
    return smallest[comp]


def _graph(kind: str, n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":  # components of every size, a giant one
        return rng.integers(0, n, m), rng.integers(0, n, m)
    if kind == "star":  # every edge touches address 0's cluster: threads race on one root
        return np.zeros(m, np.int64), rng.integers(0, n, m)
    if kind == "hubs":  # a few hubs joined to many leaves, then the hubs to each other
        hubs = rng.integers(0, 8, m)
        a = np.where(rng.random(m) < 0.01, rng.integers(0, 8, m), hubs)
        return a, rng.integers(0, n, m)
    # "path": a long chain of addresses in random order (deep trees while linking)
    order = rng.permutation(n)
    idx = rng.integers(0, n - 1, m)
    return order[idx], order[idx + 1]


@pytest.mark.parametrize("kind", ["random", "star", "hubs", "path"])
@pytest.mark.parametrize("threads", [1, 2, 4, 8])
def test_union_edges_exact(kind: str, threads: int) -> None:
    n = 50_000
    m = 4 * MIN_PARALLEL_EDGES  # above the parallel threshold
    a, b = _graph(kind, n, m, seed=threads)
    expected = _min_id_labels(a, b, n)

    parent = np.arange(n, dtype=np.uint32)
    union_edges_parallel(a, b, parent, threads)
    assert np.all(parent <= np.arange(n))  # flatten's invariant, whatever the races
    labels = np.empty(n, np.int64)
    flatten_parallel(parent, labels, threads)
    assert np.array_equal(labels, expected)
    assert np.array_equal(parent, expected.astype(np.uint32))  # every path compressed


def test_union_edges_counts_unions_and_ranges() -> None:
    a = np.array([5, 3, 5, 1, 4], np.int64)
    b = np.array([3, 5, 1, 3, 4], np.int64)
    parent = np.arange(6, dtype=np.uint32)
    assert kernels.union_edges(a, b, parent, 0, 2) == 1  # 5-3, then 3-5 again: one union
    assert kernels.union_edges(a, b, parent, 2) == 1  # 5-1; 1-3 and 4-4 join nothing new
    labels = np.empty(6, np.int64)
    flatten(parent, labels)
    assert labels.tolist() == [0, 1, 2, 1, 4, 1]


def test_count_unjoined_finds_a_lost_link() -> None:
    # edges 0: 1-2, 1: 3-4; the second piece's link "lost": 3 and 4 are still apart
    a = np.array([1, 3], np.int64)
    b = np.array([2, 4], np.int64)
    parent = np.array([0, 1, 1, 3, 4], np.uint32)
    bad = np.zeros(2, np.int64)
    kernels.count_unjoined(a, b, parent, np.array([0, 1, 2], np.int64), bad, 0, 2)
    assert bad.tolist() == [0, 1]


def test_flatten_parallel_matches_flatten_on_deep_trees() -> None:
    rng = np.random.default_rng(5)
    n = 4 * MIN_PARALLEL_EDGES
    # every parent below its child (as the union-find leaves it), chains crossing the pieces
    parent = (np.arange(n) - rng.integers(0, 5_000, n)).clip(0).astype(np.uint32)
    parent[rng.random(n) < 0.001] = np.flatnonzero(rng.random(n) < 0.001)[:1].astype(np.uint32)
    parent = np.minimum(parent, np.arange(n)).astype(np.uint32)
    expected_parent = parent.copy()
    expected = np.empty(n, np.int64)
    flatten(expected_parent, expected)
    for threads in (2, 3, 8):
        p = parent.copy()
        out = np.empty(n, np.int64)
        flatten_parallel(p, out, threads)
        assert np.array_equal(out, expected)
        assert np.array_equal(p, expected_parent)


def test_max_address_paid_matches_fresh_outputs() -> None:
    rng = np.random.default_rng(3)
    out_address = rng.integers(0, 1000, 5000).astype(np.uint32)
    out_address[rng.random(5000) < 0.1] = NONE32
    for o0, o1, initial in ((0, 5000, -1), (100, 900, 500), (10, 10, 7), (0, 4000, 2000)):
        fresh = np.empty(o1 - o0, np.bool_)
        expected = kernels.fresh_outputs(out_address, o0, initial, fresh)
        assert kernels.max_address_paid(out_address, o0, o1, initial) == expected


def test_lost_links_are_redone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A link lost to a race (simulated: after each piece, every 1,000th edge's second
    address is made a root again, its link written and counted but undone) is noticed by
    the root count, found by the read-only check and its piece redone: still exact."""
    linked = kernels.link_edges_unlocked

    def lossy(edge_a: np.ndarray, edge_b: np.ndarray, parent: np.ndarray, lo: int, hi: int) -> int:
        links = linked(edge_a, edge_b, parent, lo, hi)
        for x in edge_b[lo:hi:1000].tolist():
            parent[x] = x
        return int(links)

    monkeypatch.setattr(kernels, "link_edges_unlocked", lossy)
    n = 200_000
    a, b = _graph("random", n, 2 * MIN_PARALLEL_EDGES, seed=9)  # sparse: most edges join
    parent = np.arange(n, dtype=np.uint32)
    redone = union_edges_parallel(a, b, parent, 2)
    assert redone > 0
    labels = np.empty(n, np.int64)
    flatten_parallel(parent, labels, 2)
    assert np.array_equal(labels, _min_id_labels(a, b, n))


@pytest.mark.parametrize("policy", ["conservative", "multi_input", "multi_input_unguarded"])
def test_pipelined_merges_match_one_pass(
    small_ingested: tuple[Path, object], monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    """process_range's merges overlap its analysis piece by piece (ranges.pipelined) when it
    has several threads: every output (evidence rows, quarantines, change outputs, CoinJoins,
    union-find state) is the one of a single piece on one thread."""
    from chainsleuth.cluster import ranges
    from chainsleuth.cluster.rules import POLICIES, Policy
    from chainsleuth.store.store import Store

    pol = POLICIES.get(policy) or Policy(policy, large_cluster=2**31 - 1, growth_factor=2**31 - 1)
    store = Store.open(small_ingested[0])
    arrays, n_addr = store.graph, store.counts["addresses"]
    n_tx = arrays.n_txs
    outputs = []
    for threads, min_txs in ((1, 1 << 15), (3, 997)):  # one piece; ~20 pieces, 2 analysing
        monkeypatch.setattr(ranges, "threads", lambda n=threads: n)
        monkeypatch.setattr(ranges, "MIN_PARALLEL_TXS", min_txs)
        unions = ranges.UnionFind.singletons(n_addr)
        cut = n_tx // 3  # two ranges, as the engine's chunks
        first = ranges.process_range(arrays, unions, pol, 0, cut)
        second = ranges.process_range(arrays, unions, pol, cut, n_tx)
        outputs.append((first, second, unions))
    (f1, s1, u1), (f2, s2, u2) = outputs
    for r1, r2 in ((f1, f2), (s1, s2)):
        for name in r1.__dataclass_fields__:
            assert np.array_equal(getattr(r1, name), getattr(r2, name)), name
    assert r1.n_merges > 0
    for name in ("parent", "size", "attribution", "batch_spent"):
        assert np.array_equal(getattr(u1, name), getattr(u2, name)), name
    assert u1.max_address == u2.max_address
