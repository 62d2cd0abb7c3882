"""More wallet habits (issue 11, docs/investigations.md "More wallet habits (2026-12-07)"):
round payment amounts (an exchange that sends what was asked for sends round amounts, one
that takes its fee out of the amount sent does not), and the batch and sweep cadence (the gaps
between a wallet's batches, or sweeps, are multiples of the blocks it waits). Each only rules a
tagged wallet out. Small chains built by hand (every tx, output and value spelled out, at the
heights given), and style arrays built by hand for the sweeps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from chainsleuth.trace import services
from tests.trace.test_change_address_style import Chain, Tx

NAMED, CANDIDATE = np.array([0, 1]), np.array([2])


class HeightChain(Chain):
    """A `Chain` whose txs sit at the heights given (`at`), one block after another else."""

    def __init__(self) -> None:
        super().__init__()
        self.heights: list[int] = []

    def add(self, tx: Any, at: int | None = None) -> list[int]:
        self.heights.append(at if at is not None else (self.heights[-1] + 1 if self.heights else 0))
        return super().add(tx)

    def store(self) -> Any:
        store = super().store()
        store.graph.tx_height = np.array(self.heights, np.int32)
        return store

    def pay(self, coin: int, wallet: list[int], n: int, amount: int, every: int = 1) -> None:
        """`n` batches of 6 fresh payees of `amount` each from `coin`, `every` blocks apart,
        each batch's change (last) to a fresh address the next batch spends."""
        value = 100_000_000
        height = self.heights[-1]
        for _ in range(n):
            value -= 6 * amount + 1_000
            height += every
            payees = [(self.fresh(), amount) for _ in range(6)]
            change = self.fresh()
            out = self.add(Tx([coin], [*payees, (change, value)]), at=height)
            coin = out[-1]
            wallet.append(change)


def _world(amounts: tuple[int, int, int], every: tuple[int, int, int], n: int = 9) -> Any:
    """Three wallets alike on every habit the older rules read (hot type, fingerprint, change
    last, fresh change): wallets 0 and 1 named, 2 untagged, each paying `n` batches of its
    `amounts[w]` per payee, `every[w]` blocks apart. Returns their styles."""
    c = HeightChain()
    funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
    hot = [c.fresh() for _ in range(3)]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets: list[list[int]] = [[hot[0]], [hot[1]], [hot[2]]]
    for w in range(3):
        c.pay(coins[w], wallets[w], n, amounts[w], every[w])
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    return services.wallet_styles(c.store(), c.shapes(cluster_of), cluster_of, group, fingerprint)


ROUND, DEDUCTED = 1_000_000, 950_000  # 0.01 BTC asked for, sent whole or less a 0.0005 fee


def test_round_amounts_tell_apart_two_named_wallets_of_one_style() -> None:
    s = _world((ROUND, DEDUCTED, ROUND), (1, 1, 1))
    assert s.payments is not None and s.round_payments is not None
    # 9 batches of 6 payees; the last change, spent by no batch, counts as a payment
    assert s.payments.tolist() == [55, 55, 55]
    assert s.round_payments.tolist() == [54, 0, 54]
    assert s.rounds(services.STYLE_MIN_PAYMENTS, services.STYLE_MIN_ROUND).tolist() == [1, 0, 1]
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [0]
    # without the habit both named wallets stay compatible: neither lends
    bare = replace(s, payments=None, round_payments=None)
    assert services.style_matches(bare, NAMED, CANDIDATE).tolist() == [-1]


def test_the_round_habit_needs_enough_payments_and_is_no_evidence_of_its_own() -> None:
    s = _world((ROUND, DEDUCTED, ROUND), (1, 1, 1))
    # a named wallet with too few payments is not known: compatible with everything
    few = replace(s, payments=np.array([55, 30, 55]), round_payments=np.array([54, 0, 54]))
    assert services.style_matches(few, NAMED, CANDIDATE).tolist() == [-1]
    # a candidate with 2 round payments of 20 is not known either
    two = replace(s, payments=np.array([55, 55, 20]), round_payments=np.array([54, 0, 2]))
    assert services.style_matches(two, NAMED, CANDIDATE).tolist() == [-1]
    # between the thresholds (a 5% round share) a named wallet is not known
    mid = replace(s, payments=np.array([55, 100, 55]), round_payments=np.array([54, 5, 54]))
    assert services.style_matches(mid, NAMED, CANDIDATE).tolist() == [-1]
    # the habit alone, without the change position or deposit type shown: no match
    blind = replace(s, change_last=np.array([8, 8, 0]))
    assert services.style_matches(blind, NAMED, CANDIDATE).tolist() == [-1]


def test_the_batch_cadence_tells_apart_two_named_wallets_of_one_style() -> None:
    # named 0 batches every 2 blocks, named 1 and the candidate every block
    s = _world((ROUND, ROUND, ROUND), (2, 1, 1))
    assert s.batch_cadence is not None
    assert s.batch_cadence[:, 0].tolist() == [8, 8, 8]  # gaps between 9 batch heights
    unit = services.WalletStyles.cadence_unit(s.batch_cadence, services.STYLE_MIN_GAPS)
    assert unit.tolist() == [2, 1, 1]
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [1]
    bare = replace(s, batch_cadence=None)
    assert services.style_matches(bare, NAMED, CANDIDATE).tolist() == [-1]


def test_a_named_unit_rules_out_only_a_candidate_whose_gaps_break_it() -> None:
    # a candidate batching every 4 blocks fits a wallet of every 2 (a fragment of its batches)
    s = _world((ROUND, ROUND, ROUND), (2, 1, 4))
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [-1]
    # a named wallet of unit 1 rules out nothing, whatever the candidate's gaps
    s = _world((ROUND, ROUND, ROUND), (1, 1, 2))
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [-1]


def test_cadence_counts_gaps_between_distinct_heights_and_tolerates_a_stray() -> None:
    group = np.array([0, 0, 0, 0, 1, 1, 1], np.int64)
    height = np.array([10, 14, 14, 6, 3, 4, 9], np.int64)  # unsorted, one height twice
    c = services._cadence(group, height, 2)
    units = services.STYLE_UNITS.tolist()
    assert c[:, 0].tolist() == [2, 2]  # gaps 4, 4 and 1, 5
    assert c[0, 1 + units.index(4)] == 2 and c[1, 1 + units.index(2)] == 0
    # 19 gaps of 6 and one stray gap of 1: still a unit of 6 (95%)
    heights = np.concatenate([np.arange(20) * 6, [115]])
    one = services._cadence(np.zeros(21, np.int64), heights, 1)
    assert services.WalletStyles.cadence_unit(one, services.STYLE_MIN_GAPS).tolist() == [6]
    # 7 gaps, all multiples of every unit: too few for a named wallet
    seven = np.array([[7] * (1 + services.STYLE_UNITS.shape[0])], np.int64)
    assert services.WalletStyles.cadence_unit(seven, services.STYLE_MIN_GAPS).tolist() == [-1]


def test_the_sweep_cadence_rules_out_a_named_wallet() -> None:
    s = _world((ROUND, ROUND, ROUND), (1, 1, 1))
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [-1]
    # named 0 sweeps every 5 blocks, named 1 every 7; the candidate's 3 sweeps 7 and 14 apart
    group = np.array([0] * 10 + [1] * 10 + [2] * 3, np.int64)
    height = np.concatenate([np.arange(10) * 5 + 2, np.arange(10) * 7 + 3, [10, 17, 31]])
    sweeps = replace(s, sweep_cadence=services._cadence(group, height, 3))
    assert services.style_matches(sweeps, NAMED, CANDIDATE).tolist() == [1]
    # one gap is too few to rule out
    one = replace(s, sweep_cadence=services._cadence(group[:-1], height[:-1], 3))
    assert services.style_matches(one, NAMED, CANDIDATE).tolist() == [-1]
