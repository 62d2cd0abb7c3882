"""Cash-outs' rule 6b for an exchange whose signing software changed (issue 11; the simulator's
`hard_swswitch` profile, Binance's 2017 -> 2018 batches on the real blocks): its habits are read
per half-year (`trace.services.habit_rows`) and a forward is compared with the habits of the
half-year its block is in. Pooled over the chain, such an exchange's fingerprint reads mixed
(or, where its tags fall in one era, that era's alone) and rule 6b reads nothing of the other
era. A hand chain (`tests.trace.test_period_habits.TimedChain`): the tagged wallet signs like
Bitcoin Core in 2017 and without locktime or RBF in 2018, where its new software's batches
sit in a fragment that only the change spends name (`_lend_by_change`, after the style
rounds)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainsleuth.cases.cashouts import (
    VIA_FORWARD_HABITS,
    VIA_FORWARD_UNCONFIRMED,
    cashout_rows,
)
from chainsleuth.cases.investigate import RULE_6B_HABITS, _exchange_habit_rows
from chainsleuth.store.layout import NONE32
from chainsleuth.trace import kernels as trace_kernels
from chainsleuth.trace import services
from tests.cases.test_cashouts import _Trace
from tests.trace.test_period_habits import AUG_2017, MAR_2018, TimedChain
from tests.trace.test_signing_habits import FRACTIONAL, Tx

P2PKH, P2SH, P2WPKH = 2, 3, 4
#: read_fingerprints codes: Core (v2, locktime set, nSequence 0xfffffffe) and a plain v1 signer
CORE, PLAIN = 2 | 4 | (1 << 3), 1
H2_2017, H1_2018 = 95, 96  # `block_periods` of AUG_2017 and MAR_2018 (6 months)
EXCHANGE, OTHER = ("arcadia", "exchange"), ("borealis", "exchange")


def _chain() -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """Wallet 0 (cluster 1000, tagged arcadia) pays 12 batches in Aug 2017 signed like Core;
    its fragment (cluster 1002) 12 in Mar 2018, signed plain (the new software); wallet 1
    (cluster 1001, tagged borealis) 12 plain in Aug 2017 and Mar 2018 each. Returns the store,
    shapes, cluster per address and fingerprint per tx."""
    c = TimedChain()
    wallets: list[list[int]] = [[], [], []]
    coins: list[int] = []

    def setup() -> None:
        funder = c.add(Tx([], [(c.fresh(), 400_000_000)]))
        hot = [c.fresh() for _ in range(3)]
        for w in range(3):
            wallets[w].append(hot[w])
        coins.extend(c.add(Tx(funder, [(a, 100_000_000) for a in hot])))

    c.at(AUG_2017, setup)
    c.at(AUG_2017, lambda: c.pay(coins[0], wallets[0], 12, False, FRACTIONAL))
    c.at(AUG_2017, lambda: c.pay(coins[1], wallets[1], 6, False, FRACTIONAL))
    last = c.last_change()
    c.at(MAR_2018, lambda: c.pay(last, wallets[1], 6, False, FRACTIONAL))
    c.at(MAR_2018, lambda: c.pay(coins[2], wallets[2], 12, False, FRACTIONAL))
    cluster_of = np.arange(c.next_address)
    for w, members in enumerate(wallets):
        cluster_of[members] = 1_000 + w
    fingerprint = np.full(len(c.txs), PLAIN, np.int64)
    fingerprint[2:14] = CORE  # wallet 0's 2017 batches (txs 0-1 fund the wallets)
    store = c.store()
    return store, c.shapes(cluster_of), cluster_of, fingerprint


def _rows(attribution: dict[int, tuple[str | None, str]], months: int = 6) -> np.ndarray:
    """`_exchange_habit_rows` with the style rounds' rows as they read the tags alone: wallet
    0 in Core's fingerprint over the chain (its tags fall in 2017), wallet 1 plain."""
    store, shapes, cluster_of, fingerprint = _chain()
    hot = services.wallet_styles(
        store, shapes, cluster_of, services.ClusterGroups.of(np.array([1_000]), np.array([0])),
        fingerprint, 0,
    ).hot[0]  # fmt: skip
    by_label = {
        EXCHANGE: (np.array([[P2PKH, hot, CORE, -1]], np.int64), P2PKH),
        OTHER: (np.array([[P2SH, hot, PLAIN, -1]], np.int64), P2SH),
    }
    return _exchange_habit_rows(
        store, shapes, cluster_of, attribution, fingerprint, months, by_label
    )


def test_an_exchange_named_over_both_eras_is_read_per_half_year() -> None:
    # only the tags named: wallet 0 shows one era, nothing changed, the style rounds' rows stay
    tags = {1_000: EXCHANGE, 1_001: OTHER}
    before = _rows(tags)
    assert sorted(before[:, 2].tolist()) == [PLAIN, CORE] and (before[:, 3] == -1).all()
    # its fragment named after it by the end (a change spend): it changed, and reads per window;
    # the deposit type its own sweeps never showed is the style rounds'
    after = _rows(tags | {1_002: EXCHANGE})
    hot = int(before[0, 1])
    assert sorted(map(tuple, after.tolist())) == sorted(
        [(P2PKH, hot, CORE, H2_2017), (P2PKH, hot, PLAIN, H1_2018), (P2SH, hot, PLAIN, -1)]
    )
    # pooled (no windows): the style rounds' rows, as main read them
    assert _rows(tags | {1_002: EXCHANGE}, months=0).tolist() == before.tolist()
    assert len(RULE_6B_HABITS) + 1 == after.shape[1]


def _forward(table: np.ndarray, hot: int, window: int | None) -> list[int]:
    """Rule 6's shape: a P2PKH payee forwarded plain into two outputs of the hot type (the
    hot wallet and a buyer; two alike, so not rule 6a's), in a block of `window` (None: no
    windows given). Returns the rows' `via`."""
    types = [P2PKH, P2PKH, hot, hot]  # the payee, the service's change, the forward's two
    spent_by = np.full(4, int(NONE32), np.uint32)
    spent_by[0] = 1
    chain: dict[str, Any] = {
        "out_cluster": np.arange(4, dtype=np.int64),
        "out_addr": np.arange(4, dtype=np.int64),
        "service_mask": np.array([False, True, False, False]),
        "tx_first_input": np.arange(3, dtype=np.int64),
        "tx_first_output": np.array([0, 2, 4], np.int64),
        "spent_by": spent_by,
        "is_coinjoin": np.zeros(3, np.bool_),
        "sweep_tx": np.zeros(3, np.bool_),
        "batch_tx": np.zeros(3, np.bool_),
        "out_value": np.full(4, 1_000_000, np.int64),
        "out_type": np.array(types, np.uint8),
        "tx_fingerprint": np.array([CORE, PLAIN, CORE], np.uint8),
        "exchange_habits": table,
    }
    if window is not None:
        chain |= {"tx_height": np.array([0, 1, 1]), "block_window": np.array([window, window])}
    trace = _Trace(
        kind=np.full(1, trace_kernels.KIND_CLUSTER, np.int8),
        output=np.zeros(1, np.int64),
        tx=np.zeros(1, np.int64),
        hops=np.ones(1, np.int64),
        amount=np.full(1, 1_000_000, np.int64),
    )
    got = cashout_rows(trace, attribution={}, **chain)
    return [int(v) for v in got.rows["via"].tolist()]


def test_the_switched_exchanges_forward_is_found_per_period_and_missed_pooled() -> None:
    tags = {1_000: EXCHANGE, 1_001: OTHER}
    pooled, period = _rows(tags), _rows(tags | {1_002: EXCHANGE})
    hot = int(pooled[0, 1])
    # the style rounds' pooled rows: arcadia signs like Core (never rule 6b's), borealis
    # receives P2SH: a plain P2PKH forward fits no one, rule 6 at its cap
    assert hot not in (P2PKH, P2SH)
    assert _forward(pooled, hot, H1_2018) == [VIA_FORWARD_UNCONFIRMED]
    assert _forward(pooled, hot, None) == [VIA_FORWARD_UNCONFIRMED]
    # per half-year: in 2018 H1 arcadia signs plain, the forward is its kind: rule 6b
    assert _forward(period, hot, H1_2018) == [VIA_FORWARD_HABITS]
    # the same forward in 2017 H2, when arcadia signed like Core, or with no window read
    assert _forward(period, hot, H2_2017) == [VIA_FORWARD_UNCONFIRMED]
    assert _forward(period, hot, None) == [VIA_FORWARD_UNCONFIRMED]
