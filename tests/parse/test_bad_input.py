"""Malformed blocks and blocks directories: always an InputError that names where and what, never
another exception; and what a real blocks/ directory holds that is not malformed (zero padding,
blocks out of order, xor.dat obfuscation, stale blocks, a reorg) ingests correctly."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core.errors import InputError
from chainsleuth.core.network import MAIN, REGTEST
from chainsleuth.parse.blocks import parse_blocks
from chainsleuth.parse.serialize import REGTEST_BITS, Block, BlockHeader, Tx, TxIn, TxOut
from chainsleuth.sources.blkfiles import best_chain, scan_blocks_dir
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.layout import ARRAYS
from chainsleuth.store.store import Store
from tests.conftest import (
    blk_records,
    copy_nbitcoin,
    dump_views,
    extend_chain,
    raw,
    read_blk,
    regtest_genesis,
    write_blocks_dir,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BLOCK_170 = read_blk(SHARED / "mainnet-blocks" / "blk" / "nbitcoin" / "blk00000.dat")[170]
HAL_INPUT_SCRIPT_SIG = 257  # offset in block 170 of the Satoshi -> Hal tx's scriptSig
MAX_MONEY = 21_000_000 * 100_000_000


def parse_error(data: bytes) -> InputError:
    """The InputError parse_blocks raises on `data` (failing the test on any other outcome)."""
    with pytest.raises(InputError) as info:
        parse_blocks([data], where=["test block"])
    error = info.value
    assert error.path == "test block"
    assert isinstance(error.offset, int) and error.field
    assert f"byte offset {error.offset}" in str(error) and f"field {error.field}" in str(error)
    return error


def segwit_block() -> bytes:
    """A small regtest block with segwit spends (witness data to cut through)."""
    chain = extend_chain([regtest_genesis()], 3, seed=7, tag=b"cut")
    block = next(b for b in chain if any(t.has_witness for t in b.txs[1:]))
    return block.serialize()


# ---------------------------------------------------------------------------------------------
# parse_blocks


def test_every_truncation_of_a_real_block_is_an_input_error_within_the_data() -> None:
    for cut in range(len(BLOCK_170)):
        error = parse_error(BLOCK_170[:cut])
        assert 0 <= error.offset <= cut, cut


def test_every_truncation_of_a_segwit_block_is_an_input_error_within_the_data() -> None:
    data = segwit_block()
    fields = set()
    for cut in range(len(data)):
        error = parse_error(data[:cut])
        assert 0 <= error.offset <= cut, cut
        fields.add(error.field)
    assert {"block header", "witness item count", "witness item", "locktime"} <= fields


def test_truncated_header_names_the_header_field() -> None:
    error = parse_error(BLOCK_170[:79])
    assert (error.offset, error.field) == (0, "block header")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_bytes_are_an_input_error(data: bytes) -> None:
    parse_error(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(80, len(BLOCK_170) - 1), st.integers(1, 255))
def test_any_flipped_byte_in_the_transactions_of_a_legacy_block_is_an_input_error(
    position: int, mask: int
) -> None:
    data = bytearray(BLOCK_170)
    data[position] ^= mask
    parse_error(bytes(data))


def test_flipped_byte_in_a_scriptsig_is_a_merkle_root_mismatch() -> None:
    data = bytearray(BLOCK_170)
    data[HAL_INPUT_SCRIPT_SIG + 10] ^= 0x01
    error = parse_error(bytes(data))
    assert (error.offset, error.field) == (36, "merkle root")
    assert "does not match" in str(error)


def test_non_canonical_transaction_count_is_an_input_error() -> None:
    data = BLOCK_170[:80] + b"\xfd\x02\x00" + BLOCK_170[81:]  # 2 written in three bytes
    error = parse_error(data)
    assert (error.offset, error.field) == (80, "transaction count")
    assert "non-canonical" in str(error)


def test_non_canonical_script_length_is_an_input_error() -> None:
    length_at = HAL_INPUT_SCRIPT_SIG - 1
    assert BLOCK_170[length_at] == 72
    data = BLOCK_170[:length_at] + b"\xfd\x48\x00" + BLOCK_170[length_at + 1 :]
    error = parse_error(data)
    assert (error.offset, error.field) == (length_at, "scriptSig length")


def test_output_value_above_21_million_btc_is_an_input_error() -> None:
    batch = parse_blocks([BLOCK_170])
    value_at = int(batch.out_script_offset[1]) - 9  # 8 value bytes, then a 1-byte length
    assert struct.unpack_from("<q", BLOCK_170, value_at)[0] == int(batch.out_value[1])
    for value in (MAX_MONEY + 1, 2**63 - 1, -1):
        data = bytearray(BLOCK_170)
        struct.pack_into("<q", data, value_at, value)
        error = parse_error(bytes(data))
        assert (error.offset, error.field) == (value_at, "output value")


def test_output_value_of_exactly_21_million_btc_is_accepted_by_the_parser() -> None:
    tx = Tx(1, (TxIn(bytes(32), 0xFFFFFFFF, b"\x01\x01"),), (TxOut(MAX_MONEY, b"\x51"),))
    header = BlockHeader(1, bytes(32), tx.txid(), 0, REGTEST_BITS, 0)
    assert parse_blocks([Block(header, (tx,)).serialize()]).out_value.tolist() == [MAX_MONEY]


def test_segwit_flag_other_than_one_is_an_input_error() -> None:
    data = bytearray(segwit_block())
    batch = parse_blocks([bytes(data)])
    t = int(np.flatnonzero(batch.tx_witness_start >= 0)[-1])
    marker_at = int(batch.tx_start[t]) + 4  # after the version
    assert data[marker_at : marker_at + 2] == b"\x00\x01"
    data[marker_at + 1] = 0x02
    error = parse_error(bytes(data))
    assert (error.offset, error.field) == (marker_at, "segwit marker/flag")


def test_bytes_after_the_last_transaction_are_an_input_error() -> None:
    error = parse_error(BLOCK_170 + b"\x00")
    assert (error.offset, error.field) == (
        len(BLOCK_170),
        "block length (bytes left over after the last transaction)",
    )


def test_error_in_the_second_block_of_a_batch_names_that_block() -> None:
    with pytest.raises(InputError) as info:
        parse_blocks([BLOCK_170, BLOCK_170[:100]], where=["first", "second"])
    assert info.value.path == "second"
    assert info.value.offset <= 100


# ---------------------------------------------------------------------------------------------
# blocks directories


def record_offsets(path: Path) -> list[int]:
    """File offset of every record (its magic) in a blk file."""
    data, offset, out = path.read_bytes(), 0, []
    while offset + 8 <= len(data) and data[offset : offset + 4] != bytes(4):
        out.append(offset)
        offset += 8 + struct.unpack_from("<I", data, offset + 4)[0]
    return out


def test_wrong_magic_in_a_blk_file_is_an_input_error_at_the_record(tmp_path: Path) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    path = blocks / "blk00001.dat"
    at = record_offsets(path)[5]
    data = bytearray(path.read_bytes())
    data[at : at + 4] = bytes.fromhex("0b110907")  # testnet3's magic
    path.write_bytes(bytes(data))
    for run in (lambda: scan_blocks_dir(blocks), lambda: ingest_blocks_dir(blocks, tmp_path / "d")):
        with pytest.raises(InputError) as info:
            run()
        assert (info.value.path, info.value.offset, info.value.field) == (str(path), at, "magic")


def test_truncated_record_in_a_blk_file_is_an_input_error(tmp_path: Path) -> None:
    # Only the newest blk file may end in a record the node is still writing
    # (tests/sources/test_core_layout.py); here the node has moved on to blk00002.dat.
    blocks = copy_nbitcoin(tmp_path / "blocks")
    (blocks / "blk00002.dat").write_bytes(bytes(1 << 16))
    path = blocks / "blk00001.dat"
    last = record_offsets(path)[-1]
    full = path.read_bytes()
    for cut in (last + 8, last + 80, last + 100, len(full) - 1):
        path.write_bytes(full[:cut])
        with pytest.raises(InputError) as info:
            scan_blocks_dir(blocks)
        assert (info.value.path, info.value.offset) == (str(path), last + 4)
        assert info.value.field == "record length"


def test_corrupt_block_in_a_blk_file_names_the_file_and_the_offset_in_it(tmp_path: Path) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    path = blocks / "blk00000.dat"
    block_at = record_offsets(path)[170] + 8
    data = bytearray(path.read_bytes())
    data[block_at + HAL_INPUT_SCRIPT_SIG + 10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        ingest_blocks_dir(blocks, tmp_path / "data")
    assert (info.value.path, info.value.offset) == (str(path), block_at + 36)
    assert info.value.field == "merkle root"


def test_zero_padding_at_the_end_of_blk_files_is_accepted(
    tmp_path: Path, nbitcoin_views: dict[str, list]
) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    for name, zeros in (("blk00000.dat", 1 << 16), ("blk00001.dat", 5)):
        with open(blocks / name, "ab") as f:
            f.write(bytes(zeros))
    assert len(scan_blocks_dir(blocks).records) == 600
    ingest_blocks_dir(blocks, tmp_path / "data")
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_blocks_stored_out_of_height_order_ingest_to_the_same_store(
    tmp_path: Path, nbitcoin_raw_blocks: list[bytes], nbitcoin_views: dict[str, list]
) -> None:
    shuffled = list(nbitcoin_raw_blocks)
    random.Random(1).shuffle(shuffled)
    blocks = write_blocks_dir(tmp_path / "blocks", [shuffled[:250], shuffled[250:]], MAIN.magic)
    ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=20_000)
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_xor_obfuscated_blocks_dir_ingests_identically(
    tmp_path: Path, nbitcoin_views: dict[str, list]
) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    key = bytes.fromhex("a1b2c3d4e5f60718")
    for name in ("blk00000.dat", "blk00001.dat"):
        data = np.frombuffer((blocks / name).read_bytes(), np.uint8)
        mask = np.resize(np.frombuffer(key, np.uint8), data.shape[0])  # key[offset % 8]
        (blocks / name).write_bytes((data ^ mask).tobytes())
    (blocks / "xor.dat").write_bytes(key)
    scan = scan_blocks_dir(blocks)
    assert scan.xor_key == key and len(scan.records) == 600
    ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=30_000)
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_xor_dat_of_the_wrong_size_is_an_input_error(tmp_path: Path) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks", ["blk00000.dat"])
    (blocks / "xor.dat").write_bytes(bytes(7))
    with pytest.raises(InputError) as info:
        scan_blocks_dir(blocks)
    assert info.value.field == "xor key"


# ---------------------------------------------------------------------------------------------
# stale blocks and a reorg through blk files (a regtest chain: mainnet work is too slow to mine)


@pytest.fixture(scope="module")
def regtest_fork() -> dict[str, list[Block]]:
    main = extend_chain([regtest_genesis()], 6, seed=11, tag=b"main")  # heights 0..6
    # A sibling of block 4 that spends differently, then four more blocks on it (heights 4..8).
    branch = extend_chain(main[:4], 5, seed=12, tag=b"fork")
    assert branch[4].header.hash() != main[4].header.hash()
    return {"main": main, "branch": branch}


def test_stale_sibling_block_is_left_out_of_the_best_chain_and_the_store(
    tmp_path: Path, regtest_fork: dict[str, list[Block]]
) -> None:
    main, stale = regtest_fork["main"], regtest_fork["branch"][4]
    # The node saw the sibling after its own block 4, as Core appends whatever arrives.
    blocks = write_blocks_dir(tmp_path / "blocks", [raw(main[:5]) + raw([stale]) + raw(main[5:])])
    scan = scan_blocks_dir(blocks)
    assert scan.network == REGTEST
    selection = best_chain(scan.records, scan.network)
    assert [r.hash for r in selection.chain] == [b.header.hash() for b in main]
    assert [r.hash for r in selection.stale] == [stale.header.hash()]
    report = ingest_blocks_dir(blocks, tmp_path / "data")
    assert report.stale_blocks == [stale.header.hash_hex()]
    store = Store.open(tmp_path / "data")
    hashes = store.sql("SELECT hash FROM blocks ORDER BY height").column("hash").to_pylist()
    assert hashes == [b.header.hash_hex() for b in main]
    stale_txids = [t.txid_hex() for t in stale.txs]
    found = store.sql(
        "SELECT count(*) AS n FROM txs WHERE list_contains(?, txid)", [stale_txids]
    ).column("n")
    assert found.to_pylist() == [0]


def test_stale_branch_that_gains_more_work_reorgs_the_store_to_it(
    tmp_path: Path, regtest_fork: dict[str, list[Block]]
) -> None:
    main, branch = regtest_fork["main"], regtest_fork["branch"]
    blocks = write_blocks_dir(
        tmp_path / "blocks", [raw(main[:5]) + raw([branch[4]]) + raw(main[5:])]
    )
    ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=1_000)
    assert Store.open(tmp_path / "data").tip == (6, main[6].header.hash_hex())
    # The branch grows past the old tip in the next blk file: 4 more blocks, heights 5..8.
    (blocks / "blk00001.dat").write_bytes(blk_records(raw(branch[5:]), REGTEST.magic))
    report = ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=1_000)
    assert (report.fork_height, report.rolled_back, report.n_blocks) == (3, 3, 5)
    assert Store.open(tmp_path / "data").tip == (8, branch[8].header.hash_hex())
    # Same content as ingesting the final blocks directory into an empty store.
    ingest_blocks_dir(blocks, tmp_path / "fresh")
    assert dump_views(tmp_path / "data") == dump_views(tmp_path / "fresh")
    reorged, fresh = Store.open(tmp_path / "data"), Store.open(tmp_path / "fresh")
    for name in ARRAYS:
        assert np.array_equal(reorged.array(name), fresh.array(name)), name


def test_flipped_witness_byte_breaks_the_witness_commitment() -> None:
    raw = bytearray((SHARED / "mainnet-blocks/raw/0866342.bin").read_bytes())
    batch = parse_blocks([bytes(raw)])
    t = int(np.flatnonzero(batch.tx_witness_start >= 0)[0])
    inside_witness = int(batch.tx_witness_start[t]) + 3
    raw[inside_witness] ^= 0x01
    with pytest.raises(InputError) as error:
        parse_blocks([bytes(raw)])
    assert error.value.field == "coinbase witness commitment"
    assert "does not match" in str(error.value)
