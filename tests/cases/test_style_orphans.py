"""Orphan groups (issue 11, docs/design/trace.md "Orphan groups"): a fragment of an untagged
exchange that shows none of the habits its other fragments differ in takes no tagged
look-alike's name when two of those fragments (orphans: service wallets whose habits rule out
every named one) could be its wallet as well (`trace.services.style_orphan_vetoes`,
`cases.investigate._lend_by_style`). Small chains built by hand: every tx, output and value is
spelled out."""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.cases import investigate
from chainsleuth.cases.investigate import _lend_by_style
from chainsleuth.cases.rows import UNIDENTIFIED_SERVICE
from tests.trace.test_more_habits import DEDUCTED, ROUND, PayChain, Tx

TAGGED, FRAGMENT, OWN = 1_000, 1_001, 1_002  # arcadia (tagged), the untagged exchange's, arcadia's
ORPHANS = (1_003, 1_004)


def _lend(batches: list[tuple[int, int]]) -> tuple[list[int], dict[int, tuple[str | None, str]]]:
    """Wallets alike on hot type, fingerprint, change last and fresh change, wallet w paying
    `batches[w]` = (batches of 6 payees, two of them round where negative; amount): 0 arcadia (tagged), the rest untagged
    services (clusters 1_001...). Returns `_lend_by_style`'s clusters named and the
    attribution after it."""
    c = PayChain()
    funder = c.add(Tx([], [(c.fresh(), 100_000_000 * len(batches))]))
    hot = [c.fresh() for _ in batches]
    coins = c.add(Tx(funder, [(a, 100_000_000) for a in hot]))
    wallets = [[h] for h in hot]
    for w, (n, amount) in enumerate(batches):
        if n >= 0:
            c.pay(coins[w], wallets[w], n, amount)
            continue
        # -n batches of 6 payees of `amount`, two of the first batch's of ROUND instead
        coin, value = coins[w], 100_000_000
        for i in range(-n):
            # (ascending, as the other batches' outputs: the output order habit alike)
            paid = [amount] * 4 + [ROUND] * 2 if i == 0 else [amount] * 6
            value -= sum(paid) + 1_000
            payees = [(c.fresh(), v) for v in paid]
            change = c.fresh()  # after the payees: address ids are in order of first appearance
            coin = c.add(Tx([coin], [*payees, (change, value)]))[-1]
            wallets[w].append(change)
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = TAGGED + w
    attribution: dict[int, tuple[str | None, str]] = {TAGGED: ("arcadia", "exchange")}
    for w in range(1, len(batches)):
        attribution[TAGGED + w] = (f"cluster:{w}", UNIDENTIFIED_SERVICE)
    fingerprint = np.ones(len(c.txs), np.int64)
    named = _lend_by_style(c.store(), c.shapes(cluster_of), cluster_of, attribution, fingerprint)
    return named.tolist(), attribution


# arcadia sends round amounts; the untagged exchange deducts its fee. Its small fragment pays
# 4 batches with 2 round payments of 25 (8%: neither habit read), so only arcadia's habits
# are compared with it; its two large fragments show the fee deducted: orphans.
ARCADIA, OWN_BATCHES = (9, ROUND), (9, ROUND)
SMALL, LARGE = (-4, DEDUCTED), (9, DEDUCTED)


def test_two_orphans_leave_a_fragment_that_could_be_theirs_unnamed() -> None:
    named, attribution = _lend([ARCADIA, SMALL, OWN_BATCHES, LARGE, LARGE])
    # arcadia's own untagged wallet shows the round amounts no orphan sends: still named
    assert named == [OWN]
    assert attribution[FRAGMENT] == ("cluster:1", UNIDENTIFIED_SERVICE)
    assert all(attribution[o][1] == UNIDENTIFIED_SERVICE for o in ORPHANS)


def test_without_the_guard_the_fragment_takes_the_look_alikes_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(investigate, "ORPHAN_MIN_GROUPS", 0)
    named, attribution = _lend([ARCADIA, SMALL, OWN_BATCHES, LARGE, LARGE])
    assert named == [FRAGMENT, OWN]
    assert attribution[FRAGMENT] == ("arcadia", "exchange")


def test_one_orphan_vetoes_nothing() -> None:
    named, attribution = _lend([ARCADIA, SMALL, OWN_BATCHES, LARGE])
    assert named == [FRAGMENT, OWN]
    assert attribution[FRAGMENT] == ("arcadia", "exchange")
