"""A wallet that spends deposits in its batches, chained by its batches' change
(`trace.services.spender_change_chains`) and named after the one name its chain holds
(`cases.investigate._lend_by_chain`). Small chains built by hand: every tx, input, output and
value is spelled out; each address is its own cluster."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.investigate import _lend_by_chain
from chainsleuth.trace import services
from chainsleuth.trace.services import ClusterSet
from tests.trace.test_change_spend import Chain, Tx

UNIDENTIFIED = "unidentified_service"
ARCADIA, BOREALIS = ("arcadia", "exchange"), ("borealis", "exchange")
CHANGE = 1_234_567  # no round amount: what is left of the coins


def _batch(hot: int, deposit: int, change_to: int, change: int, first_payee: int) -> Tx:
    """A batch that spends the hot coin `hot` first and a customer's deposit `deposit`, pays
    6 withdrawals of 1,000 sat and its change to `change_to`."""
    return Tx([hot, deposit], [(first_payee + k, 1_000) for k in range(6)] + [(change_to, change)])


def _world(changes: tuple[int, int] = (CHANGE, CHANGE)) -> tuple[Chain, np.ndarray]:
    """Three batches of one wallet, each spending the last one's change with a deposit: the
    batch clusters 1, 2 and 3 (2 and 3: the first batch's and the second's change addresses,
    each joined to the deposit spent beside it). `changes`: the first two batches' change."""
    cluster_of = np.arange(200)
    c = Chain()
    coins = c.add(Tx([], [(1, 5_000_000), (50, 20_000), (51, 20_000), (52, 20_000)]))
    out = c.add(_batch(coins[0], coins[1], 2, changes[0], 100))
    out = c.add(_batch(out[-1], coins[2], 3, changes[1], 110))
    c.add(_batch(out[-1], coins[3], 4, CHANGE - 10_000, 120))
    cluster_of[[50, 51, 52]] = [1, 2, 3]  # each deposit in the cluster of its batch's inputs
    return c, cluster_of


def test_a_deposit_spenders_batches_are_chained_by_their_change() -> None:
    c, cluster_of = _world()
    shapes = c.shapes(cluster_of)
    nodes, chain = services.spender_change_chains(c.store(), shapes, np.array([1, 2, 3]))
    assert nodes.tolist() == [1, 2, 3]
    assert set(chain.tolist()) == {1}
    # no deposit spender, no chain: the rule reads only such wallets
    nodes, _chain = services.spender_change_chains(c.store(), shapes, np.zeros(0, np.int64))
    assert nodes.shape[0] == 0


def test_a_round_largest_output_is_a_withdrawal_and_breaks_the_chain() -> None:
    # the first batch's largest output is 4,000,000 sat: a withdrawal's round amount
    c, cluster_of = _world(changes=(4_000_000, CHANGE))
    nodes, chain = services.spender_change_chains(
        c.store(), c.shapes(cluster_of), np.array([1, 2, 3])
    )
    assert nodes.tolist() == [2, 3]
    assert chain.tolist() == [2, 2]


def test_the_chain_lends_its_one_name_to_its_unnamed_fragments() -> None:
    c, cluster_of = _world()
    shapes = c.shapes(cluster_of)
    spenders = np.array([1, 2, 3])
    mask = ClusterSet(np.zeros(0, np.int64), 200)
    attribution = {1: ARCADIA, 3: ("cluster:3", UNIDENTIFIED)}
    lent = _lend_by_chain(c.store(), shapes, attribution, mask, spenders)
    assert lent.tolist() == [2, 3]
    assert attribution[2] == ARCADIA and attribution[3] == ARCADIA
    # two names in one chain: none lent
    attribution = {1: ARCADIA, 3: BOREALIS}
    assert _lend_by_chain(c.store(), shapes, attribution, mask, spenders).shape[0] == 0
    assert 2 not in attribution
    # the seized service's clusters keep what they have
    attribution = {1: ARCADIA}
    seized = ClusterSet(np.array([2]), 200)
    assert _lend_by_chain(c.store(), shapes, attribution, seized, spenders).tolist() == [3]


def test_only_a_tag_names_the_chain() -> None:
    # cluster 1 named arcadia by a later rule (a wallet style: perhaps a look-alike's name,
    # where the wallet's own exchange is untagged), not tagged: the chain lends nothing
    c, cluster_of = _world()
    shapes = c.shapes(cluster_of)
    spenders = np.array([1, 2, 3])
    mask = ClusterSet(np.zeros(0, np.int64), 200)
    attribution = {1: ARCADIA}
    assert _lend_by_chain(c.store(), shapes, attribution, mask, spenders, tags={}).shape[0] == 0
    assert attribution == {1: ARCADIA}
    lent = _lend_by_chain(c.store(), shapes, attribution, mask, spenders, tags={1: ARCADIA})
    assert lent.tolist() == [2, 3]
