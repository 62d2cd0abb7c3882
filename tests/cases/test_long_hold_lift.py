"""A long hold caps a lead only where its path shows, or cannot show, a change of hands
(cases.rows.long_hold_capped, LONG_HOLD_MIN_HOPS; docs/accuracy-log.md "Long holds with no
sign of a change of hands")."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from chainsleuth.cases.confidence import calibration
from chainsleuth.cases.rows import (
    FORWARD_CAP,
    LONG_HOLD_CAP,
    LONG_HOLD_DAYS,
    LONG_HOLD_MAX_HOPS,
    LONG_HOLD_MIN_HOPS,
    lead_confidence,
    long_hold_capped,
    recalibrate_leads,
)

HOLD = LONG_HOLD_DAYS + 10.0

#: (hops, caution) of long-held tagged exchange rows, then what the case must ship for each
ROWS = [
    (LONG_HOLD_MIN_HOPS, "long_hold", "model"),  # read for a hand-off, none: the model's value
    (LONG_HOLD_MAX_HOPS, "long_hold;coinjoin_change", "model"),  # coinjoin_change: no cap
    (LONG_HOLD_MIN_HOPS - 1, "long_hold", "long_hold"),  # too short to read: capped
    (LONG_HOLD_MAX_HOPS + 1, "long_hold", "long_hold"),  # long enough to hide one: capped
    (LONG_HOLD_MIN_HOPS, "long_hold;fingerprint_change", "forward"),  # two wallets: capped
    (LONG_HOLD_MIN_HOPS + 1, "long_hold;peeled_off", "forward"),  # a hand-off sign: capped
    (LONG_HOLD_MIN_HOPS + 1, "long_hold;send_all_hop", "forward"),
]


def _model(hops: int, typical: float) -> float:
    one = np.ones(1)
    return float(calibration().lead("haircut", hops * one, one, 0 * one, 0 * one, HOLD * one,
                                    typical)[0])  # fmt: skip


def test_long_hold_capped_unless_a_path_of_three_or_four_txs_shows_no_sign() -> None:
    long_hold = np.array([True, True, True, True, True, False])
    forwarded = np.array([False, False, True, False, False, False])
    hops = np.array([LONG_HOLD_MIN_HOPS, LONG_HOLD_MAX_HOPS, LONG_HOLD_MIN_HOPS,
                     LONG_HOLD_MIN_HOPS - 1, LONG_HOLD_MAX_HOPS + 1, 1])  # fmt: skip
    got = long_hold_capped(long_hold, forwarded, hops).tolist()
    assert got == [False, False, True, True, True, False]


def test_lead_confidence_lifts_a_long_hold_with_no_sign_and_caps_the_rest() -> None:
    typical = 1.0
    # a typical hold this short makes every row's model value a long hold's: the model alone
    # must still be above the cut here, or the test would not tell a lift from a cap
    for hops, _, _ in ROWS:
        assert _model(hops, typical) >= 0.5
    n = len(ROWS)
    hops = np.array([h for h, _, _ in ROWS], np.float64)
    forwarded = np.array([w == "forward" for _, _, w in ROWS])
    features = (hops, np.ones(n), np.zeros(n), np.zeros(n), np.full(n, HOLD))
    got = lead_confidence("haircut", features, typical, np.zeros(n, np.bool_),
                          np.ones(n, np.bool_), forwarded, np.ones(n, np.bool_))  # fmt: skip
    for (h, caution, want), c in zip(ROWS, got, strict=True):
        if want == "model":
            assert c == pytest.approx(round(_model(h, typical), 4)), caution
            assert c >= 0.5
        else:
            assert c <= (LONG_HOLD_CAP if want == "long_hold" else FORWARD_CAP) < 0.5, caution


def test_recalibrate_leads_reads_the_lift_from_the_columns() -> None:
    """investigate recomputes every lead's confidence from leads.csv's own columns: the lift
    must follow from `hops` and `caution` alone, and `caution` keeps saying long_hold."""
    n = len(ROWS)
    table = pa.table(
        {
            "source_category": ["exchange"] * n,
            "through_coinjoin": ["false"] * n,
            "caution": [c for _, c, _ in ROWS],
            "attributed_via": ["tag"] * n,
            "hops": pa.array([h for h, _, _ in ROWS], pa.int64()),
            "share": pa.array([1.0] * n),
            "custody_path": [""] * n,
            "hold_days": pa.array([HOLD] * n),
            "policy": ["haircut"] * n,
            "confidence": pa.array([0.45] * n),
        }
    )
    out = recalibrate_leads(table, 1.0)
    got = out.column("confidence").to_pylist()
    for (h, caution, want), c in zip(ROWS, got, strict=True):
        if want == "model":
            assert c == pytest.approx(round(_model(h, 1.0), 4)) and c >= 0.5, caution
        else:
            assert c < 0.5, caution
    assert out.column("caution").to_pylist() == table.column("caution").to_pylist()
