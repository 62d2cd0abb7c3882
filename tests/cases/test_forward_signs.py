"""`cases.rows.forward_signs`: the path shapes that show an exchange forwarding a customer's
deposit (issue 11, docs/investigations.md "Forward signs"), on a hand-built graph."""

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
