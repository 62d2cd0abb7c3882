"""Arrays over an unlinked file: a command's per-tx and per-address working state in the page
cache (`RssFile`, pages the kernel can write back and drop), not in anonymous memory.

An investigation holds a few flags and small ints per tx and per address of the whole chain
while it runs (`trace.services.TxShapes`, the CoinJoin flags, the wallet fingerprints, the
traces' stop flags per address): ≈ 16 B per tx at mainnet's address-to-tx ratio, 17–18 GB of
`RssAnon` for 1.1 G txs, where issue 13 budgets 24 GB for everything an investigation holds
(docs/design/store.md, "Investigation's memory"). Read at random by the walks and in passes of
a slice at a time, they need not be anonymous: `Scratch` gives each one its own file, unlinked
as soon as it is created (nothing is left behind, whatever ends the process), mapped shared
and read/written like any numpy array (numba kernels too). A new file reads as zeros, so
`empty` and `zeros` are the same and free until written. Small arrays (under `min_bytes`)
stay ordinary numpy arrays: a file and a mapping each would cost more than they save.

    >>> scratch = Scratch(Path("case"))          # doctest: +SKIP
    >>> flags = scratch.zeros(n_txs, np.bool_)   # doctest: +SKIP

Put the files on a disk (the case's directory), not on a tmpfs: there they would be shared
memory, neither anonymous nor droppable. The disk needs room for them while the command runs
(an investigation: ≈ 17 B per tx at mainnet's address-to-tx ratio, ≈ 19 GB); the blocks are
reserved when an array is made (`posix_fallocate`), so a full disk is an `OSError` (ENOSPC)
there, not a SIGBUS when a page of a sparse file is first written. Who calls it: `cases.investigate.prepare_case`, and
through it `trace.services.tx_shapes`, `trace.exposure.coinjoin_flags` and
`one_wallet_txs`, `trace.engine.address_stops` and `cluster.learned.read_fingerprints`.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: Arrays smaller than this stay in anonymous memory (one file and one mapping each above).
MIN_BYTES = 1 << 20


class Scratch:
    """A maker of file-backed arrays in `directory` (None: the system's temporary directory).

    Each array keeps its own mapping alive and unmaps it when it is freed; the file was
    unlinked at creation. Not thread-safe to create from several threads at once (it does
    nothing shared but the directory, so in practice it is)."""

    def __init__(self, directory: Path | str | None = None, min_bytes: int = MIN_BYTES) -> None:
        self.directory = None if directory is None else Path(directory)
        self.min_bytes = int(min_bytes)
        self.mapped_bytes = 0  # what the arrays made so far put in files (a figure for benches)

    def empty(self, n: int, dtype: Any) -> np.ndarray:
        """A writable array of `n` items of `dtype`, zeros (a new file reads as zeros)."""
        dt = np.dtype(dtype)
        nbytes = int(n) * dt.itemsize
        if nbytes < self.min_bytes or nbytes == 0:  # a file cannot map 0 bytes
            return np.zeros(int(n), dt)
        with tempfile.TemporaryFile(dir=self.directory, prefix=".chainsleuth-scratch-") as f:
            f.truncate(nbytes)
            if hasattr(os, "posix_fallocate"):
                # the blocks reserved now: a full disk is an OSError (ENOSPC) here, where a
                # sparse file would kill the process with SIGBUS at the first page written
                os.posix_fallocate(f.fileno(), 0, nbytes)
            # the mapping holds its own reference to the file: closing (and so deleting) it
            # here leaves the pages reachable through the array alone
            mapped = mmap.mmap(f.fileno(), nbytes, flags=mmap.MAP_SHARED)
        self.mapped_bytes += nbytes
        return np.frombuffer(mapped, dt, count=int(n))

    zeros = empty

    def full(self, n: int, value: Any, dtype: Any) -> np.ndarray:
        """`empty` filled with `value`."""
        out = self.empty(n, dtype)
        if value != 0:
            out.fill(value)
        return out


def scratch_array(scratch: Scratch | None, n: int, dtype: Any, fill: Any = 0) -> np.ndarray:
    """`scratch.full(n, fill, dtype)`, or an ordinary numpy array when `scratch` is None (what
    the functions taking an optional `scratch` do by default)."""
    if scratch is None:
        return np.full(int(n), fill, np.dtype(dtype))
    return scratch.full(n, fill, dtype)
