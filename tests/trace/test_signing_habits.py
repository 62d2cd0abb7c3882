"""Signing habits that tell style twins apart (`trace.services`, issue 11; docs/design/trace.md
"Output order and fee rate"): whether a wallet sorts its outputs by value (BIP69) and whether it
pays whole sat/vB fee rates. Each only rules a named wallet out. Chains built by hand: three
wallets alike on every older habit (hot type, fingerprint, change last, fresh change), two named
and one untagged, differing (or not) in one of the new habits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from chainsleuth.cases.lookalikes import lookalike_exchanges
from chainsleuth.trace import services
from tests.trace.test_change_address_style import Chain, Tx, three_wallet_styles

NAMED, CANDIDATE = np.array([0, 1]), np.array([2])
VSIZE = 500  # every tx's vsize, as the hand store gives it
#: six distinct payments (0.00123017, ... BTC: not round, so the round habit stays apart)
AMOUNTS = (123_017, 456_023, 234_031, 567_041, 345_053, 678_067)


class SizedChain(Chain):
    """A `Chain` whose store gives every tx a vsize of `VSIZE` (so fee rates are read)."""

    def store(self) -> Any:
        store = super().store()
        store.tx_vsizes = lambda ids: np.full(len(ids), VSIZE, np.int64)
        return store

    def pay(self, coin: int, wallet: list[int], n: int, bip69: bool, fee: int) -> None:
        """`n` batches of the six `AMOUNTS` to fresh payees from `coin`, paying `fee`, each
        batch's change (the largest output, last) to a fresh address the next batch spends.
        `bip69`: payees sorted by value; else in a fixed unsorted order."""
        value = 100_000_000
        payees = sorted(AMOUNTS) if bip69 else list(AMOUNTS)
        for _ in range(n):
            value -= sum(AMOUNTS) + fee
            out = self.add(
                Tx([coin], [*[(self.fresh(), v) for v in payees], (self.fresh(), value)])
            )
            coin = out[-1]
            wallet.append(self.txs[-1].outputs[-1][0])


def _world(bip69: tuple[bool, bool, bool], fee: tuple[int, int, int], n: int = 6) -> Any:
    """Wallets 0 and 1 named, 2 untagged, each paying `n` batches with its output order and
    fee (`VSIZE` × a whole rate, or not). Returns their styles."""
    c = SizedChain()
    return three_wallet_styles(c, lambda coin, wallet, w: c.pay(coin, wallet, n, bip69[w], fee[w]))


WHOLE, FRACTIONAL = 12 * VSIZE, 12 * VSIZE + 137


def test_output_order_tells_apart_two_named_wallets_alike_on_every_older_habit() -> None:
    s = _world((True, False, True), (FRACTIONAL,) * 3)
    assert s.sorted_batches is not None and s.unsorted_batches is not None
    assert s.sorted_batches.tolist() == [6, 0, 6]
    assert s.unsorted_batches.tolist() == [0, 6, 0]
    order = s.output_order(services.STYLE_MIN_ORDERED, services.STYLE_MIN_ORDERED)
    assert order.tolist() == [1, 0, 1]
    # the older habits alike (change last, fresh change): only the order tells them apart
    old = services.style_habits(s, np.arange(3))[:6]
    assert all(len(set(h.tolist())) == 1 for h in old)
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [0]
    # without the habit both named wallets stay compatible: neither lends
    bare = replace(s, sorted_batches=None, unsorted_batches=None)
    assert services.style_matches(bare, NAMED, CANDIDATE).tolist() == [-1]
    # and the look-alike warning no longer groups the two
    alike, _shows = services.style_lookalikes(s, NAMED)
    assert not alike[0, 1]
    assert services.style_lookalikes(bare, NAMED)[0][0, 1]


def test_an_unsorted_candidate_rules_out_a_sorting_wallet() -> None:
    s = _world((True, False, False), (FRACTIONAL,) * 3)
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [1]
    # one sorted batch of a candidate could be chance: not known; one unsorted is enough
    one_sorted = replace(
        s, sorted_batches=np.array([6, 0, 1]), unsorted_batches=np.array([0, 6, 0])
    )
    assert services.style_habits(one_sorted, CANDIDATE, seen=True)[6].tolist() == [-1]
    one_unsorted = replace(
        s, sorted_batches=np.array([6, 0, 0]), unsorted_batches=np.array([0, 6, 1])
    )
    assert services.style_habits(one_unsorted, CANDIDATE, seen=True)[6].tolist() == [0]


def test_fee_rate_tells_apart_two_named_wallets_alike_on_every_older_habit() -> None:
    s = _world((False, False, False), (WHOLE, FRACTIONAL, WHOLE))
    assert s.whole_fees is not None and s.fractional_fees is not None
    assert s.whole_fees.tolist() == [6, 0, 6]
    assert s.fractional_fees.tolist() == [0, 6, 0]
    assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [0]
    bare = replace(s, whole_fees=None, fractional_fees=None)
    assert services.style_matches(bare, NAMED, CANDIDATE).tolist() == [-1]


def test_a_fee_at_one_sat_per_vbyte_is_not_read() -> None:
    # the relay floor: every wallet pays it when fees are low, whole or not
    s = _world((False, False, False), (VSIZE, VSIZE, VSIZE))
    assert s.whole_fees is not None and s.fractional_fees is not None
    assert s.whole_fees.tolist() == [0, 0, 0] and s.fractional_fees.tolist() == [0, 0, 0]


def test_wallets_alike_on_every_habit_old_and_new_are_still_not_told_apart() -> None:
    for bip69, fee in (((True,) * 3, (WHOLE,) * 3), ((False,) * 3, (FRACTIONAL,) * 3)):
        s = _world(bip69, fee)
        assert services.style_matches(s, NAMED, CANDIDATE).tolist() == [-1]
        assert services.style_lookalikes(s, NAMED)[0][0, 1]
        section = lookalike_exchanges(s, NAMED, ["arcadia", "borealis"])
        assert [g["exchanges"] for g in section["groups"]] == [["arcadia", "borealis"]]
        assert {"output_order", "fee_rate"} <= set(section["groups"][0]["alike_on"])


def test_the_warning_leaves_out_twins_that_differ_in_a_new_habit() -> None:
    s = _world((True, False, True), (WHOLE, WHOLE, WHOLE))
    section = lookalike_exchanges(s, NAMED, ["arcadia", "borealis"])
    assert section["groups"] == []
    assert section["exchanges"]["arcadia"]["output_order"]["value"] == "sorted (BIP69)"
    assert section["exchanges"]["borealis"]["output_order"]["value"] == "not sorted"
    assert section["exchanges"]["borealis"]["fee_rate"] == {
        "value": "whole sat/vB",
        "read": True,
        "txs": 6,
    }


def test_a_fee_for_the_size_estimated_before_signing_still_reads_whole() -> None:
    # a signer that paid 12 sat/vB for 1 vB more than the tx came to (one input): whole; 11 vB
    # more than its one input can explain: fractional
    s = _world((False, False, False), (12 * (VSIZE + 1), 12 * (VSIZE + 11), 12 * (VSIZE + 1)))
    assert s.whole_fees is not None and s.fractional_fees is not None
    assert s.whole_fees.tolist() == [6, 0, 6]
    assert s.fractional_fees.tolist() == [0, 6, 0]
