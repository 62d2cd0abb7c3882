"""Strands of one deposit-spending wallet joined by the customers whose deposits both spend
(`trace.services.deposit_payer_bridges`, `cases.investigate._lend_by_chain`). Two batches built
by hand, each spending its own hot coin (no change of one is spent by the other, so no change
chain joins them) and deposits paid by customers; each address is its own cluster but for the
deposits, which join the cluster of the batch that spends them."""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.cases import investigate
from chainsleuth.cases.investigate import _lend_by_chain
from chainsleuth.trace import services
from chainsleuth.trace.services import ClusterSet
from tests.trace.test_change_spend import Chain, Tx

ARCADIA, BOREALIS = ("arcadia", "exchange"), ("borealis", "exchange")
STRAND_A, STRAND_B = 1, 5  # the two batch clusters (their hot coins' addresses)
CHANGE = 1_234_567


def _world(payers: tuple[int, int, int, int]) -> tuple[Chain, np.ndarray]:
    """Batch A (cluster 1) spends the deposits paid by `payers[0]` and `payers[1]`, batch B
    (cluster 5) those paid by `payers[2]` and `payers[3]`; each payment is a customer's
    one-input tx of a deposit and change."""
    cluster_of = np.arange(200)
    c = Chain()
    coins = c.add(
        Tx([], [(STRAND_A, 5_000_000), (STRAND_B, 5_000_000)] + [(p, 100_000) for p in payers])
    )
    deposits = []
    for k in range(4):
        paid = c.add(Tx([coins[2 + k]], [(70 + k, 50_001), (80 + k, 40_000)]))
        deposits.append(paid[0])
    c.add(
        Tx(
            [coins[0], deposits[0], deposits[1]],
            [(100 + k, 1_000) for k in range(6)] + [(2, CHANGE)],
        )
    )
    c.add(
        Tx(
            [coins[1], deposits[2], deposits[3]],
            [(110 + k, 1_000) for k in range(6)] + [(6, CHANGE)],
        )
    )
    cluster_of[[70, 71, 72, 73]] = [STRAND_A, STRAND_A, STRAND_B, STRAND_B]
    return c, cluster_of


SPENDERS = np.array([STRAND_A, STRAND_B])
MASK = ClusterSet(np.zeros(0, np.int64), 200)


def test_two_payers_in_both_strands_bridge_them() -> None:
    c, cluster_of = _world((60, 61, 60, 61))
    shapes = c.shapes(cluster_of)
    a, b, support = services.deposit_payer_bridges(shapes, SPENDERS)
    assert (a.tolist(), b.tolist(), support.tolist()) == ([STRAND_A], [STRAND_B], [2])
    # no change chain joins them: the bridge alone names strand B after strand A's tag
    nodes, _chain = services.spender_change_chains(c.store(), shapes, SPENDERS)
    assert nodes.shape[0] == 0
    attribution = {STRAND_A: ARCADIA}
    lent = _lend_by_chain(c.store(), shapes, attribution, MASK, SPENDERS)
    assert lent.tolist() == [STRAND_B]
    assert attribution[STRAND_B] == ARCADIA


def test_without_the_bridges_strand_b_stays_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    c, cluster_of = _world((60, 61, 60, 61))
    monkeypatch.setattr(investigate, "BRIDGE_PAYERS", False)
    attribution = {STRAND_A: ARCADIA}
    lent = _lend_by_chain(c.store(), c.shapes(cluster_of), attribution, MASK, SPENDERS)
    assert lent.shape[0] == 0 and STRAND_B not in attribution


def test_one_payer_in_both_strands_bridges_nothing() -> None:
    # payer 60 pays into both strands, 61 and 62 into one each: a customer of two wallets?
    c, cluster_of = _world((60, 61, 60, 62))
    shapes = c.shapes(cluster_of)
    assert services.deposit_payer_bridges(shapes, SPENDERS)[0].shape[0] == 0
    attribution = {STRAND_A: ARCADIA}
    assert _lend_by_chain(c.store(), shapes, attribution, MASK, SPENDERS).shape[0] == 0


def _three_strands() -> tuple[Chain, np.ndarray]:
    """Strands A (cluster 1), B (5) and C (9): payers 60, 61 and 62 pay deposits into A and B
    (three bridge A-B), 63 and 64 into B and C (two bridge B-C)."""
    return _strands({STRAND_A: [60, 61, 62], STRAND_B: [60, 61, 62, 63, 64], 9: [63, 64]})


def _strands(payers: dict[int, list[int]]) -> tuple[Chain, np.ndarray]:
    """One batch per strand (its cluster: the key) spending its hot coin and one deposit of
    each of its payers (payer clusters 10-99), each paid by the payer's one-input tx; up to 3
    strands of 1, 5 and 9, and 49 payments in all."""
    cluster_of = np.arange(300)
    c = Chain()
    n_pay = sum(len(v) for v in payers.values())
    coins = c.add(
        Tx([], [(s, 5_000_000) for s in payers] + [(200 + k, 100_000) for k in range(n_pay)])
    )
    k = 0
    for j, (strand, who) in enumerate(payers.items()):
        spent = [coins[j]]
        for p in who:
            cluster_of[200 + k] = p  # the customer's coin, in the customer's cluster
            paid = c.add(Tx([coins[len(payers) + k]], [(150 + k, 50_001), (250 + k, 40_000)]))
            cluster_of[150 + k] = strand  # the deposit, in the cluster of the batch spending it
            spent.append(paid[0])
            k += 1
        c.add(Tx(spent, [(100 + 10 * j + m, 1_000) for m in range(6)] + [(strand + 1, CHANGE)]))
    return c, cluster_of


def test_a_bridge_between_two_tag_names_is_refused() -> None:
    # A tagged arcadia, C borealis: B's payers are customers of A and of C. The stronger
    # bridge (A-B, three payers) joins B to A; B-C would join two names and is refused, so C
    # keeps its own name and B takes arcadia. Taken as they come, the three are one piece of
    # two names and nothing is lent.
    c, cluster_of = _three_strands()
    shapes = c.shapes(cluster_of)
    spenders = np.array([STRAND_A, STRAND_B, 9])
    a, b, support = services.deposit_payer_bridges(shapes, spenders)
    assert list(zip(a.tolist(), b.tolist(), support.tolist(), strict=True)) == [
        (1, 5, 3),
        (5, 9, 2),
    ]
    attribution = {STRAND_A: ARCADIA, 9: BOREALIS}
    lent = _lend_by_chain(c.store(), shapes, attribution, MASK, spenders)
    assert lent.tolist() == [STRAND_B]
    assert attribution == {STRAND_A: ARCADIA, STRAND_B: ARCADIA, 9: BOREALIS}


def _customers_of_two_exchanges() -> tuple[Chain, np.ndarray]:
    """Strands A and B with 22 payers each, 2 of them (60, 61) paying deposits into both: two
    exchanges' strands and two people with accounts at both."""
    return _strands({STRAND_A: [60, 61, *range(20, 40)], STRAND_B: [60, 61, *range(40, 60)]})


def test_two_shared_payers_among_many_bridge_nothing() -> None:
    # 2 of 22 payers (0.09) shared: under BRIDGE_MIN_OVERLAP (0.1), so B keeps no name
    c, cluster_of = _customers_of_two_exchanges()
    shapes = c.shapes(cluster_of)
    assert services.deposit_payer_bridges(shapes, SPENDERS)[0].shape[0] == 0
    attribution = {STRAND_A: ARCADIA}
    assert _lend_by_chain(c.store(), shapes, attribution, MASK, SPENDERS).shape[0] == 0
    assert STRAND_B not in attribution


def test_without_the_overlap_guard_two_shared_payers_lend_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the count of 2 alone (branch issue11-cprecall) bridges them and names B arcadia: the
    # wrong exchange when B is another exchange's strand
    monkeypatch.setattr(services, "BRIDGE_MIN_OVERLAP", 0.0)
    c, cluster_of = _customers_of_two_exchanges()
    shapes = c.shapes(cluster_of)
    a, b, support = services.deposit_payer_bridges(shapes, SPENDERS)
    assert (a.tolist(), b.tolist(), support.tolist()) == ([STRAND_A], [STRAND_B], [2])
    attribution = {STRAND_A: ARCADIA}
    assert _lend_by_chain(c.store(), shapes, attribution, MASK, SPENDERS).tolist() == [STRAND_B]


def test_three_shared_payers_among_many_bridge_them() -> None:
    # 3 of 22 (0.14): a share, not a count, decides
    c, cluster_of = _strands(
        {STRAND_A: [60, 61, 62, *range(20, 39)], STRAND_B: [60, 61, 62, *range(40, 59)]}
    )
    shapes = c.shapes(cluster_of)
    a, b, support = services.deposit_payer_bridges(shapes, SPENDERS)
    assert (a.tolist(), b.tolist(), support.tolist()) == ([STRAND_A], [STRAND_B], [3])
