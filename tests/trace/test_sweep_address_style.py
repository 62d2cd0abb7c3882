"""Where an exchange's sweeps pay, a wallet-style habit (issue 11, docs/design/trace.md "Sweep
address as a habit"): an exchange that reuses its hot addresses sweeps its deposits into a few
of them again and again, one that never reuses an address takes a fresh hot address per
sweep. Two exchanges alike in every batch habit (realistic small 12) are told apart by it.
The chain test builds its sweeps by hand (address ids in order of first appearance, as the
store gives them); the rule tests set the styles by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chainsleuth.trace import services
from tests.trace.test_change_address_style import Chain, Tx


def _sweeping_wallets() -> services.WalletStyles:
    """Two wallets of 4 sweeps each, every sweep taking 3 deposits of their own: wallet 0
    sweeps into its one hot address (fresh the first time, paid before the other three),
    wallet 1 into a fresh address each time."""
    c = Chain()
    wallets: list[list[int]] = [[], []]
    hot: int | None = None
    for w in range(2):
        for _ in range(4):
            deposits = [c.fresh() for _ in range(3)]
            wallets[w].extend(deposits)
            coins = c.add(Tx([], [(a, 50_000) for a in deposits]))  # customers pay them
            # ids in order of first appearance: the hot address gets its id at its first sweep
            into = c.fresh() if w == 1 or hot is None else hot
            if w == 0:
                hot = into
            wallets[w].append(into)
            c.add(Tx(coins, [(into, 140_000)]))
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    group = services.ClusterGroups.of(np.array([1_000, 1_001]), np.array([0, 1]))
    fingerprint = np.ones(len(c.txs), np.int64)
    return services.wallet_styles(c.store(), c.shapes(cluster_of), cluster_of, group, fingerprint)


def test_wallet_styles_count_sweeps_into_fresh_and_reused_addresses() -> None:
    s = _sweeping_wallets()
    assert s.deposit_reads is not None and s.deposit_reads.tolist() == [4, 4]
    assert s.sweep_fresh is not None and s.sweep_reused is not None
    assert s.sweep_fresh.tolist() == [1, 4]
    assert s.sweep_reused.tolist() == [3, 0]
    # named thresholds: 2 one way and 10 times the other; a candidate's: one sweep
    assert s.sweep_address(services.STYLE_MIN_CHANGE_ADDRESS).tolist() == [-1, 1]
    assert s.sweep_address(1).tolist() == [-1, 1]
    many = replace(s, sweep_fresh=np.array([1, 4]), sweep_reused=np.array([12, 0]))
    assert many.sweep_address(services.STYLE_MIN_CHANGE_ADDRESS).tolist() == [0, 1]
    assert replace(s, sweep_fresh=None).sweep_address(1).tolist() == [-1, -1]


HOT, FINGERPRINT, DEPOSIT = 3, 1, 2


def _styles(fresh: list[int], reused: list[int]) -> services.WalletStyles:
    """Groups of one hot type, fingerprint, deposit type and change position (elsewhere, 40
    batches), sweeps counted as given."""
    n = len(fresh)
    same = np.full(n, 0, np.int64)
    return services.WalletStyles(
        hot=np.full(n, HOT, np.int64),
        fingerprint=np.full(n, FINGERPRINT, np.int64),
        deposit=np.full(n, DEPOSIT, np.int64),
        change_last=same,
        change_elsewhere=np.full(n, 40, np.int64),
        coinbase=np.zeros(n, np.bool_),
        sweep_fresh=np.array(fresh, np.int64),
        sweep_reused=np.array(reused, np.int64),
    )


def test_a_match_whose_sweeps_contradict_its_wallet_is_dropped() -> None:
    # named 0 sweeps into reused hot addresses, named 1 is of another hot type; candidate 2
    # swept once into a fresh address, 3 once into a reused one, 4 never swept
    s = _styles([1, 0, 1, 0, 0], [12, 0, 0, 1, 0])
    s = replace(s, hot=np.array([HOT, HOT + 1, HOT, HOT, HOT]))
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [-1, 0, 0]


def test_without_the_veto_the_fresh_sweeper_takes_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "VETO_SWEEP_ADDRESS", False)
    s = _styles([1, 0, 1, 0, 0], [12, 0, 0, 1, 0])
    s = replace(s, hot=np.array([HOT, HOT + 1, HOT, HOT, HOT]))
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [0, 0, 0]


def test_the_sweep_veto_never_names_a_group_it_would_not_name_without() -> None:
    # two named wallets alike in every batch habit, one sweeping into reused hot addresses,
    # the other into fresh ones: as a veto the habit does not pick between them (an untagged
    # look-alike of either would take the other's name: hard small 12), so no candidate is
    # named; as a habit that rules out (`FIT_SWEEP_ADDRESS`) it does
    s = _styles([1, 12, 1, 0, 0], [12, 0, 0, 1, 0])
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [-1, -1, -1]


def test_as_a_habit_that_rules_out_it_picks_between_look_alikes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "FIT_SWEEP_ADDRESS", True)
    s = _styles([1, 12, 1, 0, 0], [12, 0, 0, 1, 0])
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [1, 0, -1]


def test_two_matches_that_sweep_differently_contest_the_name() -> None:
    # the named wallet swept too little to show the habit (one sweep): both candidates match
    # it; one sweeps into fresh addresses, the other into reused ones, so they cannot both be
    # it, and its one fresh sweep settles it for the fresh one
    s = _styles([1, 0, 6, 1], [0, 0, 0, 30])
    named, candidate = np.array([0, 1]), np.array([2, 3])
    s = replace(s, hot=np.array([HOT, HOT + 1, HOT, HOT]))
    match = services.style_matches(s, named, candidate)
    assert match.tolist() == [0, 0]
    assert services.style_rival_vetoes(s, candidate, match, 1).tolist() == [False, True]


def test_without_the_rival_habit_neither_match_is_contested(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "RIVAL_SWEEP_ADDRESS", False)
    s = _styles([1, 0, 6, 1], [0, 0, 0, 30])
    s = replace(s, hot=np.array([HOT, HOT + 1, HOT, HOT]))
    named, candidate = np.array([0, 1]), np.array([2, 3])
    match = services.style_matches(s, named, candidate)
    assert services.style_rival_vetoes(s, candidate, match, 1).tolist() == [False, False]
