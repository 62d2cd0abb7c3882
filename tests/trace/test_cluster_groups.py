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


def test_cluster_set_reads_like_a_bool_mask_over_every_cluster_id() -> None:
    from chainsleuth.trace.services import ClusterSet

    rng = np.random.default_rng(4)
    n = 5_000
    members = rng.choice(n, 250, replace=True)  # repeats are one member
    dense = np.zeros(n, np.bool_)
    dense[members] = True
    sparse = ClusterSet(members, n)
    ids = rng.integers(0, n, 20_000)
    assert np.array_equal(sparse[ids], dense[ids])
    assert sparse.shape == dense.shape
    assert np.array_equal(sparse.ids, np.flatnonzero(dense))
    inside, outside = int(members[0]), int(np.flatnonzero(~dense)[0])
    assert sparse[inside] and not sparse[outside]
    assert sparse[np.int64(inside)] and inside in sparse and outside not in sparse
    assert np.array_equal(sparse[ids.reshape(100, 200)], dense[ids].reshape(100, 200))
    # ids beyond the mask are not members; an empty set has none
    assert not sparse[np.array([n + 3])].any()
    assert not ClusterSet(np.zeros(0, np.int64), n)[ids].any()


def test_address_stops_outside_equals_the_inverted_mask() -> None:
    from chainsleuth.trace import engine

    rng = np.random.default_rng(6)
    n = 3_000
    cluster_of = rng.integers(0, n, n)
    service = np.zeros(n, np.bool_)
    service[rng.choice(n, 40, replace=False)] = True
    by_mask = engine.address_stops(~service, cluster_of).mask
    by_ids = engine.address_stops(
        np.flatnonzero(service), cluster_of, stop_sorted=True, outside=True
    )
    assert by_mask.any() and (~by_mask).any()
    assert np.array_equal(by_ids.mask, by_mask)
