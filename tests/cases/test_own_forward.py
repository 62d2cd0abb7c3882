"""`cases.rows.own_forward_at`: a lead's path that passes the named exchange's own forward of a
customer's deposit (issue 11, docs/accuracy-log.md "Own forwards on the path"), on a
hand-built graph: the fingerprint change before that forward is the customer paying the named
exchange back, and the signs are read from the forward on."""

from __future__ import annotations

import numpy as np

from chainsleuth.cases.rows import fingerprint_change, own_forward_at, path_from
from chainsleuth.store.layout import NONE32
from tests.cases.test_forward_signs import _graph

P2PKH, P2SH, P2WPKH = 2, 3, 4
NONE = int(NONE32)
UNREAD = -1


# X's withdrawal (tx 0) paid its customer, who paid one of X's P2PKH deposit addresses (tx 1);
# X forwarded that deposit straight to a buyer, the rest to its P2WPKH hot wallet (tx 2); the
# buyer paid the service's deposit (tx 3). Tx 4 is a forward by Y, of Y's habits.
GRAPH = _graph(
    [
        ([NONE], [P2SH, P2SH, P2SH]),  # 0: X's withdrawal (outputs 0-2)
        ([0], [P2PKH, P2SH]),  # 1: the customer pays X's deposit address (3), change (4)
        ([3], [P2PKH, P2WPKH]),  # 2: X's forward: the buyer (5), X's hot wallet (6)
        ([5], [P2PKH, P2PKH]),  # 3: the buyer pays the deposit (7, 8)
        ([1], [P2SH, P2PKH]),  # 4: Y's forward of its P2SH deposit, hot P2PKH (9, 10)
        ([9], [P2PKH, P2PKH]),  # 5: Y's buyer pays the deposit (11, 12)
    ]
)
# version 1 / no locktime / final (1) for the exchanges' software, 14 the customer's wallet,
# 22 the buyer's
FINGERPRINT = np.array([1, 14, 1, 22, 1, 22], np.uint8)
X, Y = 0, 1


def test_the_named_exchanges_own_forward_restarts_the_path() -> None:
    habits = np.array([[P2PKH, P2WPKH, 1], [P2SH, P2PKH, 1]], np.int64)
    paths = np.array([[0, 1, 2, 3]], np.int64)
    at = own_forward_at(GRAPH, FINGERPRINT, paths, np.array([X]), habits)
    assert at.tolist() == [2]
    # the whole path shows two programs after the withdrawal (the customer's, X's, the
    # buyer's); from X's forward on, one: the buyer's
    assert fingerprint_change(FINGERPRINT, paths).tolist() == [True]
    sub = path_from(paths, at)
    assert sub.tolist() == [[2, 3, -1, -1]]
    assert fingerprint_change(FINGERPRINT, sub).tolist() == [False]


def test_no_restart_where_the_forward_is_not_the_named_exchanges_alone() -> None:
    habits = np.array([[P2PKH, P2WPKH, 1], [P2SH, P2PKH, 1]], np.int64)
    paths = np.array(
        [
            [0, 1, 2, 3],  # X's forward, but the row names Y
            [0, 4, 5, -1],  # Y's forward on a row naming X: the walk went through Y
            [2, 3, -1, -1],  # X's forward is the funding tx itself: nothing to restart
            [0, 1, 2, 3],  # no exchange named
        ],
        np.int64,
    )
    at = own_forward_at(GRAPH, FINGERPRINT, paths, np.array([Y, X, X, -1]), habits)
    assert at.tolist() == [-1, -1, -1, -1]
    # a style twin of X (every habit alike) could have forwarded it: no restart
    twins = np.array([[P2PKH, P2WPKH, 1], [P2PKH, P2WPKH, 1]], np.int64)
    assert own_forward_at(GRAPH, FINGERPRINT, paths[:1], np.array([X]), twins).tolist() == [-1]
    # nor where another exchange's deposit type was never read and its other habits fit
    unread = np.array([[P2PKH, P2WPKH, 1], [UNREAD, P2WPKH, 1]], np.int64)
    assert own_forward_at(GRAPH, FINGERPRINT, paths[:1], np.array([X]), unread).tolist() == [-1]
    # nor where X's own habits were not all read
    partial = np.array([[P2PKH, UNREAD, 1], [P2SH, P2PKH, 1]], np.int64)
    assert own_forward_at(GRAPH, FINGERPRINT, paths[:1], np.array([X]), partial).tolist() == [-1]
    # nor where the tx carries another program's fingerprint than X's batches
    signed = np.array([1, 14, 22, 22, 1, 22], np.uint8)
    assert own_forward_at(GRAPH, signed, paths[:1], np.array([X]), habits).tolist() == [-1]
    empty = own_forward_at(GRAPH, FINGERPRINT, np.zeros((0, 4), np.int64), np.zeros(0), habits)
    assert empty.shape == (0,)


def test_an_own_forward_caution_is_no_cap_on_recalibration() -> None:
    """`own_forward` says why a sign is gone; it holds no lead down (recalibrate_leads reads the
    cautions back from leads.csv)."""
    import pyarrow as pa

    from chainsleuth.cases.rows import FORWARD_CAUTIONS, OWN_FORWARD, recalibrate_leads

    assert OWN_FORWARD not in FORWARD_CAUTIONS
    leads = pa.table(
        {
            "source_category": ["exchange"] * 2,
            "custody_path": [""] * 2,
            "attributed_via": ["wallet_style"] * 2,
            "through_coinjoin": ["false"] * 2,
            "caution": [OWN_FORWARD, f"fingerprint_change;{OWN_FORWARD}"],
            "policy": ["haircut"] * 2,
            "hops": [4] * 2,
            "share": [1.0] * 2,
            "hold_days": [1.0] * 2,
            "confidence": [0.99] * 2,
        }
    )
    again = recalibrate_leads(leads, 1.0).column("confidence").to_pylist()
    assert again[1] <= 0.45 < 0.5 < again[0]
