"""Real mainnet CoinJoins in the shared blocks stay flagged (issue 11).

Block 702,861 (2021-09) holds seven Whirlpool mixes and a Wasabi 1.x round, listed with why in
`data/real_coinjoins.csv`. The clusterer's kernel must flag each, and each must also pass the
generic `equal_output` shape test with its script types, so a round the specific rule missed
would still not be merged. The block is laid out as the clusterer's arrays by
`bench.real_coinjoins` (input types and addresses read from the scriptSigs and witnesses: the
data has no prevouts for this block).
"""

from __future__ import annotations

import csv
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from bench.real_coinjoins import RAW, Laid, coinjoin_codes, lay_out
from chainsleuth.cluster import kernels
from chainsleuth.cluster.rules import BY_CODE
from chainsleuth.core.script_types import ScriptType

LISTED = Path(__file__).with_name("data") / "real_coinjoins.csv"
ROUNDS = list(csv.DictReader(LISTED.open(newline="")))


@cache
def block(height: int) -> tuple[Laid, np.ndarray, dict[str, int]]:
    path = RAW / f"{height:07d}.bin"
    if not path.exists():  # the shared data is part of the test suite: missing, the test fails
        pytest.fail(f"{path} missing: ../shared/data is incomplete")
    laid = lay_out(path)
    index = {tx.txid_hex(): t for t, tx in enumerate(laid.txs)}
    return laid, coinjoin_codes(laid), index


def _shape_with_types(laid: Laid, t: int) -> bool:
    """`coinjoin_shaped` on tx t with the counts and script-type masks the kernel reads."""
    fi = int(laid.tx_first_input[t])
    fo = int(laid.tx_first_output[t])
    n_in, n_out = len(laid.txs[t].inputs), len(laid.txs[t].outputs)
    values = laid.out_value[fo : fo + n_out]
    types = laid.out_script_type[fo : fo + n_out].astype(np.int64)
    pay = (values > 0) & (types != int(ScriptType.OP_RETURN))
    pv, pt = values[pay], types[pay]
    counts = Counter(pv.tolist())
    mode_v, mode_c = counts.most_common(1)[0]
    shared = np.array([counts[v] >= 2 for v in pv.tolist()])
    mask = lambda ts: int(np.bitwise_or.reduce(1 << ts, initial=0))  # noqa: E731
    spent = laid.in_spent_output[fi : fi + n_in]
    return bool(
        kernels.coinjoin_shaped(
            int(pay.sum()),
            mode_c,
            int(shared.sum()),
            len(set(laid.in_address[fi : fi + n_in].tolist())),
            mask(pt[pv == mode_v]),
            mask(pt[shared]),
            mask(laid.out_script_type[spent].astype(np.int64)),
        )
    )


@pytest.mark.parametrize("row", ROUNDS, ids=[r["txid"][:12] for r in ROUNDS])
def test_a_real_coinjoin_is_flagged_by_its_rule_and_by_the_shape_test(row: dict) -> None:
    laid, codes, index = block(int(row["block"]))
    t = index[row["txid"]]
    assert codes[t] != 0 and BY_CODE[int(codes[t])].name == row["kind"], row["why"]
    assert _shape_with_types(laid, t)


def test_the_listed_rounds_are_every_whirlpool_and_wasabi_flag_of_the_block() -> None:
    """The list is the block's mixes, not a hand-picked few: nothing else there is flagged
    by the Whirlpool or Wasabi rules, and the generic rule flags nothing in it."""
    laid, codes, index = block(702861)
    flagged = {laid.txs[t].txid_hex(): BY_CODE[int(codes[t])].name for t in np.flatnonzero(codes)}
    assert {r["txid"]: r["kind"] for r in ROUNDS} == flagged
