"""A wallet's deposit type (`WalletStyles.deposit`) survives a stray send-all in its group
(issue 11, docs/accuracy-log.md "Deposit types weighed by swept inputs").

Two tagged exchanges alike on every habit but the script type of their customers' deposits, and
an untagged fragment of the second. The first exchange's group also holds a customer's cluster
(a stray merge) whose send-all of 3 coins of another type is shaped like a sweep. Counted one
sweep one vote, the first exchange's deposit type was mixed (not known), so it could not rule
the fragment out and the fragment was named after neither. Weighed by swept inputs, its 40
deposits outweigh the customer's 3 coins ten times over. Small chains built by hand: every tx, input, output
and script type is spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainsleuth.trace import services
from tests.trace.hand_shapes import HandChain, hand_shapes, hand_store

P2PKH, P2SH, P2WPKH = 2, 3, 4
HOT = P2WPKH


@dataclass
class Tx:
    inputs: list[int]  # output ids it spends
    outputs: list[tuple[int, int, int]]  # (address id, value, script type)


class Chain(HandChain):
    def __init__(self) -> None:
        super().__init__()
        self.next_address = 0
        self.cluster: dict[int, int] = {}

    def fresh(self, cluster: int | None = None) -> int:
        a = self.next_address
        self.next_address += 1
        self.cluster[a] = 10_000 + a if cluster is None else cluster
        return a

    def store(self) -> Any:
        return hand_store(
            [t.inputs for t in self.txs], [s for t in self.txs for *_, s in t.outputs]
        )

    def cluster_of(self) -> np.ndarray:
        return np.array([self.cluster[a] for a in range(self.next_address)], np.int64)

    def shapes(self) -> services.TxShapes:
        return hand_shapes(
            [t.inputs for t in self.txs],
            [[a for a, _, _ in t.outputs] for t in self.txs],
            [[v for _, v, _ in t.outputs] for t in self.txs],
            [False] * len(self.txs),
            self.cluster_of(),
        )

    def paid_by_a_customer(self, outputs: list[tuple[int, int, int]]) -> list[int]:
        """`outputs`, paid by a customer's coin (itself minted by a tx without inputs: a
        coinbase, which no exchange receives here)."""
        coin = self.add(Tx([], [(self.fresh(), 10**9, P2PKH)]))
        return self.add(Tx(coin, outputs))

    def wallet(self, cluster: int, deposits: int, deposit_type: int) -> None:
        """An exchange wallet in `cluster`: `deposits` customer deposits of `deposit_type`
        swept into one hot coin, then 4 chained batches of 6 payees, change last to a fresh
        hot address."""
        paid = self.paid_by_a_customer(
            [(self.fresh(cluster), 100_000, deposit_type) for _ in range(deposits)]
        )
        coin = self.add(Tx(paid, [(self.fresh(cluster), 100_000 * deposits - 5_000, HOT)]))[0]
        value = 100_000 * deposits - 5_000
        for _ in range(4):
            value -= 20_000
            payees = [(self.fresh(), 2_000, P2PKH) for _ in range(6)]
            out = self.add(Tx([coin], [*payees, (self.fresh(cluster), value, HOT)]))
            coin = out[-1]


def _world() -> tuple[Chain, np.ndarray, np.ndarray]:
    """Named A (1000: P2PKH deposits, and a customer's P2SH send-all of 3 coins in its
    group), named B (1001: P2WPKH deposits), untagged C (1002: B's wallet, P2WPKH deposits)."""
    c = Chain()
    c.wallet(1_000, 40, P2PKH)
    coins = c.paid_by_a_customer([(c.fresh(1_000), 50_000, P2SH) for _ in range(3)])
    c.add(Tx(coins, [(c.fresh(), 140_000, P2PKH)]))  # the customer's send-all
    c.wallet(1_001, 20, P2WPKH)
    c.wallet(1_002, 10, P2WPKH)
    return c, np.array([0, 1]), np.array([2])


def _styles(c: Chain) -> services.WalletStyles:
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    return services.wallet_styles(c.store(), c.shapes(), c.cluster_of(), group, fingerprint)


def test_a_stray_send_all_does_not_hide_a_wallets_deposit_type() -> None:
    c, named, candidate = _world()
    s = _styles(c)
    assert s.deposit.tolist() == [P2PKH, P2WPKH, P2WPKH]
    # the fragment is B's alone: A's deposits rule A out
    assert services.style_matches(s, named, candidate).tolist() == [1]


def test_two_deposit_types_without_a_clear_majority_stay_mixed() -> None:
    c = Chain()
    c.wallet(1_000, 20, P2PKH)
    c.wallet(1_000, 5, P2SH)  # one wallet, 5 of 25 swept deposits of another type
    group = services.ClusterGroups.of(np.array([1_000]), np.array([0]))
    fingerprint = np.ones(len(c.txs), np.int64)
    s = services.wallet_styles(c.store(), c.shapes(), c.cluster_of(), group, fingerprint)
    assert s.deposit.tolist() == [services.STYLE_MIXED]
    # and the 10-to-1 line: 20 against 2 is one type
    d = services._main_value(
        np.array([0, 0, 1]), np.array([P2PKH, P2SH, P2SH]), np.array([20, 2, 3]), 3
    )
    assert d.tolist() == [P2PKH, P2SH, services.STYLE_UNSEEN]
