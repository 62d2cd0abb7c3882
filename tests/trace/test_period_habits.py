"""Wallet habits read per period (`trace.services.wallet_styles` with `period_months`,
`PeriodStyles`; docs/design/trace.md "Habits per period"): a wallet's software changes over the
years (on the real blocks Binance sorted its outputs in 2017 and not in 2018), and a habit read
over the whole chain takes the majority era's. A tagged wallet is ruled out only by what it
showed in a window the candidate was active in. Chains built by hand (`SizedChain`), each tx at
its own height, the block times given per tx."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from chainsleuth.trace import services
from tests.trace.test_signing_habits import FRACTIONAL, SizedChain, Tx

NAMED, CANDIDATE = np.array([0, 1]), np.array([2])
AUG_2017, MAR_2018, NOV_2018 = 1_501_545_600, 1_519_862_400, 1_541_030_400


class TimedChain(SizedChain):
    """A `SizedChain` whose txs each sit in a block of their own, at the times `times` says."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[int] = []

    def at(self, time: int, pay: Any) -> None:
        """Runs `pay()` and gives every tx it added block time `time`."""
        before = len(self.txs)
        pay()
        self.times += [time] * (len(self.txs) - before)

    def store(self) -> Any:
        store = super().store()
        n = len(self.txs)
        store.graph = SimpleNamespace(**{
            **vars(store.graph),
            "tx_height": np.arange(n, dtype=np.int32),
            "block_time": np.array(self.times, np.uint32),
        })  # fmt: skip
        return store

    def last_change(self) -> int:
        """The output id of the last tx's change (its last output)."""
        return sum(len(t.outputs) for t in self.txs) - 1


def _styles(
    switch: bool, b_hot_elsewhere: bool = False, candidate_time: int = MAR_2018, months: int = 6
) -> Any:
    """Wallet 0 (named) pays 30 batches sorted by value (BIP69) in Aug 2017, then, if `switch`,
    3 unsorted ones in Mar 2018 (new software); wallet 1 (named) 20 unsorted in Mar 2018;
    wallet 2 (untagged: wallet 0's fragment after the switch) 4 unsorted at `candidate_time`.
    Every other habit alike (hot type, fingerprint, change last, fresh change, fee), unless
    `b_hot_elsewhere`: wallet 1's batches spend coins of another script type (read here as a
    second fingerprint, the hand store's script types being one)."""
    c = TimedChain()
    wallets: list[list[int]] = [[], [], []]

    def setup() -> list[int]:
        funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
        hot = [c.fresh() for _ in range(3)]
        for w in range(3):
            wallets[w].append(hot[w])
        return c.add(Tx(funder, [(a, 100_000_000) for a in hot]))

    coins: list[int] = []
    c.at(AUG_2017, lambda: coins.extend(setup()))
    c.at(AUG_2017, lambda: c.pay(coins[0], wallets[0], 30, True, FRACTIONAL))
    if switch:
        last = c.last_change()
        c.at(MAR_2018, lambda: c.pay(last, wallets[0], 3, False, FRACTIONAL))
    c.at(MAR_2018, lambda: c.pay(coins[1], wallets[1], 20, False, FRACTIONAL))
    c.at(candidate_time, lambda: c.pay(coins[2], wallets[2], 4, False, FRACTIONAL))
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    group = services.ClusterGroups.of(np.array([1_000, 1_001, 1_002]), np.array([0, 1, 2]))
    fingerprint = np.ones(len(c.txs), np.int64)
    if b_hot_elsewhere:
        first_b = 2 + 30 + (3 if switch else 0)
        fingerprint[first_b : first_b + 20] = 2
    store = c.store()
    return services.wallet_styles(
        store, c.shapes(cluster_of), cluster_of, group, fingerprint, period_months=months
    )


def test_block_periods_are_calendar_half_years() -> None:
    windows = services.block_periods(np.array([AUG_2017, 1_514_764_799, 1_514_764_800]), 6)
    # Aug 2017 and 31 Dec 2017 in 2017 H2; 1 Jan 2018 in 2018 H1
    assert windows.tolist() == [95, 95, 96]


def test_pooled_majority_names_the_wrong_wallet_and_the_period_read_does_not() -> None:
    pooled = _styles(switch=True, months=0)
    assert pooled.periods is None
    # wallet 0 reads "sorted" over the chain (30 sorted vs 3 unsorted, the 10x majority)
    order = services.style_habits(pooled, NAMED)[services.STYLE_HABITS.index("output_order")]
    assert order.tolist() == [1, 0]
    # so its own unsorted fragment rules it out, and wallet 1 alone is compatible: wrong name
    assert services.style_matches(pooled, NAMED, CANDIDATE).tolist() == [1]
    period = _styles(switch=True)
    assert period.periods is not None
    # per window, wallet 0 was unsorted in 2018 H1, where the fragment paid: both named wallets
    # stay compatible and neither is named (the look-alikes' rule), not the wrong one
    compatible, _evidence = services.style_compatible(period, NAMED, CANDIDATE)
    assert compatible.tolist() == [[True, True]]
    assert services.style_matches(period, NAMED, CANDIDATE).tolist() == [-1]


def test_the_period_read_names_the_right_wallet_where_the_pooled_read_names_none() -> None:
    # wallet 1 signs differently: ruled out either way. Pooled, wallet 0 is ruled out too
    # (its 2017 majority): nothing is named; per window it is the one compatible wallet
    pooled = _styles(switch=True, b_hot_elsewhere=True, months=0)
    assert services.style_matches(pooled, NAMED, CANDIDATE).tolist() == [-1]
    period = _styles(switch=True, b_hot_elsewhere=True)
    assert services.style_matches(period, NAMED, CANDIDATE).tolist() == [0]


def test_no_shared_window_with_a_wallet_that_changed_is_no_evidence_either_way() -> None:
    # the fragment pays in 2018 H2, where wallet 0 paid nothing: wallet 0 changed its order
    # between its windows, so nothing of it rules the fragment in or out
    period = _styles(switch=True, b_hot_elsewhere=True, candidate_time=NOV_2018)
    compatible, evidence = services.style_compatible(period, NAMED, CANDIDATE)
    assert compatible[0, 0] and not evidence[0, 0]
    assert services.style_matches(period, NAMED, CANDIDATE).tolist() == [-1]
    pooled = _styles(switch=True, b_hot_elsewhere=True, candidate_time=NOV_2018, months=0)
    assert not services.style_compatible(pooled, NAMED, CANDIDATE)[0][0, 0]


@pytest.mark.parametrize("candidate_time", [MAR_2018, NOV_2018])
def test_a_wallet_that_never_changed_reads_as_pooled(candidate_time: int) -> None:
    # no switch: wallet 0 sorts in every window it paid in, and its habits carry into the
    # fragment's windows (shared or not): the same answers as the pooled read
    period = _styles(switch=False, b_hot_elsewhere=True, candidate_time=candidate_time)
    pooled = _styles(switch=False, b_hot_elsewhere=True, candidate_time=candidate_time, months=0)
    assert period.periods is not None
    for a, b in zip(services.style_compatible(period, NAMED, CANDIDATE),
                    services.style_compatible(pooled, NAMED, CANDIDATE), strict=True):  # fmt: skip
        assert a.tolist() == b.tolist()


def test_one_window_is_the_pooled_read() -> None:
    # a chain within one half-year: no per-period read at all
    s = _styles(switch=True, months=120)
    assert s.periods is None
