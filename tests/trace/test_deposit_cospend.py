"""An exchange that spends its customers' deposits straight in its payouts, with coins of its
own, instead of sweeping them (issue 11, docs/accuracy-log.md "Exchanges that spend deposits
in their payouts"): its spend of another wallet's payout output is no sign that the output was
that wallet's change, because a withdrawal into one of its deposits is spent the same way.
`trace.services.deposit_cospenders` reads such a wallet from the chain, and
`cases.investigate._lend_by_change` lends no fragment its name. Hand-built chains (the helpers
of test_fragment_links.py); every tx, input, output and value is spelled out."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.investigate import _attribute_services
from chainsleuth.trace import services
from tests.trace.test_change_return import CitingChain
from tests.trace.test_change_spend import Tx
from tests.trace.test_fragment_links import ARCADIA, LABEL, _lend, _payout

ROUNDS = 10


def _history(c: CitingChain, cluster_of: np.ndarray, cospends: bool) -> None:
    """Arcadia's hot wallet (cluster 1) pays `ROUNDS` withdrawals of 20,000, each in a tx of two
    inputs and two payees (the withdrawal, its change to a fresh address of cluster 1), from
    its last change and a customer's deposit of 40,000. Customer k (address 60 + k, a cluster
    of its own) pays the deposit (address 120 + k, in cluster 1) with change to address 70 + k.
    With `cospends` the payout spends the deposit itself; else arcadia first sweeps it (one
    input, one payee) to a hot address (130 + k, cluster 1) and spends that."""
    cluster_of[30] = 1
    hot = c.add(Tx([], [(30, 1_000_000)]))[0]
    for k in range(ROUNDS):
        cluster_of[[120 + k, 90 + k, 130 + k]] = 1
        paid = c.add(Tx([], [(60 + k, 50_000)]))[0]
        deposit = c.add(Tx([paid], [(120 + k, 40_000), (70 + k, 9_000)]))[0]
        if not cospends:
            deposit = c.add(Tx([deposit], [(130 + k, 39_000)]))[0]
        value = 1_000_000 + 40_000 * (k + 1) - 21_000 * (k + 1)
        hot = c.add(Tx([deposit, hot], [(80 + k, 20_000), (90 + k, value)]))[1]


def test_deposit_cospenders_reads_the_habit_from_the_inputs() -> None:
    """Co-spending: 10 of the 20 inputs of arcadia's payouts are deposits that customers'
    payments made: 0.5, over `COSPEND_SHARE`. Sweeping: none (its own sweeps made them; the
    coin it started with, made by a tx of no inputs, counts as its own, as a pool's coinbase).
    A group with fewer than `COSPEND_MIN_INPUTS` inputs is not judged."""
    for cospends, share, flagged in ((True, 10, [0]), (False, 0, [])):
        c = CitingChain()
        cluster_of = np.arange(200)
        _history(c, cluster_of, cospends)
        store, shapes = c.store(), c.shapes(cluster_of)
        clusters, group = np.array([1]), np.array([0])
        counts = services.paid_in_counts(store, shapes, clusters, group, 1)
        assert counts.tolist() == [[2 * ROUNDS, share]]
        assert services.deposit_cospenders(store, shapes, clusters, group, 1).tolist() == flagged
    c = CitingChain()
    cluster_of = np.arange(200)
    _history(c, cluster_of, True)
    del c.txs[-3:]  # 9 rounds: 18 inputs
    got = services.deposit_cospenders(c.store(), c.shapes(cluster_of), np.array([1]),
                                      np.array([0]), 1)  # fmt: skip
    assert services.paid_in_counts(c.store(), c.shapes(cluster_of), np.array([1]),
                                   np.array([0]), 1).tolist() == [[18, 9]]  # fmt: skip
    assert got.tolist() == []


def test_a_cospending_named_wallet_lends_no_name_to_a_payout_it_cospends() -> None:
    """test_fragment_links' payout co-spend (arcadia spends the unnamed service's payout
    output with a coin of its own, in a 2-payee tx), where arcadia pays its withdrawals from
    its customers' deposits: that output may as well have been a withdrawal into one of
    arcadia's deposits. No name is lent; the service stays unnamed."""
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
    _history(c, cluster_of, cospends=True)
    attribution = {1: ARCADIA, 20: LABEL, 25: LABEL}
    named, evidence, via = _lend(c, cluster_of, attribution)
    assert named.tolist() == [] and evidence == [] and via == {}
    assert attribution[20] == attribution[25] == LABEL


def test_a_sweeping_named_wallet_still_lends_its_name() -> None:
    """The same chain where arcadia sweeps each deposit before paying from it: its payouts
    spend its own coins, and the co-spend names the service arcadia as before."""
    c, cluster_of = _payout(spend_inputs=2, spend_outputs=2)
    _history(c, cluster_of, cospends=False)
    attribution = {1: ARCADIA, 20: LABEL, 25: LABEL}
    named, evidence, via = _lend(c, cluster_of, attribution)
    assert named.tolist() == [20, 25]
    assert attribution[20] == attribution[25] == ARCADIA
    assert via == {"payout_cospend": [20, 25]}
    assert [(e["via"], e["batch_txid"], e["spend_txid"]) for e in evidence] == [
        ("payout_cospend", "tx1", "tx2")
    ]


def test_no_hot_change_name_from_a_cospending_wallet() -> None:
    """A lone cluster (50) whose one-input, two-payee tx pays into a cluster of arcadia's
    (`trace.services.hot_change_links`: a forward's rest, a refill) takes arcadia's name where
    arcadia sweeps its deposits; where arcadia spends them in its payouts its deposits sit in
    its cluster, the tx may be a customer's payment into one, and no name is lent."""
    for cospends, want in ((True, None), (False, ARCADIA)):
        c = CitingChain()
        cluster_of = np.arange(200)
        _history(c, cluster_of, cospends)
        n = cluster_of.shape[0]
        stats = services.ServiceStats(
            services.ClusterCounts(np.zeros(0, np.int64), n),
            services.ClusterCounts(np.zeros(0, np.int64), n),
        )
        none = np.zeros(0, np.int64)
        attribution = {1: ARCADIA}
        _attribute_services(
            attribution, stats, (none, none), services.ClusterSet(none, n),
            (np.array([50]), np.array([1])), c.store(), c.shapes(cluster_of),
        )  # fmt: skip
        assert attribution.get(50) == want
