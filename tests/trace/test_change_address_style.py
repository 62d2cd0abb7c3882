"""Fresh or reused change addresses, a wallet-style habit (issue 11, docs/investigations.md
"Fresh or reused change addresses"): an exchange that never reuses an address pays each
batch's change to an address first seen there, one that reuses its hot addresses pays it back
to one of them. Two tagged wallets that share every other habit are told apart by it, and an
untagged service takes the name of the one whose change habit it shares
(`trace.services.wallet_styles`, `style_matches`). Small chains built by hand: every tx, input,
output and value is spelled out; address ids are given in order of first appearance, as the
store gives them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from chainsleuth.trace import services
from tests.trace.hand_shapes import HandChain, hand_shapes, hand_vsizes

P2WPKH = 4


@dataclass
class Tx:
    inputs: list[int]  # output ids it spends
    outputs: list[tuple[int, int]]  # (address id, value)


class Chain(HandChain):
    """Txs and a counter of address ids in order of first appearance."""

    def __init__(self) -> None:
        super().__init__()
        self.next_address = 0

    def fresh(self) -> int:
        self.next_address += 1
        return self.next_address - 1

    def store(self) -> Any:
        first_input = np.cumsum([0] + [len(t.inputs) for t in self.txs])[:-1].astype(np.int64)
        n_outputs = sum(len(t.outputs) for t in self.txs)
        return SimpleNamespace(
            tx_vsizes=hand_vsizes,
            graph=SimpleNamespace(
                tx_first_input=first_input,
                input_spent_output=np.array([o for t in self.txs for o in t.inputs], np.int64),
                output_script_type=np.full(n_outputs, P2WPKH, np.uint8),
                block_time=np.zeros(1, np.uint32),  # one block: the habits read pooled
            ),
        )

    def shapes(self, cluster_of: np.ndarray) -> services.TxShapes:
        return hand_shapes(
            [t.inputs for t in self.txs],
            [[a for a, _ in t.outputs] for t in self.txs],
            [[v for _, v in t.outputs] for t in self.txs],
            [False] * len(self.txs),
            cluster_of,
        )

    def batches(self, coin: int, wallet: list[int], n: int, reuse: int | None = None) -> None:
        """`n` batches paying 6 fresh payees each from `coin`, each batch's change (last) to
        the address `reuse` or else to a fresh one, which the next batch spends; the change
        addresses join `wallet`."""
        value = 1_000_000
        for _ in range(n):
            value -= 7_000
            payees = [(self.fresh(), 1_000) for _ in range(6)]
            address = self.fresh() if reuse is None else reuse
            out = self.add(Tx([coin], [*payees, (address, value)]))
            coin = out[-1]
            wallet.append(address)


def three_wallet_styles(c: Chain, pay: Callable[[int, list[int], int], None]) -> Any:
    """Three wallets of 1 BTC each (0 and 1 to be named, 2 untagged), each paying its batches by
    `pay(coin, wallet, w)`, which appends the wallet's change addresses to `wallet`; their styles
    as `services.wallet_styles` reads them (one signing fingerprint for every tx)."""
    funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
    hot = [c.fresh() for _ in range(3)]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets: list[list[int]] = [[hot[0]], [hot[1]], [hot[2]]]
    for w in range(3):
        pay(coins[w], wallets[w], w)
    return styles_of_wallets(c, wallets)


def styles_of_wallets(c: Chain, wallets: list[list[int]]) -> services.WalletStyles:
    """`services.wallet_styles` of three wallets (`wallets[w]`: wallet w's addresses), each its
    own cluster (1000 + w) and group w, one signing fingerprint for every tx."""
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    return services.wallet_styles(c.store(), c.shapes(cluster_of), cluster_of, group, fingerprint)


def _world() -> tuple[Chain, np.ndarray]:
    """Three wallets of one hot type, fingerprint and change position (last), each paying 4
    chained batches: wallet 0 (named) pays its change back to its one hot address; wallet 1
    (named) and wallet 2 (untagged) to a fresh address each time."""
    c = Chain()
    funder = c.add(Tx([], [(c.fresh(), 4_000_000)]))  # a coinbase, then its miner pays them
    hot = [c.fresh() for _ in range(3)]
    coins = c.add(Tx(funder, [(a, 1_000_000) for a in hot]))
    wallets: list[list[int]] = [[hot[0]], [hot[1]], [hot[2]]]
    c.batches(coins[0], wallets[0], 4, reuse=hot[0])
    c.batches(coins[1], wallets[1], 4)
    c.batches(coins[2], wallets[2], 4)
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    return c, cluster_of


def _styles(c: Chain, cluster_of: np.ndarray) -> services.WalletStyles:
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    return services.wallet_styles(c.store(), c.shapes(cluster_of), cluster_of, group, fingerprint)


def test_wallet_styles_count_fresh_and_reused_change_addresses() -> None:
    c, cluster_of = _world()
    s = _styles(c, cluster_of)
    # each wallet's last change is spent by no batch: 3 changes of 4 batches counted
    assert s.change_fresh is not None and s.change_reused is not None
    assert s.change_fresh.tolist() == [0, 3, 3]
    assert s.change_reused.tolist() == [3, 0, 0]
    assert s.change_last.tolist() == [3, 3, 3]
    assert s.change_address(services.STYLE_MIN_CHANGE_ADDRESS).tolist() == [0, 1, 1]


def test_the_change_habit_tells_apart_two_named_wallets_of_one_style() -> None:
    c, cluster_of = _world()
    s = _styles(c, cluster_of)
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [1]
    # without the habit both named wallets are compatible: neither lends
    blind = replace(s, change_fresh=None, change_reused=None)
    assert services.style_matches(blind, np.array([0, 1]), np.array([2])).tolist() == [-1]


def test_the_change_habit_is_no_evidence_of_its_own_and_needs_a_clear_majority() -> None:
    c, cluster_of = _world()
    s = _styles(c, cluster_of)
    # a candidate showing one fresh and one reused change: not known, both stay compatible
    mixed = replace(
        s,
        change_fresh=np.array([0, 3, 1]),
        change_reused=np.array([3, 0, 1]),
    )
    assert services.style_matches(mixed, np.array([0, 1]), np.array([2])).tolist() == [-1]
    # a named wallet that reuses a few hot addresses shows each fresh once: still "reused"
    few = replace(s, change_fresh=np.array([2, 3, 3]), change_reused=np.array([40, 0, 0]))
    assert few.change_address(services.STYLE_MIN_CHANGE_ADDRESS).tolist() == [0, 1, 1]
    assert services.style_matches(few, np.array([0, 1]), np.array([2])).tolist() == [1]
    # the habit alone, without the change position or deposit type shown: no match
    bare = replace(s, change_last=np.array([3, 3, 0]))
    assert services.style_matches(bare, np.array([0, 1]), np.array([2])).tolist() == [-1]
