"""A customer's send-all into an exchange's deposit is no sweep of the wallet that holds the
customer's cluster (issue 11, docs/accuracy-log.md "Send-alls into deposits are no sweeps of
the wallet's own"; `trace.services._swept_on`).

Hard medium 7: two untagged fragments of arcadia (P2PKH hot, P2WPKH deposits) each held a
customer's cluster (a stray merge) whose send-all of 3-5 P2PKH coins into one of arcadia's
P2WPKH deposits was shaped like a sweep. It was each fragment's only sweep, so the fragments
read deposits P2PKH, which ruled arcadia out and left ember (P2PKH deposits, otherwise alike)
as their only match: 23 arcadia deposits got ember leads. The send-all's output was swept on by
arcadia's deposit cluster, as a deposit is; a wallet's own sweep pays its hot wallet, spent in
payouts. Hand-built chains, every tx and script type spelled out."""

from __future__ import annotations

import numpy as np

from chainsleuth.trace import services
from tests.trace.test_deposit_type_majority import HOT, P2PKH, P2WPKH, Chain, Tx

A, B, C, A_DEPOSITS = 1_000, 1_001, 1_002, 3_000


def _fragment(c: Chain, cluster: int) -> None:
    """An untagged hot-wallet fragment: a coin a customer paid it, 4 chained batches of 6
    payees, change last (it sweeps nothing of its own)."""
    coin = c.paid_by_a_customer([(c.fresh(cluster), 3_000_000, HOT)])[0]
    value = 3_000_000
    for _ in range(4):
        value -= 20_000
        payees = [(c.fresh(), 2_000, P2PKH) for _ in range(6)]
        coin = c.add(Tx([coin], [*payees, (c.fresh(cluster), value, HOT)]))[-1]


def _send_all_into_a_deposit(
    c: Chain, payer: int, deposit: int, sweeper: int, into: int = A
) -> None:
    """A customer (addresses in `payer`) sends 5 P2PKH coins to one P2WPKH deposit address
    (in `deposit`); `sweeper` (its first input) sweeps it with 2 other deposits into a hot
    coin (in `into`)."""
    coins = c.paid_by_a_customer([(c.fresh(payer), 50_000, P2PKH) for _ in range(5)])
    sent = c.add(Tx(coins, [(c.fresh(deposit), 240_000, P2WPKH)]))
    others = c.paid_by_a_customer([(c.fresh(sweeper), 100_000, P2WPKH) for _ in range(2)])
    c.add(Tx([*others, *sent], [(c.fresh(into), 430_000, HOT)]))


def _styles(c: Chain, clusters: list[int]) -> services.WalletStyles:
    group = services.ClusterGroups.of(np.array(clusters), np.arange(len(clusters)))
    store, shapes, cluster_of = c.store(), c.shapes(), c.cluster_of()
    s = services.wallet_styles(store, shapes, cluster_of, group, np.ones(len(c.txs), np.int64))
    asked = np.arange(len(clusters))
    return services.received_deposits(store, shapes, cluster_of, s, group, asked)


def _world(swept_on: bool) -> services.WalletStyles:
    """Named A (P2WPKH deposits), named B (P2PKH deposits), untagged C (A's fragment) whose
    cluster holds a customer's addresses; the customer's send-all pays A's deposit, which A's
    deposit cluster sweeps on (`swept_on`), else spends in a 2-output move."""
    c = Chain()
    c.wallet(A, 20, P2WPKH)
    c.wallet(B, 20, P2PKH)
    _fragment(c, C)
    if swept_on:
        _send_all_into_a_deposit(c, payer=C, deposit=A_DEPOSITS, sweeper=A_DEPOSITS)
    else:
        coins = c.paid_by_a_customer([(c.fresh(C), 50_000, P2PKH) for _ in range(5)])
        sent = c.add(Tx(coins, [(c.fresh(A_DEPOSITS), 240_000, P2WPKH)]))
        c.add(Tx(sent, [(c.fresh(), 200_000, P2PKH), (c.fresh(A_DEPOSITS), 30_000, HOT)]))
    return _styles(c, [A, B, C])


def test_a_send_all_swept_on_shows_no_deposit_type_and_names_no_twin() -> None:
    s = _world(swept_on=True)
    assert s.deposit.tolist() == [P2WPKH, P2PKH, services.STYLE_UNSEEN]
    assert s.deposit_reads is not None and s.deposit_reads[2] == 0
    # compatible with A and B (alike on every other habit): named after neither, not after B
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [-1]


def test_a_sweep_whose_output_is_not_swept_on_still_counts() -> None:
    # the same 5-coin tx, its output spent otherwise: shaped like the fragment's own sweep, it
    # still votes (what the rule cannot tell from an exchange's small sweep)
    s = _world(swept_on=False)
    assert s.deposit.tolist() == [P2WPKH, P2PKH, P2PKH]


def test_a_send_all_into_a_group_coin_swept_on_outside_it_votes_nothing() -> None:
    """`received_deposits`: a customer's send-all paying an address of group A that a cluster
    outside A sweeps on (into another wallet) votes neither the customer's coins' type
    (P2PKH, as it did) nor any: the coin is that cluster's deposit, not A's."""
    c = Chain()
    _fragment(c, A)
    _send_all_into_a_deposit(c, payer=77, deposit=A, sweeper=A_DEPOSITS, into=4_000)
    s = _styles(c, [A])
    assert s.deposit.tolist() == [services.STYLE_UNSEEN]
