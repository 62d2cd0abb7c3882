"""A case's whole-chain reads made once and re-aggregated per naming state (issue 11, mainnet
cost): `PaidInReads` gives `paid_in_counts` and `StyleReads` gives `wallet_styles`, the same
arrays, for every grouping of the clusters they read, including clusters read later.
`paid_in_counts` is one fresh `PaidInReads` read: its counts are checked by hand in
test_deposit_cospend.py, so here the reads made in two steps are compared with fresh ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters
from chainsleuth.cluster.learned import read_fingerprints
from chainsleuth.store.store import Store
from chainsleuth.trace import services
from chainsleuth.trace.exposure import coinjoin_flags
from tests.trace.test_change_return import CitingChain
from tests.trace.test_deposit_cospend import ROUNDS, _history
from tests.trace.test_services_slices import _flat, _same


def _world(data: Path) -> tuple[Store, services.TxShapes, np.ndarray]:
    store = Store.open(data)
    cluster_of = np.asarray(Clusters(data).cluster_of)
    is_coinjoin, _ = coinjoin_flags(data, store.counts["txs"])
    shapes = services.tx_shapes(store, cluster_of, is_coinjoin)
    assert shapes is not None
    return store, shapes, cluster_of


def _groupings(clusters: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Sorted subsets of `clusters` with a group per cluster: each its own, a few big groups,
    random ones over a random half (as the names lent by then would group them)."""
    rng = np.random.default_rng(seed)
    n = clusters.shape[0]
    half = np.sort(rng.choice(clusters, max(n // 2, 1), replace=False))
    out = [
        (clusters, np.arange(n), n),
        (clusters, np.arange(n) % 3, min(n, 3)),
        (half, rng.integers(0, 5, half.shape[0]), 5),
    ]
    return [(c, g, k) for c, g, k in out if c.shape[0]]


def test_paid_in_reads_give_paid_in_counts_for_every_grouping(
    small_world: tuple[Path, Path],
) -> None:
    store, shapes, _ = _world(small_world[1])
    spenders = np.unique(np.asarray(shapes.spender)[np.asarray(shapes.n_inputs) >= 2])
    spenders = spenders[spenders >= 0][:400]
    reads = services.PaidInReads(store, shapes)
    seen = 0
    # a subset first, then the whole set: the second call reads only the clusters not read
    for clusters, group, k in _groupings(spenders[::2], 1) + _groupings(spenders, 2):
        want = services.paid_in_counts(store, shapes, clusters, group, k)
        got = reads.counts(clusters, group, k)
        assert got.tolist() == want.tolist()
        seen += int(want[:, 1].sum())
    assert seen > 0  # some inputs came from another group
    assert reads.passes == 2


def test_paid_in_reads_flag_the_same_cospender() -> None:
    """test_deposit_cospend's two wallets: the co-spending one is flagged through the reads,
    the sweeping one not, as `deposit_cospenders` reads them afresh."""
    for cospends, flagged in ((True, [0]), (False, [])):
        c = CitingChain()
        cluster_of = np.arange(200)
        _history(c, cluster_of, cospends)
        store, shapes = c.store(), c.shapes(cluster_of)
        reads = services.PaidInReads(store, shapes)
        clusters, group = np.array([1]), np.array([0])
        got = services.deposit_cospenders(store, shapes, clusters, group, 1, reads)
        assert got.tolist() == flagged
        assert reads.counts(clusters, group, 1)[0, 0] == 2 * ROUNDS
        # the customers' clusters put in the wallet's group: their coins are its own then
        customers = np.arange(60, 60 + ROUNDS)
        both = np.concatenate([[1], customers])
        together = np.zeros(both.shape[0], np.int64)
        want = services.paid_in_counts(store, shapes, both, together, 1)
        assert reads.counts(both, together, 1).tolist() == want.tolist()


@pytest.mark.parametrize("months", [None, 0])
def test_style_reads_give_wallet_styles_for_every_grouping(
    small_world: tuple[Path, Path], months: int | None
) -> None:
    store, shapes, cluster_of = _world(small_world[1])
    fingerprint = read_fingerprints(store, 0, store.counts["txs"])
    spenders = np.unique(np.asarray(shapes.spender)[np.asarray(shapes.batch)])
    clusters = spenders[spenders >= 0]
    # and clusters that spent nothing in a batch, among them coinbase payees
    clusters = np.union1d(clusters, np.unique(cluster_of)[::11])
    reads = services.StyleReads(store, shapes, cluster_of, clusters, fingerprint, months)
    periods = 0
    for members, g, _k in _groupings(clusters, 3):
        group = services.ClusterGroups.of(members, g)
        assert reads.covers(group, months)
        want = services.wallet_styles(store, shapes, cluster_of, group, fingerprint, months)
        got = reads.styles(group)
        assert _same(_flat(got), _flat(want))
        periods += want.periods is not None
    assert periods == (0 if months == 0 else 3)  # the simulated chain spans several windows
    outside = services.ClusterGroups.of(np.array([-5, int(clusters[0])]), np.array([0, 1]))
    assert not reads.covers(outside, months)
    assert not reads.covers(services.ClusterGroups.of(clusters[:3], np.zeros(3)), 1)
