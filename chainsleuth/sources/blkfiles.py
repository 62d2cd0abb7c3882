"""Read a Bitcoin Core `blocks/` directory directly: blk*.dat records, xor.dat, the header tree.

No node needs to run and no LevelDB index is read. Bitcoin Core appends each block it receives
to the current blk file as `magic (4) | length (u32 LE) | block`, so files hold blocks out of
height order, stale (orphaned) blocks, and zero padding at their ends (files are pre-allocated).
Since Core 28 every byte Core writes is XORed with the 8-byte key in `xor.dat` (by file offset).

Padding is decided on the raw bytes: Core extends the file it writes in 16 MiB chunks
(`FlatFileSeq::Allocate` -> `AllocateFileRange`) without going through the key, so that tail
is raw zeros on disk and would read as the key pattern once XORed (docs/design/store.md). The
newest blk file may also end in a record the node is still writing (a torn header or body): the
scan leaves it out and reports it (`ScanResult.torn`), and the next run takes it once it is
complete. A torn record in any other file is an `InputError` naming the file, offset and field.

`scan_blocks_dir` lists every record's header; `best_chain` picks the chain with the most
cumulative proof of work, the way a node does; `read_blocks` returns raw block bytes. The ingest
orchestrator (`chainsleuth.store.ingest`) calls these three.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from chainsleuth.core.errors import InputError
from chainsleuth.core.network import BY_MAGIC, Network, network_by_name

_BLK_NAME = re.compile(r"^blk(\d{5})\.dat$")


@dataclass(frozen=True)
class BlockRecord:
    """Where one block lies in the blk files, and its header fields."""

    file_number: int
    offset: int  # byte offset of the block (after magic and length) in the file
    length: int
    hash: bytes  # internal byte order
    prev_hash: bytes
    bits: int
    time: int

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()


@dataclass(frozen=True)
class TornRecord:
    """The newest blk file's last record, still being written by the node: left for next run."""

    path: Path
    offset: int  # file offset of the record (its magic)
    bytes_written: int  # bytes of the record on disk so far (up to its last non-zero byte)
    field: str  # what is incomplete: "record header" or "block"


@dataclass(frozen=True)
class ScanResult:
    network: Network
    records: list[BlockRecord]
    files: list[Path]
    xor_key: bytes
    torn: TornRecord | None = None


@dataclass
class ScanCache:
    """What earlier scans found in finished blk files, for scanning the same directory again.

    `chainsleuth ingest --follow` scans every few seconds; the node only appends to its newest
    file and cuts a file back to its used size when it moves on, so a file that is not the
    newest and whose size and mtime are unchanged holds the same records. Only the others are
    read again.
    """

    files: dict[Path, tuple[int, int, list[BlockRecord]]] = field(default_factory=dict)
    magic: bytes | None = None
    key: bytes | None = None


def read_xor_key(blocks_dir: Path) -> bytes:
    """The 8-byte obfuscation key of Core 28+, or 8 zero bytes when there is none."""
    path = blocks_dir / "xor.dat"
    if not path.exists():
        return bytes(8)
    key = path.read_bytes()
    if len(key) != 8:
        raise InputError(
            f"xor.dat must hold 8 bytes, found {len(key)}", path=str(path), field="xor key"
        )
    return key


def _unxor(data: bytes, key: bytes, file_offset: int) -> bytes:
    if key == bytes(8) or not data:
        return data
    arr = np.frombuffer(data, np.uint8)
    rolled = np.frombuffer(key[file_offset % 8 :] + key[: file_offset % 8], np.uint8)
    mask = np.resize(rolled, arr.shape[0])
    return (arr ^ mask).tobytes()


def blk_files(blocks_dir: Path) -> list[Path]:
    """blk?????.dat files in number order."""
    if not blocks_dir.is_dir():
        raise InputError("not a directory (expected Bitcoin Core's blocks/)", path=str(blocks_dir))
    files = sorted(
        (p for p in blocks_dir.iterdir() if _BLK_NAME.match(p.name)),
        key=lambda p: int(_BLK_NAME.match(p.name).group(1)),  # type: ignore[union-attr]
    )
    if not files:
        raise InputError("no blk*.dat files found", path=str(blocks_dir))
    return files


_CHUNK = 1 << 20


def _is_data(raw: np.ndarray, key: bytes, file_offset: int) -> np.ndarray:
    """Which bytes hold data rather than padding.

    A byte is padding when it is zero on disk (space Core pre-allocated and never wrote through
    the key) or zero once un-XORed (zeros written through the key, as pre-28 files and some
    tools hold them). A block never starts with padding and its header is never all padding.
    """
    data = raw != 0
    if key != bytes(8):
        data &= np.frombuffer(_unxor(raw.tobytes(), key, file_offset), np.uint8) != 0
    return data


def _data_end(f: BinaryIO, size: int, key: bytes) -> int:
    """One past the last data byte of the file (0 when it holds only padding).

    Reads backwards from the end in growing chunks: a finished file ends within a few bytes of
    its last data byte, the file being written within its pre-allocated tail (< 16 MiB).
    """
    end, chunk = size, 4096
    while end > 0:
        start = max(0, end - chunk)
        chunk = min(chunk * 4, _CHUNK)
        f.seek(start)
        found = np.flatnonzero(_is_data(np.frombuffer(f.read(end - start), np.uint8), key, start))
        if found.shape[0]:
            return start + int(found[-1]) + 1
        end = start
    return 0


def _next_data(f: BinaryIO, pos: int, data_end: int, key: bytes) -> int:
    """The first data byte at or after `pos` (there is one before `data_end`)."""
    while pos < data_end:
        f.seek(pos)
        chunk = np.frombuffer(f.read(min(_CHUNK, data_end - pos)), np.uint8)
        found = np.flatnonzero(_is_data(chunk, key, pos))
        if found.shape[0]:
            return pos + int(found[0])
        pos += chunk.shape[0]
    return data_end


def _complete_block(body: bytes) -> bool:
    """Whether a record's bytes are a whole block: it parses, its merkle root and witness
    commitment match (a torn body reads as zeros where the node has not written yet)."""
    from chainsleuth.parse.blocks import parse_blocks

    try:
        parse_blocks([body], where=["last record"])
    except InputError:
        return False
    return True


def _scan_file(
    path: Path, number: int, key: bytes, magic: bytes | None, newest: bool
) -> tuple[list[BlockRecord], bytes | None, TornRecord | None]:
    """The records of one blk file; in the newest file, a torn last record is left out.

    Every byte before `data_end` (the file's last data byte) has been written: the node writes
    in order, so everything before a written byte is written too. A record that ends past
    `data_end` may be complete (a block ends in its locktime, often zero) or torn; only the
    last record of a file can, and in the newest file it is parsed to tell which.
    """
    records: list[BlockRecord] = []
    size = path.stat().st_size
    unsure: int | None = None  # file offset of a last record that ends in padding

    def torn_or_fail(offset: int, field: str, message: str, part: str) -> TornRecord:
        if not newest:
            raise InputError(
                message + " (only the newest blk file may end in a record being written)",
                path=str(path),
                offset=offset,
                field=field,
            )
        return TornRecord(path, pos, data_end - pos, part)

    with open(path, "rb") as f:
        data_end = _data_end(f, size, key)
        pos = 0
        while pos < data_end:
            f.seek(pos)
            raw = f.read(8)
            if not _is_data(np.frombuffer(raw[:4], np.uint8), key, pos).any():
                pos = _next_data(f, pos, data_end, key)  # padding between records
                continue
            if len(raw) < 8:
                torn = torn_or_fail(
                    pos,
                    "record header",
                    f"record header cut short by the end of the file ({len(raw)} of 8 bytes)",
                    "record header",
                )
                return records, magic, torn
            if newest and data_end <= pos + 8:
                # magic and length not (all) written yet: what follows is the raw zero tail
                return records, magic, TornRecord(path, pos, data_end - pos, "record header")
            head = _unxor(raw, key, pos)
            if data_end <= pos + 8 and head[:4] != magic:
                raise InputError(
                    "record torn while it was written: zero bytes from byte offset "
                    f"{data_end} to the end of the file (only the newest blk file may end in "
                    "a record being written)",
                    path=str(path),
                    offset=pos,
                    field="record header",
                )
            if magic is None:
                if head[:4] not in BY_MAGIC:
                    raise InputError(
                        f"unknown network magic {head[:4].hex()}",
                        path=str(path),
                        offset=pos,
                        field="magic",
                    )
                magic = head[:4]
            elif head[:4] != magic:
                raise InputError(
                    f"wrong magic {head[:4].hex()}, expected {magic.hex()}",
                    path=str(path),
                    offset=pos,
                    field="magic",
                )
            (length,) = struct.unpack_from("<I", head, 4)
            if length < 80:
                raise InputError(
                    f"record length {length} is shorter than a block header",
                    path=str(path),
                    offset=pos + 4,
                    field="record length",
                )
            end = pos + 8 + length
            if end > size:
                torn = torn_or_fail(
                    pos + 4,
                    "record length",
                    f"record length {length} runs past the end of the file ({size} bytes)",
                    "block",
                )
                return records, magic, torn
            if end > data_end:
                if data_end < pos + 8 + 80 and not newest:
                    raise InputError(
                        "record torn while it was written: its block header ends in zero "
                        f"bytes from byte offset {data_end} to the end of the file (only the "
                        "newest blk file may end in a record being written)",
                        path=str(path),
                        offset=pos + 8,
                        field="block header",
                    )
                unsure = pos
            header = _unxor(f.read(80), key, pos + 8)
            block_hash = hashlib.sha256(hashlib.sha256(header).digest()).digest()
            bits, time = (
                struct.unpack_from("<I", header, 72)[0],
                struct.unpack_from("<I", header, 68)[0],
            )
            records.append(
                BlockRecord(number, pos + 8, length, block_hash, header[4:36], bits, time)
            )
            pos = end
        if newest and unsure is not None and records and records[-1].offset == unsure + 8:
            last = records[-1]
            f.seek(last.offset)
            if not _complete_block(_unxor(f.read(last.length), key, last.offset)):
                records.pop()
                return records, magic, TornRecord(path, unsure, data_end - unsure, "block")
    return records, magic, None


def scan_blocks_dir(
    blocks_dir: Path, network: str = "auto", cache: ScanCache | None = None
) -> ScanResult:
    """Every complete block record in a blocks directory, in file order.

    The highest-numbered blk file is the one the node writes: a record it has not finished
    there is left out and described in `torn` (None when there is none). With a `cache`,
    finished files unchanged since the last scan are not read again (see `ScanCache`).
    """
    blocks_dir = Path(blocks_dir)
    files = blk_files(blocks_dir)
    key = read_xor_key(blocks_dir)
    magic = None if network == "auto" else network_by_name(network).magic
    if cache is not None and (cache.key != key or (magic and cache.magic not in (None, magic))):
        cache.files.clear()
        cache.magic = None
    if cache is not None:
        cache.key = key
    records: list[BlockRecord] = []
    torn = None
    for k, path in enumerate(files):
        number = int(_BLK_NAME.match(path.name).group(1))  # type: ignore[union-attr]
        newest = k == len(files) - 1
        if cache is not None and not newest:
            stat = path.stat()
            seen = cache.files.get(path)
            if seen is not None and seen[:2] == (stat.st_size, stat.st_mtime_ns):
                records.extend(seen[2])
                magic = magic or cache.magic
                continue
        found, magic, torn = _scan_file(path, number, key, magic, newest)
        if cache is not None and not newest:
            cache.files[path] = (stat.st_size, stat.st_mtime_ns, found)
            cache.magic = magic
        records.extend(found)
    if magic is None:
        raise InputError("the blk files hold no blocks", path=str(blocks_dir))
    return ScanResult(BY_MAGIC[magic], records, files, key, torn)


def block_work(bits: int) -> int:
    """Expected hashes to find a block at this difficulty: 2**256 // (target + 1)."""
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    target = mantissa << (8 * (exponent - 3)) if exponent > 3 else mantissa >> (8 * (3 - exponent))
    if target <= 0 or bits & 0x00800000:
        return 0
    return (1 << 256) // (target + 1)


@dataclass(frozen=True)
class ChainSelection:
    chain: list[BlockRecord]  # height order, genesis first
    stale: list[BlockRecord]  # connected to genesis but not on the best chain
    unconnected: list[BlockRecord]  # parent never found (e.g. a partial copy of blocks/)


def best_chain(records: Sequence[BlockRecord], network: Network) -> ChainSelection:
    """The chain with the most cumulative work, from the network's genesis block.

    Ties go to the block seen first in file order, as a node keeps the first tip it received.
    """
    by_hash: dict[bytes, BlockRecord] = {}
    children: dict[bytes, list[bytes]] = {}
    for r in records:
        if r.hash in by_hash:
            continue  # the same block stored twice
        by_hash[r.hash] = r
        children.setdefault(r.prev_hash, []).append(r.hash)
    genesis = bytes.fromhex(network.genesis_hash)[::-1]
    if genesis not in by_hash:
        raise InputError(
            f"the genesis block of {network.name} ({network.genesis_hash}) is not in the blk files"
        )
    # Walk the tree from genesis (iteratively: mainnet is ~900k deep).
    work = {genesis: block_work(by_hash[genesis].bits)}
    order = [genesis]
    stack = [genesis]
    while stack:
        h = stack.pop()
        for child in children.get(h, ()):
            work[child] = work[h] + block_work(by_hash[child].bits)
            order.append(child)
            stack.append(child)
    position = {r.hash: i for i, r in reversed(list(enumerate(records)))}
    tip = max(work, key=lambda h: (work[h], -position[h]))
    chain_hashes = []
    h = tip
    while True:
        chain_hashes.append(h)
        if h == genesis:
            break
        h = by_hash[h].prev_hash
    chain_hashes.reverse()
    on_chain = set(chain_hashes)
    stale = [by_hash[h] for h in order if h not in on_chain]
    unconnected = [r for h, r in by_hash.items() if h not in work]
    return ChainSelection([by_hash[h] for h in chain_hashes], stale, unconnected)


def read_blocks(
    blocks_dir: Path, records: Sequence[BlockRecord], xor_key: bytes
) -> Iterator[bytes]:
    """Raw bytes of each record, in the order given."""
    handles: dict[int, object] = {}
    try:
        for r in records:
            f = handles.get(r.file_number)
            if f is None:
                f = open(blocks_dir / f"blk{r.file_number:05d}.dat", "rb")  # noqa: SIM115
                handles[r.file_number] = f
            f.seek(r.offset)  # type: ignore[attr-defined]
            data = f.read(r.length)  # type: ignore[attr-defined]
            yield _unxor(data, xor_key, r.offset)
    finally:
        for f in handles.values():
            f.close()  # type: ignore[attr-defined]
