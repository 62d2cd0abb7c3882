"""A customer's send-all into a deposit that its exchange forwards is no sweep of the wallet's
own (issue 11, docs/accuracy-log.md "Send-alls into a forwarded deposit";
`trace.services.received_deposits`).

Hard_sw small 2: an untagged fragment of cobalt (P2SH hot, P2WPKH deposits) held one of
cobalt's deposit addresses, paid by a merchant's send-all of 16 P2SH coins and spent by
cobalt's forward (the deposit paying one withdrawal, the rest back to the hot wallet). The
send-all was shaped like a sweep, its output not swept on, so it voted the merchant's coins'
type (P2SH, weight 16): the fragment read deposits P2SH, borealis' type, and was named
borealis (3 wrong leads). A wallet's own sweep pays its hot wallet, or its cold one whose
refills return their change to cold storage: a sweep-shaped payment into a coin not of the
group's hot type whose spender pays no coin of that type again is a deposit, which votes its
own type. Hand-built chains, every tx and script type spelled out."""

from __future__ import annotations

from tests.trace.test_deposit_type_majority import HOT, P2PKH, P2SH, Chain, Tx
from tests.trace.test_sendall_into_deposit import _fragment, _styles

C, DEPOSITS = 1_002, 3_000


def _forwarded_send_all(c: Chain, deposit_type: int) -> None:
    """A customer sends 16 P2PKH coins into one address of C (of `deposit_type`), which C
    spends in a forward: a withdrawal and the rest back to C's hot wallet."""
    coins = c.paid_by_a_customer([(c.fresh(77), 50_000, P2PKH) for _ in range(16)])
    sent = c.add(Tx(coins, [(c.fresh(C), 790_000, deposit_type)]))
    c.add(Tx(sent, [(c.fresh(), 500_000, P2PKH), (c.fresh(C), 280_000, HOT)]))


def test_a_forwarded_send_all_into_a_deposit_votes_the_deposit_type() -> None:
    c = Chain()
    _fragment(c, C)
    _forwarded_send_all(c, P2SH)
    s = _styles(c, [C])
    assert s.hot.tolist() == [HOT]
    # the deposit's own type (P2SH; hot P2WPKH), not the customer's coins' (P2PKH, 16
    # votes, as before)
    assert s.deposit.tolist() == [P2SH]


def test_a_sweep_into_the_hot_type_still_votes_the_swept_inputs() -> None:
    # the same tx paying a coin of the hot type: shaped like the wallet's own sweep of its
    # deposits into its hot wallet, it still votes what it swept (the rule cannot tell them
    # apart; the hot type is no deposit type it could read instead)
    c = Chain()
    _fragment(c, C)
    coins = c.paid_by_a_customer([(c.fresh(DEPOSITS), 50_000, P2SH) for _ in range(4)])
    swept = c.add(Tx(coins, [(c.fresh(C), 190_000, HOT)]))
    c.add(Tx(swept, [*[(c.fresh(), 20_000, P2PKH) for _ in range(6)], (c.fresh(C), 60_000, HOT)]))
    s = _styles(c, [C])
    assert s.deposit.tolist() == [P2SH]


def test_a_sweep_into_cold_storage_still_votes_the_swept_inputs() -> None:
    # the wallet's own sweep of 4 P2SH deposits into a cold coin (P2PKH, not the hot type),
    # spent by a refill that pays the hot wallet and returns its change to cold storage (a
    # P2PKH coin again): the wallet's own, it votes what it swept, not the cold type
    c = Chain()
    _fragment(c, C)
    coins = c.paid_by_a_customer([(c.fresh(DEPOSITS), 50_000, P2SH) for _ in range(4)])
    cold = c.add(Tx(coins, [(c.fresh(C), 190_000, P2PKH)]))
    c.add(Tx(cold, [(c.fresh(C), 100_000, HOT), (c.fresh(), 85_000, P2PKH)]))
    s = _styles(c, [C])
    assert s.deposit.tolist() == [P2SH]
