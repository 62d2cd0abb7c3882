"""Writing blocks the way Bitcoin Core stores them: `blocks/blk*.dat`, optionally XOR-obfuscated.

Each record is the network magic, the block's length (4 bytes, little-endian) and the block.
A file is closed and the next one started when the next record would reach the size limit
(Core's `FindNextBlockPos`: `nSize + nAddSize >= max_blockfile_size`, 128 MiB by default).
Since Core 28 the blocks directory holds `xor.dat`, an 8-byte key, and every byte of every
blk/rev file is stored XORed with `key[file_offset % 8]`; Core writes a random key, the simulator
derives it from the seed so that a world stays reproducible. Used by `chainsleuth.simulate.chain`.

With `preallocate=True` the files are laid out as a running Core 28+ node leaves them (tests use
this; the simulator's worlds do not): before a record would cross the file's allocated size the
file is extended to the next multiple of 16 MiB (`FlatFileSeq::Allocate`, BLOCKFILE_CHUNK_SIZE,
via `AllocateFileRange`); that space is zeros on disk, never written through the key (only
`AutoFile` writes apply `m_xor`). When the next file is started the previous one is cut back to
the bytes used (`FlushBlockFile(fFinalize=true)` -> `TruncateFile`), so only the newest file has
a pre-allocated tail.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["BLOCKFILE_CHUNK_SIZE", "BlockFileWriter", "xor_bytes"]

MAX_BLOCKFILE_SIZE = 0x8000000  # 128 MiB, Bitcoin Core's default
BLOCKFILE_CHUNK_SIZE = 0x1000000  # 16 MiB: Core pre-allocates blk files in these steps


def xor_bytes(data: bytes, key: bytes, offset: int) -> bytes:
    """`data` as stored at `offset` of a file obfuscated with `key` (its own inverse)."""
    if not any(key):
        return data
    arr = np.frombuffer(data, np.uint8)
    phase = offset % len(key)
    reps = (len(data) + phase) // len(key) + 1
    stream = np.tile(np.frombuffer(key, np.uint8), reps)[phase : phase + len(data)]
    return (arr ^ stream).tobytes()


class BlockFileWriter:
    """Appends framed blocks to `blk00000.dat`, `blk00001.dat`, ... in one directory."""

    def __init__(
        self,
        blocks_dir: Path,
        magic: bytes,
        max_file_size: int = MAX_BLOCKFILE_SIZE,
        xor_key: bytes | None = None,
        *,
        preallocate: bool = False,
        chunk_size: int = BLOCKFILE_CHUNK_SIZE,
    ) -> None:
        self.dir = blocks_dir
        self.chunk_size = chunk_size if preallocate else 0
        self.magic = magic
        self.max_file_size = max_file_size
        self.key = xor_key
        blocks_dir.mkdir(parents=True, exist_ok=True)
        if xor_key is not None:
            if len(xor_key) != 8:
                raise ValueError("Bitcoin Core's xor.dat key is 8 bytes")
            (blocks_dir / "xor.dat").write_bytes(xor_key)
        self.file_no = 0
        self.size = 0
        self.paths: list[Path] = []
        self._fh: BinaryIO | None = None

    def _open(self) -> BinaryIO:
        path = self.dir / f"blk{self.file_no:05d}.dat"
        self.paths.append(path)
        self.size = 0
        self._fh = path.open("wb")
        return self._fh

    def write(self, block: bytes) -> tuple[int, int]:
        """Store one block; returns (file number, offset of the block's first byte in the file)."""
        record = self.magic + struct.pack("<I", len(block)) + block
        fh = self._fh
        if fh is None:
            fh = self._open()
        elif self.size > 0 and self.size + len(record) >= self.max_file_size:
            if self.chunk_size:
                fh.truncate(self.size)  # finalised: the pre-allocated tail is cut off
            fh.close()
            self.file_no += 1
            fh = self._open()
        offset = self.size
        if self.chunk_size:
            chunks_before = -(-offset // self.chunk_size)
            chunks_after = -(-(offset + len(record)) // self.chunk_size)
            if chunks_after > chunks_before:
                fh.truncate(chunks_after * self.chunk_size)  # raw zeros, not through the key
        fh.write(record if self.key is None else xor_bytes(record, self.key, offset))
        self.size += len(record)
        return self.file_no, offset + 8

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
