"""Two wrong-lead sources of exchanges that spend their customers' deposits in their payouts
(issue 11, `hard_cospend`; docs/accuracy-log.md "Moves past an exchange's own batches, and
the exchange that spent the deposit"), on hand-built chains:

- `cases.rows.custody_moves_kept` / `cases.kernels.lead_sources`: a lead's funding tx is moved
  past an exchange's batch only while that batch's change is not already back in its own
  cluster (else the next batch on the path spent one of its payees: another exchange's
  payout spending the deposit its customer was paid into);
- `cases.investigate._lend_to_funders`: a payout into a tag of a deposit co-spender lends no
  name (the tag's cluster holds deposits, which other exchanges' withdrawals pay)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from chainsleuth.cases import kernels as case_kernels
from chainsleuth.cases.investigate import _lend_to_funders
from chainsleuth.cases.rows import BATCH_MIN_OUTPUTS, custody_moves_kept
from chainsleuth.store.layout import NONE32
from chainsleuth.trace import kernels as trace_kernels
from tests.cases.test_forward_signs import _graph as forward_graph
from tests.trace.test_blind_wallets import P2SH, Chain, Tx, _payees

NONE = int(NONE32)
P2WPKH = 4


def _graph(txs: list[tuple[list[int], list[int]]]) -> SimpleNamespace:
    """Txs given as (outputs spent, address of each output made): `test_forward_signs._graph`'s
    graph (every output P2WPKH, 1,000 sat) with these addresses and `output_spent_by_tx`."""
    graph = forward_graph([(ins, [P2WPKH] * len(outs)) for ins, outs in txs])
    graph.output_address = np.array([a for _ins, outs in txs for a in outs], np.uint32)
    spent_by = np.full(graph.output_address.shape[0], NONE, np.uint32)
    for t, (ins, _outs) in enumerate(txs):
        spent_by[[o for o in ins if o != NONE]] = t
    graph.output_spent_by_tx = spent_by
    return graph


# Address (= cluster) ids: 1 exchange X's tagged wallet (it reuses its hot address), 5 X's
# fresh change address, 20 exchange Y's deposit address for X's customer, 21 Y's hot wallet,
# 30 the payer, 40 the service's deposit, 60+ other payees.
X_HOT, X_FRESH, Y_DEPOSIT, Y_HOT, PAYER, DEPOSIT = 1, 5, 20, 21, 30, 40
GRAPH = _graph(
    [
        ([NONE], [X_HOT, X_HOT, Y_HOT]),  # 0: X's coins (outputs 0, 1) and Y's (2)
        # 1: X's batch pays Y's deposit (3), two payees (4, 5), its change back home (6)
        ([0], [Y_DEPOSIT, 60, 61, X_HOT]),
        # 2: Y's payout spends that deposit with its own coin: the payer (7), 62, 63, Y (10)
        ([3, 2], [PAYER, 62, 63, Y_HOT]),
        ([7], [DEPOSIT, PAYER]),  # 3: the payer pays the service's deposit (11), change (12)
        # 4: X's batch with its change to a fresh address (13), payees 64, 65 (14, 15)
        ([1], [X_FRESH, 64, 65]),
        # 5: X's next batch spends that change: the payer (16), 66, 67 (17, 18)
        ([13], [PAYER, 66, 67]),
        ([16], [DEPOSIT, PAYER]),  # 6: the payer pays the deposit (19), change (20)
    ]
)
CLUSTER = GRAPH.output_address.astype(np.int64)  # one cluster per address


def test_no_move_past_a_batch_whose_change_is_back_in_its_cluster() -> None:
    moved = np.array([[1], [4]], np.int64)  # the batches the funding tx was moved past
    funding = np.array([2, 5], np.int64)  # the payout that spent their path output
    kept = custody_moves_kept(GRAPH, CLUSTER, moved, funding)
    # X's batch 1 shows its change in its own cluster: tx 2 spent a payee (Y's deposit), not
    # X's change. Batch 4's change went to a fresh address: the move past it stands.
    assert kept.tolist() == [0, 1]


def test_the_moves_before_a_batch_with_its_change_in_view_stand() -> None:
    # moved past 4 (fresh change), then past 1 (change back home): only the first move stands
    moved = np.array([[4, 1], [4, -1]], np.int64)
    kept = custody_moves_kept(GRAPH, CLUSTER, moved, np.array([2, 5], np.int64))
    assert kept.tolist() == [1, 1]
    none = custody_moves_kept(GRAPH, CLUSTER, np.zeros((0, 0), np.int64), np.zeros(0, np.int64))
    assert none.shape == (0,)


def _entries() -> tuple[np.ndarray, ...]:
    """The backward trace's entries of the deposit paid by tx 3 (row 0) and of the one paid by
    tx 6 (row 1): (e_parent, e_tx, e_output, e_hops), and each row's entry (the named coin)."""
    # row 0: deposit 11 <- tx 3 spends 7 <- tx 2 spends 3 <- tx 1 spends 0 (X's named coin)
    # row 1: deposit 19 <- tx 6 spends 16 <- tx 5 spends 13 <- tx 4 spends 1 (X's named coin)
    e_parent = np.array([-1, 0, 1, 2, -1, 4, 5, 6], np.int64)
    e_tx = np.array([-1, 3, 2, 1, -1, 6, 5, 4], np.int64)
    e_output = np.array([11, 7, 3, 0, 19, 16, 13, 1], np.int64)
    e_hops = np.array([0, 1, 2, 3, 0, 1, 2, 3], np.int32)
    return e_parent, e_tx, e_output, e_hops, np.array([3, 7], np.int64)


def _sources(max_moves: np.ndarray) -> tuple[np.ndarray, ...]:
    e_parent, e_tx, e_output, e_hops, entry = _entries()
    out: tuple[np.ndarray, ...] = case_kernels.lead_sources(
        entry,
        np.full(2, trace_kernels.KIND_CLUSTER, np.int64),
        np.full(2, -1, np.int64),
        e_parent,
        e_tx,
        e_output,
        e_hops,
        GRAPH.tx_first_output,
        GRAPH.output_value.shape[0],
        GRAPH.output_script_type,
        BATCH_MIN_OUTPUTS,
        trace_kernels.KIND_CLUSTER,
        trace_kernels.KIND_COINJOIN,
        max_moves,
    )
    return out


def test_the_lead_stays_at_the_batch_that_paid_the_other_exchanges_deposit() -> None:
    funding, _source, hops, _key, custody = _sources(np.zeros(0, np.int32))
    # unlimited (before): both funding txs moved one batch on, Y's payout taken for X's own
    assert funding.tolist() == [2, 5] and custody.tolist() == [1, 1]
    e_parent, e_tx, _out, _hops, entry = _entries()
    moved = case_kernels.custody_txs(entry, custody, int(custody.max()), e_parent, e_tx)
    kept = custody_moves_kept(GRAPH, CLUSTER, moved, funding)
    funding, _source, hops, _key, custody = _sources(kept)
    # row 0 stays at X's batch 1 (Y's payout 2 is on its path); row 1 keeps its move
    assert funding.tolist() == [1, 5] and custody.tolist() == [0, 1]
    assert hops.tolist() == [3, 2]


def test_a_co_spenders_tag_lends_no_name_to_the_payout_that_paid_it() -> None:
    """Cluster 1's payout pays cobalt's tag 10: its change, unless cobalt spends its customers'
    deposits in its payouts, where address 10 may as well be a deposit that cluster 1 paid a
    withdrawal into."""
    cluster_of = np.arange(100)
    c = Chain()
    coins = c.add(Tx([], [(1, P2SH), (3, P2SH)]))
    c.add(Tx([coins[0]], [(10, P2SH), *_payees(60, 3)]))  # cluster 1's payout pays cobalt's tag
    c.add(Tx([coins[1]], [(30, P2SH), *_payees(80, 3)]))  # cluster 3's pays dunmore's tag
    _store, shapes, _fp = c.build(cluster_of)
    cobalt, dunmore = ("cobalt", "exchange"), ("dunmore", "exchange")
    tags: dict[int, tuple[str | None, str]] = {10: cobalt, 30: dunmore}
    attribution = dict(tags)
    named = _lend_to_funders(shapes, cluster_of, attribution, tags, np.zeros(100, np.bool_))
    assert named.tolist() == [1, 3]  # neither is a co-spender: both payers named
    attribution = dict(tags)
    named = _lend_to_funders(
        shapes, cluster_of, attribution, tags, np.zeros(100, np.bool_), {cobalt}
    )
    assert named.tolist() == [3]
    assert 1 not in attribution and attribution[3] == dunmore
