"""The serializer writes Bitcoin's exact bytes: genesis rebuilt by hand, real blocks, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.parse.serialize import (
    REGTEST_BITS,
    Block,
    BlockHeader,
    Tx,
    TxIn,
    TxOut,
    bits_to_target,
    compact_size,
    merkle_root,
    mine,
    parse_block,
    parse_tx,
    sha256d,
    tx_weight,
    witness_commitment_script,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MAINNET = SHARED / "mainnet-blocks"

GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e"
    "206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
GENESIS_PUBKEY = bytes.fromhex(
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504"
    "e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
)


def genesis_coinbase() -> Tx:
    """The coinbase of every Bitcoin network's genesis block, from Core's chainparams.cpp."""
    script_pubkey = bytes([len(GENESIS_PUBKEY)]) + GENESIS_PUBKEY + b"\xac"
    return Tx(
        1,
        (TxIn(bytes(32), 0xFFFFFFFF, GENESIS_SCRIPT_SIG, 0xFFFFFFFF),),
        (TxOut(50 * 100_000_000, script_pubkey),),
        0,
    )


def test_genesis_coinbase_rebuilt_by_hand_has_the_real_txid() -> None:
    tx, end = parse_tx(genesis_coinbase().serialize())
    assert end == len(genesis_coinbase().serialize())
    assert tx.txid_hex() == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"


def test_regtest_genesis_block_hashes_to_the_real_regtest_genesis() -> None:
    cb = genesis_coinbase()
    header = BlockHeader(1, bytes(32), merkle_root([cb.txid()]), 1296688602, REGTEST_BITS, 2)
    assert header.hash_hex() == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert mine(header) == header  # nonce 2 is the first that meets regtest's target


def test_mainnet_genesis_header_matches_the_first_header_of_the_shared_chain() -> None:
    headers = MAINNET / "headers"
    files = sorted(headers.glob("*")) if headers.is_dir() else []
    raw = next((f.read_bytes() for f in files if f.stat().st_size % 80 == 0), None)
    if raw is None:  # the shared data is part of the test suite: missing, the test fails
        pytest.fail(f"no 80-byte header file in {headers}: ../shared/data is incomplete")
    cb = genesis_coinbase()
    header = BlockHeader(1, bytes(32), merkle_root([cb.txid()]), 1231006505, 0x1D00FFFF, 2083236893)
    assert header.serialize() == raw[:80]


@pytest.mark.parametrize("name", ["0100002.bin", "0514485.bin", "0866342.bin"])
def test_real_blocks_parse_and_serialize_back_to_the_same_bytes(name: str) -> None:
    path = MAINNET / "raw" / name
    if not path.exists():
        pytest.fail(f"{path} missing: ../shared/data is incomplete")
    data = path.read_bytes()
    block, end = parse_block(data)
    assert end == len(data)
    assert block.serialize() == data
    assert merkle_root([t.txid() for t in block.txs]) == block.header.merkle_root
    facts = _manifest_block(name)
    assert block.header.hash_hex() == facts["hash"]
    assert (
        sum(t.weight() for t in block.txs) + 4 * (80 + len(compact_size(len(block.txs))))
        == (facts["weight"])
    )


def _manifest_block(name: str) -> dict:
    manifest = json.loads((MAINNET / "manifest.json").read_text())
    return next(f["block"] for f in manifest["files"] if f["path"] == f"raw/{name}")


def test_witness_commitment_of_a_real_segwit_block_matches_its_coinbase() -> None:
    path = MAINNET / "raw" / "0866342.bin"
    if not path.exists():
        pytest.fail(f"{path} missing: ../shared/data is incomplete")
    block, _ = parse_block(path.read_bytes())
    coinbase = block.txs[0]
    reserved = coinbase.inputs[0].witness[0]
    script = witness_commitment_script([t.wtxid() for t in block.txs[1:]], reserved)
    assert script in [o.script_pubkey for o in coinbase.outputs]


def test_segwit_transaction_txid_ignores_the_witness_and_wtxid_does_not() -> None:
    base = Tx(2, (TxIn(b"\x11" * 32, 1, b""),), (TxOut(10_000, b"\x00\x14" + bytes(20)),))
    signed = Tx(
        2, (TxIn(b"\x11" * 32, 1, b"", 0xFFFFFFFF, (b"\x30" * 71, b"\x02" * 33)),), base.outputs
    )
    assert signed.txid() == base.txid()
    assert signed.wtxid() != signed.txid()
    assert signed.serialize()[4:6] == b"\x00\x01"
    assert base.serialize()[4:6] != b"\x00\x01"


def test_vsize_of_a_one_input_p2wpkh_spend_is_the_textbook_110() -> None:
    tx = Tx(
        2,
        (TxIn(bytes(32), 0, b"", 0xFFFFFFFD, (b"\x30" * 72, b"\x02" * 33)),),
        (TxOut(1, b"\x00\x14" + bytes(20)), TxOut(2, b"\x00\x14" + bytes(20))),
    )
    assert tx.vsize() == 141  # 10.5 overhead + 68 input + 2 × 31 outputs, rounded up
    assert tx.weight() == tx_weight(tx.inputs, tx.outputs)


def test_compact_size_uses_the_shortest_of_the_four_encodings() -> None:
    assert compact_size(0xFC) == b"\xfc"
    assert compact_size(0xFD) == b"\xfd\xfd\x00"
    assert compact_size(0x10000) == b"\xfe\x00\x00\x01\x00"
    assert compact_size(1 << 32) == b"\xff" + (1 << 32).to_bytes(8, "little")


def test_merkle_root_doubles_the_last_hash_of_an_odd_level() -> None:
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    assert merkle_root([a, b, c]) == sha256d(sha256d(a + b) + sha256d(c + c))


def test_bits_to_target_expands_mainnet_and_regtest_difficulty_one() -> None:
    assert bits_to_target(0x1D00FFFF) == 0xFFFF << 208
    assert bits_to_target(REGTEST_BITS) == 0x7FFFFF << 232


def test_mined_header_meets_its_target() -> None:
    header = mine(
        BlockHeader(0x20000000, b"\x01" * 32, b"\x02" * 32, 1_514_764_800, REGTEST_BITS, 0)
    )
    assert int.from_bytes(header.hash(), "little") <= bits_to_target(REGTEST_BITS)


def test_parse_tx_rejects_truncated_bytes() -> None:
    data = genesis_coinbase().serialize()
    with pytest.raises(ValueError, match="truncated"):
        parse_tx(data[:-3])


# ---------------------------------------------------------------------------------------------
# hypothesis round trips

_bytes = st.binary(max_size=80)
_txin = st.builds(
    TxIn,
    st.binary(min_size=32, max_size=32),
    st.integers(0, 0xFFFFFFFF),
    _bytes,
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.binary(max_size=300), max_size=4).map(tuple),
)
_txout = st.builds(TxOut, st.integers(0, 21_000_000 * 100_000_000), _bytes)
_tx = st.builds(
    Tx,
    st.integers(-(2**31), 2**31 - 1),
    st.lists(_txin, min_size=1, max_size=5).map(tuple),
    st.lists(_txout, max_size=5).map(tuple),
    st.integers(0, 0xFFFFFFFF),
)


@settings(max_examples=200, deadline=None)
@given(_tx)
def test_any_transaction_round_trips_through_parse_tx(tx: Tx) -> None:
    data = b"junk" + tx.serialize()
    parsed, end = parse_tx(data, 4)
    assert parsed == tx
    assert end == len(data)
    assert parsed.txid() == tx.txid()
    assert tx_weight(tx.inputs, tx.outputs) == tx.weight()


@settings(max_examples=50, deadline=None)
@given(st.lists(_tx, min_size=1, max_size=4), st.integers(0, 0xFFFFFFFF))
def test_any_block_round_trips_through_parse_block(txs: list[Tx], time: int) -> None:
    header = BlockHeader(
        4, b"\x07" * 32, merkle_root([t.txid() for t in txs]), time, REGTEST_BITS, 9
    )
    block = Block(header, tuple(txs))
    parsed, end = parse_block(block.serialize())
    assert parsed == block
    assert end == len(block.serialize())
