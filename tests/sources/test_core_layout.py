"""blk files as a running Bitcoin Core 28+ node leaves them: XORed records, a pre-allocated raw
zero tail in the newest file, and a record the node is still writing at its end.

The files are written by the project's own writer (`BlockFileWriter(preallocate=True)`), and the
first test checks its bytes against Core's rules (docs/design/store.md): each record stored as
`byte ^ key[file offset % 8]` (`AutoFile` with `m_xor`), the newest file extended with zeros on
disk to a multiple of 16 MiB (`FlatFileSeq::Allocate` -> `AllocateFileRange`, not through the
key), older files cut back to the bytes used (`FlushBlockFile(fFinalize=true)`).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from chainsleuth.core.errors import InputError
from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block
from chainsleuth.simulate.blockfiles import BLOCKFILE_CHUNK_SIZE, BlockFileWriter, xor_bytes
from chainsleuth.sources.blkfiles import scan_blocks_dir
from chainsleuth.store.ingest import ingest_blocks_dir
from tests.conftest import dump_views, extend_chain, raw, regtest_genesis, write_blocks_dir

KEY = bytes.fromhex("5a17c3e9b2468df1")  # Core draws a random key; this one has no zero byte
MAX_FILE = 6_000  # small blk files, so the chain spans several (Core: 128 MiB)


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    blocks = extend_chain([regtest_genesis()], 24, seed=5, tag=b"core")
    assert any(t.has_witness for b in blocks for t in b.txs)
    return blocks


@pytest.fixture(scope="module")
def one_shot(chain: list[Block], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The chain ingested from plain blk files (no key, no padding), in one run."""
    root = tmp_path_factory.mktemp("one-shot")
    blocks = write_blocks_dir(root / "blocks", [raw(chain)])
    ingest_blocks_dir(blocks, root / "data")
    return dump_views(root / "data")


def write_core_dir(directory: Path, chain: list[Block], key: bytes | None) -> list[tuple]:
    """A blocks/ directory as Core 28+ writes it; returns (file, record offset, record bytes)."""
    writer = BlockFileWriter(
        directory, REGTEST.magic, max_file_size=MAX_FILE, xor_key=key, preallocate=True
    )
    records = []
    for block in raw(chain):
        number, offset = writer.write(block)
        record = REGTEST.magic + struct.pack("<I", len(block)) + block
        records.append((directory / f"blk{number:05d}.dat", offset - 8, record))
    writer.close()
    return records


@pytest.mark.parametrize("key", [KEY, None], ids=["xor", "no-xor"])
def test_writer_lays_files_out_as_core_does(
    tmp_path: Path, chain: list[Block], key: bytes | None
) -> None:
    records = write_core_dir(tmp_path / "blocks", chain, key)
    files = sorted((tmp_path / "blocks").glob("blk*.dat"))
    assert len(files) >= 3
    assert ((tmp_path / "blocks" / "xor.dat").read_bytes() if key else None) == key
    for path in files:
        mine = [(offset, record) for p, offset, record in records if p == path]
        used = mine[-1][0] + len(mine[-1][1])
        assert [offset for offset, _ in mine] == [0] + [o + len(r) for o, r in mine[:-1]]
        data = path.read_bytes()
        plain = b"".join(r for _, r in mine)
        stored = plain if key is None else xor_bytes(plain, key, 0)
        assert data[:used] == stored
        if key is not None:  # every byte went through the key: nothing of the record is plain
            assert data[:4] != REGTEST.magic
        if path == files[-1]:  # the node's current file: raw zeros up to the next 16 MiB
            assert len(data) == BLOCKFILE_CHUNK_SIZE
            assert data[used:].count(0) == len(data) - used
        else:  # finalised: cut back to the bytes used
            assert len(data) == used


@pytest.mark.parametrize("key", [KEY, None], ids=["xor", "no-xor"])
def test_core_28_blocks_dir_with_a_preallocated_tail_ingests(
    tmp_path: Path, chain: list[Block], one_shot: dict[str, list], key: bytes | None
) -> None:
    blocks = tmp_path / "blocks"
    records = write_core_dir(blocks, chain, key)
    newest = records[-1][0]
    if key is not None:
        # The tail read through xor.dat is the key pattern, not zeros: what used to stop ingest
        # with "wrong magic 5a17c3e9, expected fabfb5da".
        end = records[-1][1] + len(records[-1][2])
        tail = newest.read_bytes()[end : end + 16]
        assert tail == bytes(16) and xor_bytes(tail, key, end) != bytes(16)
    scan = scan_blocks_dir(blocks)
    assert len(scan.records) == len(chain) and scan.torn is None
    report = ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=4_000)
    assert (report.n_blocks, report.left_for_next_run) == (len(chain), None)
    assert dump_views(tmp_path / "data") == one_shot


def tear(path: Path, record_offset: int, record: bytes, cut: int, tail: bool) -> bytes:
    """Make `path` look as it does while the node writes `record`: its first `cut` bytes are on
    disk (through the key), the rest of the record is still raw zeros of the pre-allocated tail
    (`tail`), or the file ends there (no pre-allocation). Returns the full file, to restore."""
    full = path.read_bytes()
    start = record_offset + cut
    end = record_offset + len(record)
    torn = full[:start] + bytes(end - start) + full[end:] if tail else full[:start]
    assert torn != full[: len(torn)] or not tail
    path.write_bytes(torn)
    return full


CUTS = {
    "magic": 2,  # the record's magic half written
    "length": 6,  # magic and half the length
    "block header": 8 + 40,
    "transactions": 8 + 200,
    "last bytes": -12,  # all but the end of the last transaction
}


@pytest.mark.parametrize("tail", [True, False], ids=["preallocated", "at-eof"])
@pytest.mark.parametrize("key", [KEY, None], ids=["xor", "no-xor"])
@pytest.mark.parametrize("where", list(CUTS))
def test_record_being_written_is_left_for_the_next_run_then_taken(
    tmp_path: Path,
    chain: list[Block],
    one_shot: dict[str, list],
    key: bytes | None,
    where: str,
    tail: bool,
) -> None:
    blocks = tmp_path / "blocks"
    records = write_core_dir(blocks, chain, key)
    path, offset, record = records[-1]
    cut = CUTS[where] % len(record)
    full = tear(path, offset, record, cut, tail)

    report = ingest_blocks_dir(blocks, tmp_path / "data", batch_bytes=4_000)
    assert report.n_blocks == len(chain) - 1 and report.tip_height == len(chain) - 2
    left = report.left_for_next_run
    assert left is not None and (left["file"], left["offset"]) == (str(path), offset)
    assert 0 < left["bytes"] <= cut  # what is on disk of it (up to its last non-zero byte)

    # a run while the record is still torn changes nothing
    again = ingest_blocks_dir(blocks, tmp_path / "data")
    assert again.n_blocks == 0 and again.left_for_next_run == left

    path.write_bytes(full)  # the node finishes writing the block
    report = ingest_blocks_dir(blocks, tmp_path / "data")
    assert (report.n_blocks, report.left_for_next_run) == (1, None)
    assert report.tip_height == len(chain) - 1
    assert dump_views(tmp_path / "data") == one_shot


def test_torn_record_then_more_blocks_is_the_same_as_one_run(
    tmp_path: Path, chain: list[Block], one_shot: dict[str, list]
) -> None:
    """The node finishes the torn block and writes the rest of the chain after it."""
    blocks = tmp_path / "blocks"
    records = write_core_dir(blocks, chain[:-3], KEY)
    path, offset, record = records[-1]
    tear(path, offset, record, 8 + 120, tail=True)
    first = ingest_blocks_dir(blocks, tmp_path / "data")
    assert first.n_blocks == len(chain) - 4 and first.left_for_next_run is not None
    shutil.rmtree(blocks)
    write_core_dir(blocks, chain, KEY)
    second = ingest_blocks_dir(blocks, tmp_path / "data")
    assert (second.n_blocks, second.left_for_next_run) == (4, None)
    assert dump_views(tmp_path / "data") == one_shot


@pytest.mark.parametrize("tail", [True, False], ids=["zero-filled", "cut"])
@pytest.mark.parametrize("cut", [3, 8 + 40, -12])
def test_torn_record_in_an_older_file_is_an_input_error(
    tmp_path: Path, chain: list[Block], cut: int, tail: bool
) -> None:
    blocks = tmp_path / "blocks"
    records = write_core_dir(blocks, chain, KEY)
    older = records[0][0]
    assert older != records[-1][0]
    path, offset, record = [r for r in records if r[0] == older][-1]
    tear(path, offset, record, cut % len(record), tail)
    with pytest.raises(InputError) as info:
        ingest_blocks_dir(blocks, tmp_path / "data")
    error = info.value
    assert error.path == str(older) and error.field
    assert offset <= error.offset < offset + len(record)
    if cut > 0 or not tail:  # (a torn end of the block itself fails its merkle root)
        assert "only the newest blk file" in str(error)


def run_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_says_what_it_left_for_the_next_run_and_errors_in_one_line(
    tmp_path: Path, chain: list[Block]
) -> None:
    blocks = tmp_path / "blocks"
    records = write_core_dir(blocks, chain, KEY)
    path, offset, record = records[-1]
    full = tear(path, offset, record, 8 + 200, tail=True)
    done = run_cli(tmp_path / "data", "ingest", "--blocks-dir", str(blocks))
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "bytes for the next run" in text and f"byte offset {offset}" in text
    summary = json.loads(
        run_cli(tmp_path / "data", "ingest", "--blocks-dir", str(blocks), "--json").stdout
    )
    assert summary["blocks"] == 0 and summary["left_for_next_run"]["offset"] == offset
    path.write_bytes(full)
    summary = json.loads(
        run_cli(tmp_path / "data", "ingest", "--blocks-dir", str(blocks), "--json").stdout
    )
    assert summary["blocks"] == 1 and summary["left_for_next_run"] is None

    # the same torn record in a file that is not the newest: one line, exit 2, no traceback
    older, o_offset, o_record = [r for r in records if r[0] == records[0][0]][-1]
    tear(older, o_offset, o_record, 5, tail=False)
    done = run_cli(tmp_path / "other", "ingest", "--blocks-dir", str(blocks))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert str(older) in done.stderr and "field record header" in done.stderr
