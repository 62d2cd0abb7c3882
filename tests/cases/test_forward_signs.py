"""`cases.rows.forward_signs`: the path shapes that show an exchange forwarding a customer's
deposit (issue 11, docs/accuracy-log.md "Forward signs"), on a hand-built graph."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from chainsleuth.cases.rows import forward_signs
from chainsleuth.store.layout import NONE32

P2PKH, P2SH, P2WPKH = 2, 3, 4


def _graph(txs: list[tuple[list[int], list[int]]]) -> SimpleNamespace:
    """A graph of txs given as (outputs spent, script types of the outputs made); every output
    has an address and 1,000 sat. Output ids count up from 0 in tx order."""
    first_input, first_output, spent, types = [], [], [], []
    for ins, outs in txs:
        first_input.append(len(spent))
        first_output.append(len(types))
        spent += ins
        types += outs
    n = len(types)
    return SimpleNamespace(
        tx_first_input=np.array(first_input, np.uint32),
        tx_first_output=np.array(first_output, np.uint32),
        input_spent_output=np.array(spent, np.uint32),
        output_script_type=np.array(types, np.uint8),
        output_address=np.arange(n, dtype=np.uint32),
        output_value=np.full(n, 1_000, np.int64),
    )


def test_a_split_into_other_script_types_after_the_withdrawal_is_a_forward() -> None:
    none = int(NONE32)
    graph = _graph(
        [
            ([none], [P2SH, P2SH, P2SH, P2SH]),  # 0: the exchange's batch (outputs 0-3)
            ([0], [P2PKH, P2WPKH]),  # 1: deposit forwarded, the rest to a hot wallet (4, 5)
            ([4], [P2PKH, P2PKH]),  # 2: the buyer pays the service (6, 7)
            ([1], [P2SH, P2PKH]),  # 3: a person pays, change in their own type (8, 9)
            ([9], [P2PKH]),  # 4: a one-input, one-output send-all (10)
            ([10], [P2PKH, P2PKH]),  # 5: its receiver pays the service (11, 12)
            ([2], [P2PKH, P2WPKH]),  # 6: like 1, but two hops after the withdrawal (13, 14)
            ([13], [P2PKH, P2WPKH]),  # 7: (15, 16)
            ([3], [P2WPKH, P2WPKH]),  # 8: a P2SH wallet moving to native segwit (17, 18)
            ([17], [P2PKH, P2PKH]),  # 9: (19, 20)
        ]
    )
    paths = np.array(
        [
            [0, 1, 2, -1],  # forward right after the withdrawal
            [0, 3, -1, -1],  # a person paid from the withdrawal
            [0, 3, 4, 5],  # a send-all on the way
            [0, 3, 4, -1],  # the send-all is the deposit's payment itself
            [0, 1, -1, -1],  # the forward pays the deposit
            [0, 6, 7, -1],  # another withdrawal output forwarded the same way
            [0, 8, 9, -1],  # an upgrade to native segwit is not a forward
        ],
        np.int64,
    )
    switched, send_all = forward_signs(graph, paths)
    assert switched.tolist() == [True, False, False, False, True, True, False]
    assert send_all.tolist() == [False, False, True, False, False, False, False]
    # tx 7 splits into other types too, but it is not the tx that spent the withdrawal
    switched, _ = forward_signs(graph, np.array([[0, 3, 7, -1]], np.int64))
    assert switched.tolist() == [False]
    empty = forward_signs(graph, np.zeros((0, 4), np.int64))
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def test_two_wallet_fingerprints_after_the_withdrawal_are_a_change_of_hands() -> None:
    """`fingerprint_change`: the txs after the funding tx (the customer's own, as a lead says)
    signed by two wallet programs. Tx 0 is an exchange's batch (fingerprint 1: version 1, no
    locktime, final nSequence), tx 1 another exchange's forward of its deposit (also 1), tx 2
    the buyer's wallet paying the deposit (14: version 2, locktime set, nSequence 0xfffffffe),
    tx 3 and 4 a person's own wallet (22) throughout."""
    from chainsleuth.cases.rows import fingerprint_change

    fingerprint = np.array([1, 1, 14, 22, 22, 14], np.uint8)
    paths = np.array(
        [
            [0, 1, 2, -1],  # withdrawal, forward (exchange software), buyer's payment: flagged
            [0, 3, 4, -1],  # withdrawal, then one wallet throughout: not
            [0, 1, -1, -1],  # the forward pays the deposit itself: one tx after, not told
            [0, 3, -1, -1],  # a direct payment: not
            [0, 3, 4, 5],  # the last payment by another program: flagged
            [2, 3, 4, -1],  # the funding tx's own fingerprint is not compared (it is X's)
        ],
        np.int64,
    )
    assert fingerprint_change(fingerprint, paths).tolist() == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert fingerprint_change(fingerprint, np.zeros((0, 4), np.int64)).shape == (0,)
    assert fingerprint_change(fingerprint, np.array([[0, 1]], np.int64)).tolist() == [False]


def test_a_coinjoin_on_the_path_is_not_taken_for_a_wallet_change() -> None:
    from chainsleuth.cases.rows import fingerprint_change

    # tx 1 is a CoinJoin (the round's fingerprint, 9); 2 and 3 the participant's own wallet
    fingerprint = np.array([1, 9, 22, 22, 14], np.uint8)
    mix_tx = np.array([False, True, False, False, False])
    paths = np.array(
        [
            [0, 1, 2, 3],  # withdrawal, the round (its change walked back), then one wallet
            [0, 2, 1, 3],  # the round between two txs of one wallet
            [0, 1, 2, 4],  # the round, then two programs: still flagged
            [0, 1, -1, -1],  # the round pays the deposit: nothing of a wallet's to compare
        ],
        np.int64,
    )
    assert fingerprint_change(fingerprint, paths).tolist() == [True, True, True, False]
    assert fingerprint_change(fingerprint, paths, mix_tx).tolist() == [False, False, True, False]


def test_fingerprint_change_caps_a_lead_and_survives_recalibration() -> None:
    """A lead flagged so is held below the cut, by `lead_confidence` and again by
    `recalibrate_leads` (which reads the flag back from `caution`)."""
    from chainsleuth.cases.rows import FORWARD_CAP, FORWARD_CAUTIONS, lead_confidence

    assert "fingerprint_change" in FORWARD_CAUTIONS
    features = (
        np.array([2.0, 2.0]),
        np.array([1.0, 1.0]),
        np.array([0.0, 0.0]),
        np.array([0.0, 0.0]),
        np.array([1.0, 1.0]),
    )
    no = np.zeros(2, np.bool_)
    flagged = np.array([True, False])
    c = lead_confidence("haircut", features, 1.0, no, no, flagged, np.ones(2, np.bool_))
    assert c[0] <= FORWARD_CAP < 0.5 < c[1]
    # recalibrate_leads recomputes every row from its columns: the caution keeps the cap
    import pyarrow as pa

    from chainsleuth.cases.rows import recalibrate_leads

    leads = pa.table(
        {
            "source_category": ["exchange", "exchange"],
            "custody_path": ["", ""],
            "attributed_via": ["tag", "tag"],
            "through_coinjoin": ["false", "false"],
            "caution": ["fingerprint_change", ""],
            "policy": ["haircut", "haircut"],
            "hops": [2, 2],
            "share": [1.0, 1.0],
            "hold_days": [1.0, 1.0],
            "confidence": [0.99, 0.99],
        }
    )
    again = recalibrate_leads(leads, 1.0).column("confidence").to_pylist()
    assert again[0] <= FORWARD_CAP < 0.5 < again[1]
