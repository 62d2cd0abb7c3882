"""Contested style names (issue 11, docs/design/trace.md "Contested style names"): two groups
matched to one named wallet that differ in a habit the wallet does not show cannot both be it
(`trace.services.style_rival_vetoes`). The styles are set by hand: group 0 is the tagged
wallet (hot type, fingerprint and deposit type shown; its change position and address read
from too few batches), group 1 another tagged wallet of another hot type, and the candidates
are fragments of the first's hot type and fingerprint."""

from __future__ import annotations

import dataclasses

import numpy as np

from chainsleuth.trace import services

NAMED = np.array([0, 1])


def ints(values: list[int]) -> np.ndarray:
    return np.array(values, np.int64)


HOT, OTHER_HOT, FINGERPRINT, DEPOSIT = 3, 4, 1, 2


def _styles(
    rows: list[tuple[int, int, int, int]], named_fresh: int = 0, signers: list[int] | None = None
) -> services.WalletStyles:
    """The two named wallets, then one candidate per row (change last, change elsewhere,
    fresh change, reused change). The tagged wallet put its change last in 1 batch (the tag
    thresholds need 3) and to a fresh address in `named_fresh`. `signers`: the candidates'
    fingerprints (default all the tagged wallet's)."""
    last = [1, 0] + [r[0] for r in rows]
    elsewhere = [0, 0] + [r[1] for r in rows]
    fresh = [named_fresh, 0] + [r[2] for r in rows]
    reused = [0, 0] + [r[3] for r in rows]
    n = len(last)
    hot = np.full(n, HOT, np.int64)
    hot[1] = OTHER_HOT

    return services.WalletStyles(
        hot=hot,
        fingerprint=ints([FINGERPRINT, FINGERPRINT] + (signers or [FINGERPRINT] * len(rows))),
        deposit=np.full(n, DEPOSIT, np.int64),
        change_last=ints(last),
        change_elsewhere=ints(elsewhere),
        coinbase=np.zeros(n, np.bool_),
        change_fresh=ints(fresh),
        change_reused=ints(reused),
    )


def _vetoed(
    rows: list[tuple[int, int, int, int]],
    named_fresh: int = 0,
    signers: list[int] | None = None,
    ratio: int = services.STYLE_HABIT_RATIO,
) -> list[bool]:
    s = _styles(rows, named_fresh, signers)
    candidate = np.arange(2, 2 + len(rows))
    match = services.style_matches(s, NAMED, candidate)
    # every candidate fits the tagged wallet alone: what it does not show rules nothing out
    assert match.tolist() == [0] * len(rows)
    return services.style_rival_vetoes(s, candidate, match, 1, ratio).tolist()


# a fragment whose change goes last to fresh addresses, one whose change goes elsewhere to
# reused addresses (an untagged exchange that reuses them), and a thin one that shows neither
LAST_FRESH, ELSEWHERE_REUSED, THIN = (6, 0, 6, 0), (3, 40, 0, 43), (0, 0, 0, 0)


def test_two_matches_that_differ_in_a_habit_leave_the_name_unlent() -> None:
    # which of the two is the tagged wallet the chain does not say: no match is named, the
    # thin fragment (either's) neither
    assert _vetoed([LAST_FRESH, ELSEWHERE_REUSED, THIN]) == [True, True, True]


def test_the_named_wallets_own_batch_settles_the_contest() -> None:
    # the tagged wallet sent its change to a fresh address once (a candidate's threshold): the
    # fragment with reused change is the rival, the others keep the name
    assert _vetoed([LAST_FRESH, ELSEWHERE_REUSED, THIN], named_fresh=1) == [False, True, False]


def test_one_group_that_ten_contradict_is_the_rival() -> None:
    # ten fragments with fresh change against one group with reused change: the one is the
    # rival (at the function's default ratio, STYLE_HABIT_RATIO 10), the ten and the thin
    # fragment keep the name
    rows = [LAST_FRESH] * 10 + [ELSEWHERE_REUSED, THIN]
    assert _vetoed(rows) == [False] * 10 + [True, False]
    # nine against one: which is the wallet the chain does not say
    assert _vetoed(rows[1:]) == [True] * 11
    # at the ratio the case passes (cases.investigate.RIVAL_RATIO, 5), five against one settle it
    assert _vetoed(rows[5:], ratio=5) == [False] * 5 + [True, False]


def test_matches_that_agree_are_named() -> None:
    assert _vetoed([LAST_FRESH, LAST_FRESH, THIN]) == [False, False, False]


def test_a_habit_shown_below_the_tag_thresholds_contests_nothing() -> None:
    # one batch with change elsewhere is enough for the match's read, not for a rival
    assert _vetoed([LAST_FRESH, (0, 1, 1, 0), THIN]) == [False, False, False]


def test_groups_of_two_signers_are_not_rivals() -> None:
    # a wallet whose signing software changed matches fragments of both periods (read per
    # period, `_period_compatible`), and may change other habits with it: only groups that read
    # the same software contest a name (the match is given: this test reads no periods)
    s = _styles([LAST_FRESH, ELSEWHERE_REUSED, THIN], signers=[FINGERPRINT, 5, FINGERPRINT])
    candidate, match = np.arange(2, 5), np.zeros(3, np.int64)
    assert services.style_rival_vetoes(s, candidate, match, 1).tolist() == [False] * 3
    # the same three with one signer contest it
    s = _styles([LAST_FRESH, ELSEWHERE_REUSED, THIN])
    assert services.style_rival_vetoes(s, candidate, match, 1).tolist() == [True] * 3


def _round_vetoed(named_payments: int, named_round: int, seen: int) -> list[bool]:
    """Six fragments with fresh change last, three of which pay no round amounts, three a half
    of theirs round, and a thin one; the tagged wallet paid `named_payments` (`named_round`
    round) in its one batch, too few for the lenient read (`STYLE_MIN_PAYMENTS_SEEN`)."""
    rows = [LAST_FRESH] * 6 + [THIN]
    s = dataclasses.replace(
        _styles(rows),
        payments=ints([named_payments, 0] + [60] * 6 + [0]),
        round_payments=ints([named_round, 0] + [0] * 3 + [30] * 3 + [0]),
    )
    candidate = np.arange(2, 2 + len(rows))
    match = services.style_matches(s, NAMED, candidate)
    assert match.tolist() == [0] * len(rows)
    old = services.RIVAL_ROUNDS_SEEN
    services.RIVAL_ROUNDS_SEEN = seen
    try:
        return services.style_rival_vetoes(s, candidate, match, 1, 5).tolist()
    finally:
        services.RIVAL_ROUNDS_SEEN = old


def test_the_named_wallets_few_payments_settle_a_round_amount_contest() -> None:
    assert services.STYLE_MIN_PAYMENTS_SEEN > 13 >= services.RIVAL_ROUNDS_SEEN
    # 13 payments, none round: the round-amount fragments are the rivals, the round-free ones
    # keep the name, and the thin one (either's) stays unnamed
    assert _round_vetoed(13, 0, 10) == [False] * 3 + [True] * 4
    # read from fewer payments than that, or with the widened read off, three against three
    # settle nothing: every match stays unnamed
    assert _round_vetoed(9, 0, 10) == [True] * 7
    assert _round_vetoed(13, 0, 0) == [True] * 7
