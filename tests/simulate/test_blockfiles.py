"""The blk files are framed, rolled over and obfuscated the way Bitcoin Core writes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chainsleuth.core.network import REGTEST
from chainsleuth.simulate.blockfiles import BlockFileWriter, xor_bytes
from chainsleuth.simulate.economy.model import SCALES
from tests.simulate.conftest import Chain, read_records


def test_every_record_is_regtest_magic_then_length_then_a_block(world_dir: Path) -> None:
    records = read_records(world_dir / "blocks")  # raises on bad magic or a short last record
    assert len(records) >= 400


def test_small_world_spans_more_than_one_blk_file(chain: Chain) -> None:
    assert len(chain.file_sizes) >= 2
    assert sorted(chain.file_sizes) == [f"blk{i:05d}.dat" for i in range(len(chain.file_sizes))]


def test_no_blk_file_reaches_the_rollover_size(chain: Chain) -> None:
    limit = SCALES["small"].max_file_size
    assert all(size < limit for size in chain.file_sizes.values())
    # and rollover is by size: every file but the last is nearly full
    sizes = [chain.file_sizes[k] for k in sorted(chain.file_sizes)]
    assert all(size > limit * 0.9 for size in sizes[:-1])


def test_first_record_of_the_first_file_is_the_regtest_genesis_block(chain: Chain) -> None:
    first = chain.stored[0]
    assert (first.file, first.offset) == ("blk00000.dat", 8)
    assert first.block.header.hash_hex() == REGTEST.genesis_hash


def test_plain_world_has_no_xor_key_file(world_dir: Path) -> None:
    assert not (world_dir / "blocks" / "xor.dat").exists()


def test_xor_world_has_an_eight_byte_nonzero_key(xor_world_dir: Path) -> None:
    key = (xor_world_dir / "blocks" / "xor.dat").read_bytes()
    assert len(key) == 8
    assert any(key)


def test_xor_world_files_xor_back_to_the_plain_world_byte_for_byte(
    world_dir: Path, xor_world_dir: Path
) -> None:
    key = (xor_world_dir / "blocks" / "xor.dat").read_bytes()
    plain = sorted((world_dir / "blocks").glob("blk*.dat"))
    obfuscated = sorted((xor_world_dir / "blocks").glob("blk*.dat"))
    assert [p.name for p in plain] == [p.name for p in obfuscated]
    for p, x in zip(plain, obfuscated, strict=True):
        raw = x.read_bytes()
        assert raw[:4] != REGTEST.magic  # really obfuscated
        assert xor_bytes(raw, key, 0) == p.read_bytes()


def test_xor_world_truth_is_identical_to_the_plain_world(
    world_dir: Path, xor_world_dir: Path
) -> None:
    for path in sorted((world_dir / "truth").glob("*.csv")):
        other = xor_world_dir / "truth" / path.name
        assert (
            hashlib.sha256(path.read_bytes()).digest()
            == hashlib.sha256(other.read_bytes()).digest()
        )


def test_xor_uses_the_file_offset_not_the_record_offset(tmp_path: Path) -> None:
    key = bytes(range(1, 9))
    writer = BlockFileWriter(tmp_path, REGTEST.magic, 1 << 20, key)
    writer.write(b"abc")  # 11 bytes: the next record starts at offset 11, phase 3
    writer.write(b"defgh")
    writer.close()
    raw = (tmp_path / "blk00000.dat").read_bytes()
    assert raw[11] == REGTEST.magic[0] ^ key[3]
    assert xor_bytes(raw, key, 0)[11:] == REGTEST.magic + b"\x05\x00\x00\x00defgh"


def test_writer_starts_a_new_file_when_the_next_record_would_reach_the_limit(
    tmp_path: Path,
) -> None:
    writer = BlockFileWriter(tmp_path, REGTEST.magic, 30)
    assert writer.write(b"x" * 10) == (0, 8)  # 18 bytes
    assert writer.write(b"y" * 3) == (0, 26)  # 18 + 11 = 29 < 30
    assert writer.write(b"z") == (1, 8)  # 29 + 9 >= 30
    writer.close()
    assert (tmp_path / "blk00001.dat").read_bytes() == REGTEST.magic + b"\x01\x00\x00\x00z"
