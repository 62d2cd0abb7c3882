"""The whole-fee-rate reader (`trace.services.whole_fee_rates`) on real txs of block 866,342,
whose spent outputs the shared data holds (issue 11): a wallet that pays r sat/vB on its weight
/ 4 not rounded up pays a fee the vsize alone reads as fractional; an estimator's rate stays
fractional."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.parse.serialize import parse_block
from chainsleuth.trace.services import whole_fee_rates

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mainnet-blocks" / "raw"


@cache
def fees() -> dict[str, tuple[int, int, int, int]]:
    """txid -> (fee, vsize, weight, inputs) of every non-coinbase tx of block 866,342."""
    path = RAW / "0866342.bin"
    if not path.exists():  # the shared data is part of the test suite: missing, the test fails
        pytest.fail(f"{path} missing: ../shared/data is incomplete")
    block, _ = parse_block(path.read_bytes())
    spent = json.loads((RAW / "0866342.spent_utxos.json").read_text())
    out, p = {}, 0
    for tx in block.txs[1:]:
        n = len(tx.inputs)
        fee = sum(int(s["txout"]["value"]) for s in spent[p : p + n])
        fee -= sum(o.value for o in tx.outputs)
        p += n
        out[tx.txid_hex()] = (fee, tx.vsize(), tx.weight(), n)
    return out


def read(txid: str) -> tuple[bool, bool]:
    fee, vsize, _, n_in = fees()[txid]
    counted, whole = whole_fee_rates(np.array([fee]), np.array([vsize]), np.array([n_in]))
    return bool(counted[0]), bool(whole[0])


# 1,012 sat at 809 WU (vsize 203): 5 sat/vB x 202.25 vB rounded up, the weight / 4 not
# rounded up to a whole vB
UNROUNDED = "2082b84d9633b384"
# 938 sat at 937 WU (vsize 235): 4 sat/vB x 234.5 vB (a signature a byte over its estimate)
UNROUNDED_4 = "13c881faec7bace6"
# 4,994 sat at vsize 161: 31.02 sat/vB, an estimator's rate (12 such txs in the block)
FRACTIONAL = "2dba4990eeccc4be"


def full(prefix: str) -> str:
    (txid,) = [t for t in fees() if t.startswith(prefix)]
    return txid


@pytest.mark.parametrize("prefix,rate", [(UNROUNDED, 5), (UNROUNDED_4, 4)])
def test_a_whole_rate_on_the_unrounded_weight_reads_whole(prefix: str, rate: int) -> None:
    fee, vsize, weight, _ = fees()[full(prefix)]
    assert abs(4 * fee - rate * weight) <= 4 and fee < rate * vsize  # the vsize alone misread
    assert read(full(prefix)) == (True, True)


def test_an_estimators_fractional_rate_still_reads_fractional() -> None:
    fee, vsize, _, _ = fees()[full(FRACTIONAL)]
    assert fee // vsize == 31
    assert read(full(FRACTIONAL)) == (True, False)


def test_the_block_reads_whole_far_above_chance() -> None:
    """Real wallets pay whole rates: of the block's txs, the reader finds more whole than a
    fee drawn at random within each tx's sat/vB step would give, four times over."""
    rows = list(fees().values())
    fee, vsize, _, n_in = (np.array(c, np.int64) for c in zip(*rows, strict=True))
    counted, whole = whole_fee_rates(fee, vsize, n_in)
    rng = np.random.default_rng(1)
    fake = (fee // vsize) * vsize + rng.integers(0, vsize)
    _, by_chance = whole_fee_rates(fake, vsize, n_in)
    assert whole[counted].sum() > 4 * max(int(by_chance[counted].sum()), 1)
