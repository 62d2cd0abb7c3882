"""Orphan groups and a shuffled named wallet (issue 11, docs/design/trace.md "Orphan groups"):
a tagged wallet that puts its change elsewhere yet has put it last in a batch shuffles its
outputs, so its own fragments whose batches all put change last, more of them than the wallet
put it elsewhere, are no orphans and veto none of its matches
(`trace.services.style_orphan_vetoes`). A hand-built chain of four wallets
alike on hot type and fingerprint; the change counts and deposit type, which a sweep-free chain
cannot show, are set on its styles (as tests/trace/test_more_habits.py sets its counts)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from chainsleuth.trace import services
from tests.trace.test_more_habits import ROUND, PayChain, Tx

NAMED, CANDIDATE = np.array([0]), np.array([1, 2, 3])  # the tagged wallet; a fragment, 2 orphans
DEPOSIT_TYPE = 2


def _styles(last: list[int], elsewhere: list[int]) -> Any:
    """Four wallets of one hot type and fingerprint paying 4 batches each, with the change
    counts `last` and `elsewhere` per wallet and one deposit type."""
    c = PayChain()
    funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
    hot = [c.fresh() for _ in range(4)]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets = [[h] for h in hot]
    for w in range(4):
        c.pay(coins[w], wallets[w], 4, ROUND)
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    group = services.ClusterGroups.of(np.arange(1_000, 1_004), np.arange(4))
    fingerprint = np.ones(len(c.txs), np.int64)
    s = services.wallet_styles(c.store(), c.shapes(cluster_of), cluster_of, group, fingerprint)
    return replace(
        s,
        change_last=np.array(last, np.int64),
        change_elsewhere=np.array(elsewhere, np.int64),
        deposit=np.full(4, DEPOSIT_TYPE, np.int64),
    )


def _vetoed(last: list[int], elsewhere: list[int]) -> list[bool]:
    s = _styles(last, elsewhere)
    match = services.style_matches(s, NAMED, CANDIDATE)
    # the fragment (2 batches, change last: position not read) fits the tagged wallet on hot
    # type, fingerprint and deposit type; the 4-batch ones read "change last" and do not
    assert match.tolist() == [0, -1, -1]
    return services.style_orphan_vetoes(s, NAMED, CANDIDATE, match, 2).tolist()


def test_a_shuffled_named_wallet_is_not_ruled_out_by_change_last() -> None:
    # the tagged wallet: change elsewhere twice and last once (shuffled); its fragments' change
    # landed last in all their batches: they could be it, so they are no orphans
    assert _vetoed([1, 2, 4, 4], [2, 0, 0, 0]) == [False, False, False]


def test_a_wallet_that_never_puts_change_last_keeps_its_orphans() -> None:
    # change elsewhere in all 3 batches: the two change-last wallets are not it (orphans), and
    # the fragment that could be theirs as well stays unnamed
    assert _vetoed([0, 2, 4, 4], [3, 0, 0, 0]) == [True, False, False]


def test_a_shuffled_wallet_read_from_more_batches_keeps_its_orphans() -> None:
    # change elsewhere in 5 batches, last in 1: the fragments' 4 batches all last are fewer
    # than the wallet's 5 elsewhere, so they rule it out and stay orphans
    assert _vetoed([1, 2, 4, 4], [5, 0, 0, 0]) == [True, False, False]
