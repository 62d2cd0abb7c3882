"""Read a Bitcoin Core `blocks/` directory directly: blk*.dat records, xor.dat, the header tree.

No node needs to run and no LevelDB index is read. Bitcoin Core appends each block it receives
to the current blk file as `magic (4) | length (u32 LE) | block`, so files hold blocks out of
height order, stale (orphaned) blocks, and zero padding at their ends (files are pre-allocated).
Since Core 28 every byte may be XORed with the 8-byte key in `xor.dat` (by file offset).

`scan_blocks_dir` lists every record's header; `best_chain` picks the chain with the most
cumulative proof of work, the way a node does; `read_blocks` returns raw block bytes. The ingest
orchestrator (`chainsleuth.store.ingest`) calls these three.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

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
class ScanResult:
    network: Network
    records: list[BlockRecord]
    files: list[Path]
    xor_key: bytes


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


def _scan_file(
    path: Path, number: int, key: bytes, magic: bytes | None
) -> tuple[list[BlockRecord], bytes | None]:
    records: list[BlockRecord] = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = _unxor(f.read(8), key, pos)
            if head[:4] == b"\0\0\0\0":
                # Pre-allocated zero padding; Core leaves it at the end of a file.
                rest = _unxor(f.read(), key, pos + 8)
                tail = head[4:] + rest
                nonzero = np.flatnonzero(np.frombuffer(tail, np.uint8))
                if nonzero.shape[0] == 0:
                    break
                pos = pos + 4 + int(nonzero[0])
                continue
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
            if length < 80 or pos + 8 + length > size:
                raise InputError(
                    f"record length {length} runs past the end of the file ({size} bytes)"
                    if length >= 80
                    else f"record length {length} is shorter than a block header",
                    path=str(path),
                    offset=pos + 4,
                    field="record length",
                )
            header = _unxor(f.read(80), key, pos + 8)
            block_hash = hashlib.sha256(hashlib.sha256(header).digest()).digest()
            bits, time = (
                struct.unpack_from("<I", header, 72)[0],
                struct.unpack_from("<I", header, 68)[0],
            )
            records.append(
                BlockRecord(number, pos + 8, length, block_hash, header[4:36], bits, time)
            )
            pos += 8 + length
    return records, magic


def scan_blocks_dir(blocks_dir: Path, network: str = "auto") -> ScanResult:
    """Every block record in a blocks directory, in file order."""
    blocks_dir = Path(blocks_dir)
    files = blk_files(blocks_dir)
    key = read_xor_key(blocks_dir)
    magic = None if network == "auto" else network_by_name(network).magic
    records: list[BlockRecord] = []
    for path in files:
        number = int(_BLK_NAME.match(path.name).group(1))  # type: ignore[union-attr]
        found, magic = _scan_file(path, number, key, magic)
        records.extend(found)
    if magic is None:
        raise InputError("the blk files hold no blocks", path=str(blocks_dir))
    return ScanResult(BY_MAGIC[magic], records, files, key)


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
