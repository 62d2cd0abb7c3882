"""A tagged wallet whose tags show no sweep still shows its deposit type through the deposits it
received and spent (issue 11, docs/accuracy-log.md "Deposit types weighed by swept inputs";
`trace.services.received_deposits`).

Hard medium 4's dunmore: its tags are a forwarded deposit, the forward's change and a hot
address; its group sweeps nothing and pays 2 batches (too few to show where its change goes), so
it showed neither a deposit type nor a change position, and an untagged fragment that sweeps its
deposit type was compatible with it alone yet never named (no habit both show beyond the hot
type and fingerprint). Hand-built chains, every tx and script type spelled out."""

from __future__ import annotations

import numpy as np

from chainsleuth.trace import services
from tests.trace.test_deposit_type_majority import HOT, P2PKH, P2SH, P2WPKH, Chain, Tx


def _named_without_sweeps(c: Chain, cluster: int, forward: bool, sweep_into: bool) -> None:
    """A tagged wallet in `cluster`: 2 chained batches (change last); its hot coin is paid by
    its own sweep of 30 P2WPKH deposits from a deposit cluster outside the group
    (`sweep_into`), else by another fragment's payout; and (`forward`) a customer's deposit of
    P2WPKH that it forwards to a buyer (one input, two outputs)."""
    if sweep_into:
        deposits = c.paid_by_a_customer([(c.fresh(77), 100_000, P2WPKH) for _ in range(30)])
        coin = c.add(Tx(deposits, [(c.fresh(cluster), 2_900_000, HOT)]))[0]
    else:
        # another fragment's payout (outside the group) whose change the group spends
        pay = c.paid_by_a_customer([(c.fresh(78), 3_000_000, HOT)])
        payees = [(c.fresh(), 2_000, P2PKH) for _ in range(6)]
        coin = c.add(Tx(pay, [*payees, (c.fresh(cluster), 2_900_000, HOT)]))[-1]
        # the group spends it in a 2-output move first (no payout): its own hot coin
        coin = c.add(Tx([coin], [(c.fresh(), 1_000, P2PKH), (c.fresh(cluster), 2_890_000, HOT)]))[
            -1
        ]
    value = 2_800_000
    for _ in range(2):
        value -= 20_000
        payees = [(c.fresh(), 2_000, P2PKH) for _ in range(6)]
        coin = c.add(Tx([coin], [*payees, (c.fresh(cluster), value, HOT)]))[-1]
    if forward:
        deposit = c.paid_by_a_customer([(c.fresh(cluster), 500_000, P2WPKH)])
        c.add(Tx(deposit, [(c.fresh(), 300_000, P2PKH), (c.fresh(cluster), 190_000, HOT)]))


def _world(forward: bool, sweep_into: bool) -> tuple[Chain, services.WalletStyles]:
    """Named A (1000, as above), named B (1001: P2PKH deposits swept, 4 batches) and untagged
    C (1002: A's fragment, P2WPKH deposits swept, 4 batches)."""
    c = Chain()
    _named_without_sweeps(c, 1_000, forward, sweep_into)
    c.wallet(1_001, 20, P2PKH)
    c.wallet(1_002, 10, P2WPKH)
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    store, shapes, cluster_of = c.store(), c.shapes(), c.cluster_of()
    s = services.wallet_styles(store, shapes, cluster_of, group, fingerprint)
    assert s.deposit.tolist() == [services.STYLE_UNSEEN, P2PKH, P2WPKH]
    named = np.array([0, 1])
    return c, services.received_deposits(store, shapes, cluster_of, s, group, named)


def test_a_forwarded_deposit_shows_a_named_wallets_deposit_type() -> None:
    _c, s = _world(forward=True, sweep_into=False)
    # the payout's change the group spent is its hot coin, not a deposit: only the forward votes
    assert s.deposit.tolist() == [P2WPKH, P2PKH, P2WPKH]
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [0]


def test_a_sweep_into_the_group_shows_its_deposit_type() -> None:
    _c, s = _world(forward=False, sweep_into=True)
    assert s.deposit.tolist() == [P2WPKH, P2PKH, P2WPKH]
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [0]


def test_nothing_received_leaves_it_unseen_and_the_fragment_unnamed() -> None:
    _c, s = _world(forward=False, sweep_into=False)
    assert s.deposit.tolist() == [services.STYLE_UNSEEN, P2PKH, P2WPKH]
    # compatible with A alone (B's deposits rule B out), but no habit both show: not named
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [-1]


def test_a_customer_send_all_into_a_deposit_is_outvoted() -> None:
    """A customer's send-all of 3 P2SH coins into A's deposit, which A forwards: the send-all
    is shaped like a sweep into the group (3 P2SH votes), the deposit it paid is one P2WPKH vote,
    and a sweep of 30 P2WPKH deposits outweighs both."""
    c = Chain()
    _named_without_sweeps(c, 1_000, forward=False, sweep_into=True)
    coins = c.paid_by_a_customer([(c.fresh(79), 50_000, P2SH) for _ in range(3)])
    deposit = c.add(Tx(coins, [(c.fresh(1_000), 140_000, P2WPKH)]))
    c.add(Tx(deposit, [(c.fresh(), 100_000, P2PKH), (c.fresh(1_000), 30_000, HOT)]))
    group = services.ClusterGroups.of(np.array([1_000]), np.array([0]))
    store, shapes, cluster_of = c.store(), c.shapes(), c.cluster_of()
    s = services.wallet_styles(store, shapes, cluster_of, group, np.ones(len(c.txs), np.int64))
    s = services.received_deposits(store, shapes, cluster_of, s, group, np.array([0]))
    assert s.deposit.tolist() == [P2WPKH]


def test_an_untagged_fragment_shows_the_deposit_type_a_sweep_paid_it() -> None:
    """An untagged hot-wallet fragment (1002) that sweeps nothing: its coin came from its
    exchange's sweep of 30 P2WPKH deposits by a deposit cluster outside it. Named A (1000)
    sweeps P2WPKH deposits, named B (1001) P2PKH ones; both alike on every other habit. Read
    from its sweeps alone the fragment shows no deposit type and is compatible with both."""
    c = Chain()
    c.wallet(1_000, 20, P2WPKH)
    c.wallet(1_001, 20, P2PKH)
    _named_without_sweeps(c, 1_002, forward=False, sweep_into=True)
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    store, shapes, cluster_of = c.store(), c.shapes(), c.cluster_of()
    s = services.wallet_styles(store, shapes, cluster_of, group, np.ones(len(c.txs), np.int64))
    assert s.deposit.tolist() == [P2WPKH, P2PKH, services.STYLE_UNSEEN]
    named, candidate = np.array([0, 1]), np.array([2])
    assert services.style_matches(s, named, candidate).tolist() == [-1]
    s = services.received_deposits(store, shapes, cluster_of, s, group, np.array([0, 1, 2]))
    assert s.deposit.tolist() == [P2WPKH, P2PKH, P2WPKH]
    assert services.style_matches(s, named, candidate).tolist() == [0]
