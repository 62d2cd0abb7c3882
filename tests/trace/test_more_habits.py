"""More wallet habits (issue 11, docs/accuracy-log.md "More wallet habits (2026-12-07)"):
round payment amounts (an exchange that sends what was asked for sends round amounts, one
that takes its fee out of the amount sent does not). It only rules a tagged wallet out. (A
batch or sweep cadence counted in blocks was measured and dropped: the simulator batches every
k blocks, real exchanges batch on a clock.) Small chains built by hand (every tx, output and
value spelled out)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from chainsleuth.trace import services
from tests.trace.test_change_address_style import Chain, Tx, three_wallet_styles

NAMED, CANDIDATE = np.array([0, 1]), np.array([2])


class PayChain(Chain):
    """A `Chain` that pays batches."""

    def pay(self, coin: int, wallet: list[int], n: int, amount: int) -> None:
        """`n` batches of 6 fresh payees of `amount` each from `coin`, each batch's change
        (last) to a fresh address the next batch spends."""
        value = 100_000_000
        for _ in range(n):
            value -= 6 * amount + 1_000
            payees = [(self.fresh(), amount) for _ in range(6)]
            change = self.fresh()
            out = self.add(Tx([coin], [*payees, (change, value)]))
            coin = out[-1]
            wallet.append(change)


def _world(amounts: tuple[int, int, int], n: int = 9) -> Any:
    """Three wallets alike on every habit the older rules read (hot type, fingerprint, change
    last, fresh change): wallets 0 and 1 named, 2 untagged, each paying `n` batches of its
    `amounts[w]` per payee. Returns their styles."""
    c = PayChain()
    return three_wallet_styles(c, lambda coin, wallet, w: c.pay(coin, wallet, n, amounts[w]))


ROUND, DEDUCTED = 1_000_000, 950_000  # 0.01 BTC asked for, sent whole or less a 0.0005 fee


def test_round_amounts_tell_apart_two_named_wallets_of_one_style() -> None:
    s = _world((ROUND, DEDUCTED, ROUND))
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
    s = _world((ROUND, DEDUCTED, ROUND))
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
