"""Writing blocks the way Bitcoin Core stores them: `blocks/blk*.dat`, optionally XOR-obfuscated.

Each record is the network magic, the block's length (4 bytes, little-endian) and the block.
A file is closed and the next one started when the next record would reach the size limit
(Core's `FindNextBlockPos`: `nSize + nAddSize >= max_blockfile_size`, 128 MiB by default).
Since Core 28 the blocks directory holds `xor.dat`, an 8-byte key, and every byte of every
blk/rev file is stored XORed with `key[file_offset % 8]`; Core writes a random key, the simulator
derives it from the seed so that a world stays reproducible. Used by `chainsleuth.simulate.chain`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["BlockFileWriter", "xor_bytes"]

MAX_BLOCKFILE_SIZE = 0x8000000  # 128 MiB, Bitcoin Core's default


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
    ) -> None:
        self.dir = blocks_dir
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
            fh.close()
            self.file_no += 1
            fh = self._open()
        offset = self.size
        fh.write(record if self.key is None else xor_bytes(record, self.key, offset))
        self.size += len(record)
        return self.file_no, offset + 8

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
