"""`trace.services.ClusterGroups`: a group per cluster id for a few clusters, every other
cluster none, as sorted (cluster, group) pairs instead of an array over every cluster id."""

from __future__ import annotations

import numpy as np

from chainsleuth.trace.services import ClusterGroups


def test_lookup_equals_an_array_over_every_cluster_id() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    clusters = rng.choice(n, 300, replace=False)
    groups = rng.integers(0, 40, clusters.shape[0])
    dense = np.full(n, -1, np.int64)
    dense[clusters] = groups
    sparse = ClusterGroups.of(clusters, groups)
    ids = rng.integers(0, n, 20_000)
    assert np.array_equal(sparse.lookup(ids), dense[ids])
    assert sparse.n_groups == int(dense.max()) + 1
    # beyond the largest grouped cluster and below the smallest: none
    assert np.array_equal(sparse.lookup(np.array([n + 10, -1])), [-1, -1])


def test_no_groups() -> None:
    empty = ClusterGroups.of(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert empty.n_groups == 0
    assert np.array_equal(empty.lookup(np.array([0, 5])), [-1, -1])
