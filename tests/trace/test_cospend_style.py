"""Whether an exchange's batches spend its customers' deposit coins straight, a wallet-style
habit used only as a veto (issue 11, docs/design/trace.md "Co-spending as a habit"): an
exchange that co-spends its deposits with its hot coins is not one that forwards or sweeps
them to its hot wallet first (hard_cospend: cobalt and dunmore co-spend, arcadia and borealis
sweep and forward). The chain test builds its txs by hand (tests/trace/test_change_address_style
`Chain`); the rule tests set the styles by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from chainsleuth.trace import services
from tests.trace.test_change_address_style import Chain, Tx, styles_of_wallets


def _paying_wallets() -> services.WalletStyles:
    """Two wallets of 4 batches each, each batch spending the previous batch's change and the
    coins two customers paid to deposit addresses (each customer's payment pays its own change
    too): wallet 0 spends the deposit coins themselves, wallet 1 first forwards each (a
    send-all from the deposit address, its own cluster) to a fresh hot address and spends
    that; a third wallet's one batch spends a single coin paid with change (a cold wallet's
    refill, as arcadia's in hard_cospend), which is not co-spending."""
    c = Chain()
    wallets: list[list[int]] = [[], [], []]
    for w in range(3):
        start = c.fresh()
        wallets[w].append(start)
        coin = c.add(Tx([], [(start, 5_000_000)]))[0]
        for k in range(4 if w < 2 else 1):
            spent = []
            for j in range(2 if w < 2 else 1):
                funds = c.add(Tx([], [(c.fresh(), 900_000)]))[0]  # a customer's coin
                deposit = c.fresh()
                paid = c.add(Tx([funds], [(deposit, 300_000 + k), (c.fresh(), 590_000)]))[0]
                if w == 1:  # forwarded to the hot wallet first
                    hot = c.fresh()
                    wallets[w].append(hot)
                    paid = c.add(Tx([paid], [(hot, 299_000 + k + j)]))[0]
                elif w == 0:
                    wallets[w].append(deposit)  # co-spent with the hot coin: one cluster
                spent.append(paid)
            payees = [(c.fresh(), 10_000 + 1_000 * j) for j in range(6)]
            change = c.fresh()
            wallets[w].append(change)
            coin = c.add(Tx([coin, *spent], [*payees, (change, 4_000_000 - 10_000 * k)]))[-1]
    return styles_of_wallets(c, wallets)


def test_wallet_styles_count_batches_that_spend_deposit_coins() -> None:
    s = _paying_wallets()
    assert s.batches is not None and s.batches.tolist() == [4, 4, 1]
    assert s.cospend_batches is not None and s.cospend_batches.tolist() == [4, 0, 0]
    assert s.cospends(services.COSPEND_MIN_BATCHES).tolist() == [1, 0, -1]
    assert s.cospends(1).tolist() == [1, 0, 0]
    # too few batches to say, or both ways: not known
    assert s.cospends(5).tolist() == [-1, -1, -1]
    # co-spending in half its batches is the habit (a batch with no deposit waiting spends
    # hot coins alone); in a third, neither way
    half = replace(s, batches=np.array([8, 4, 1]))
    assert half.cospends(services.COSPEND_MIN_BATCHES).tolist() == [1, 0, -1]
    third = replace(s, batches=np.array([12, 4, 1]))
    assert third.cospends(services.COSPEND_MIN_BATCHES).tolist() == [-1, 0, -1]
    assert replace(s, cospend_batches=None).cospends(1).tolist() == [-1, -1, -1]


def test_one_deposit_payment_per_batch_is_not_co_spending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with one payment enough, the refilled wallet's batch would read co-spending
    monkeypatch.setattr(services, "COSPEND_MIN_DEPOSITS", 1)
    s = _paying_wallets()
    assert s.cospend_batches is not None and s.cospend_batches.tolist() == [4, 0, 1]


HOT, FINGERPRINT, DEPOSIT = 3, 1, 2


def _styles(batches: list[int], cospend: list[int]) -> services.WalletStyles:
    """Groups of one hot type, fingerprint, deposit type and change position (elsewhere, 40
    batches), batches and co-spending batches counted as given."""
    n = len(batches)
    return services.WalletStyles(
        hot=np.full(n, HOT, np.int64),
        fingerprint=np.full(n, FINGERPRINT, np.int64),
        deposit=np.full(n, DEPOSIT, np.int64),
        change_last=np.zeros(n, np.int64),
        change_elsewhere=np.full(n, 40, np.int64),
        coinbase=np.zeros(n, np.bool_),
        batches=np.array(batches, np.int64),
        cospend_batches=np.array(cospend, np.int64),
    )


# named 0 co-spends (40 of 40 batches), named 1 is of another hot type; candidate 2 spent hot
# coins only in its one batch, 3 co-spent in its one, 4 paid no batch it was read from
BATCHES, COSPEND = [40, 40, 1, 1, 0], [40, 0, 0, 1, 0]


@pytest.fixture
def veto_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The veto on, a candidate's habit read from one batch (whatever the defaults)."""
    monkeypatch.setattr(services, "VETO_COSPEND", True)
    monkeypatch.setattr(services, "COSPEND_MIN_CANDIDATE", 1)


@pytest.mark.usefixtures("veto_on")
def test_a_match_whose_batches_contradict_its_wallet_is_dropped() -> None:
    s = replace(_styles(BATCHES, COSPEND), hot=np.array([HOT, HOT + 1, HOT, HOT, HOT]))
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [-1, 0, 0]


@pytest.mark.usefixtures("veto_on")
def test_without_the_veto_the_hot_coin_spender_takes_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "VETO_COSPEND", False)
    s = replace(_styles(BATCHES, COSPEND), hot=np.array([HOT, HOT + 1, HOT, HOT, HOT]))
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [0, 0, 0]


@pytest.mark.usefixtures("veto_on")
def test_a_named_wallet_read_on_too_few_batches_vetoes_nothing() -> None:
    # the named wallet co-spent in 2 batches (under `COSPEND_MIN_BATCHES`): its habit is not
    # known, and the candidate that spent hot coins only keeps the match
    s = replace(_styles([2, 40, 1], [2, 0, 0]), hot=np.array([HOT, HOT + 1, HOT]))
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [0]


@pytest.mark.usefixtures("veto_on")
def test_the_cospend_veto_never_names_a_group_it_would_not_name_without() -> None:
    # two named wallets alike in every other habit, one co-spending, the other not: as a veto
    # the habit does not pick between them, so no candidate is named
    s = _styles([40, 40, 1, 1, 0], [40, 0, 0, 1, 0])
    named, candidate = np.array([0, 1]), np.array([2, 3, 4])
    assert services.style_matches(s, named, candidate).tolist() == [-1, -1, -1]


@pytest.mark.usefixtures("veto_on")
def test_a_named_wallet_reads_its_habit_over_its_fragments_batches() -> None:
    # named 0's tags hold 1 batch (its co-spending batches sit in its deposit-spending
    # fragments, hard_cospend small 1 cobalt): unknown, it vetoes nothing; read over its
    # fragments' 31 batches too (30 co-spending) it co-spends, and the candidate that spent hot
    # coins only is dropped
    s = replace(_styles([1, 40, 1], [1, 0, 0]), hot=np.array([HOT, HOT + 1, HOT]))
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [0]
    s = replace(s, cospend_batches=np.array([31, 0, 0]), cospend_reads=np.array([32, 40, 1]))
    assert s.cospends(3).tolist() == [1, 0, -1]
    assert services.style_matches(s, np.array([0, 1]), np.array([2])).tolist() == [-1]
