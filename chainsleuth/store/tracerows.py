"""Trace rows: two derived arrays that let the backward walk read one line where it read several.

Why (issue 13 item 6, docs/design/trace.md "Trace rows"): per frontier entry the backward
walk needs its output's creating tx and address, and per child its value. From the store's own
arrays that is a search of `tx_first_output` (through the fence), a read of `output_address`,
and a read of `output_value` at each input's spent output (scattered over the whole chain, so
the kernel sorted the children to read them in order). Each is a cache miss into a different
array. Here:

- `output_row.bin`: per output, `address_id << 32 | creating tx` (uint64, 8 B/output): the
  creating tx and the address in one read (`0xFFFFFFFF` address: none, as `output_address`).
- `input_value.bin`: per input, the value of the output it spends (int64, 8 B/input; 0 for a
  coinbase input), read beside `input_spent_output` over the same input range.

Both are derived from the store's arrays and never edited in place: the chain only grows at
its end, so the rows of the first B blocks stay right for as long as those blocks stay in the
store. `state.json` records B, the hash of block B-1, and a hash every CHECKPOINT_BLOCKS blocks.
The writer calls `ensure_rows` when it saves its indexes (the end of every ingest run, a run
that finds nothing new included): it keeps the rows of the blocks whose hashes still match (a
rollback keeps the blocks below its fork point) and writes the rest from there, so O(the new
blocks) after an ingest. The arrays are written first (and made durable), `state.json` last
(atomic replace), so an interrupted build leaves the old state, which never vouches for rows it
does not cover. Concurrent builders are serialised by a lock file.

Readers (`read_rows`) take the rows only when `state.json` vouches for the whole store; else
(a store ingested before the rows existed, until its next ingest run; a reorg not yet saved)
the walk uses the fence and the store's arrays, with the same result
(`tests/store/test_tracerows.py`). Sizes: docs/design/store.md, "Trace rows".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.core.files import atomic_write_text
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.layout import NONE32

DIR_NAME = "trace_rows"
FORMAT = 1
#: A block hash is kept every this many blocks, so a rollback of any depth keeps the rows
#: below the last checkpoint under its fork point (at most this many blocks are written again).
CHECKPOINT_BLOCKS = 1024
#: Txs (output rows) and inputs (values) computed at once while writing: bounds the build's
#: memory to a few tens of MB (≈ 24 B per output and ≈ 40 B per input of one step), so the
#: ingest's peak (issue 13 item 2: the 20 M ingest under a hard memory limit) is not raised.
BUILD_TXS = 1 << 18
BUILD_INPUTS = 1 << 20
OUTPUT_ROW = "output_row.bin"
INPUT_VALUE = "input_value.bin"
EMPTY_ROWS = (np.zeros(0, np.uint64), np.zeros(0, np.int64))


def rows_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DIR_NAME


def enabled(data_dir: Path) -> bool:
    """Whether the store keeps trace rows: opt-in (`ingest --trace-rows`), because they cost
    16 B per input-output pair (about 48 GB at mainnet, +0.07x the blk files: issue 13 item 5
    holds the default store to 0.6x) for a backward walk about 1.5x less CPU (docs/design/
    store.md "Trace rows"). The folder's presence is the choice, so a later ingest keeps it."""
    return rows_dir(data_dir).is_dir()


def choose(data_dir: Path, wanted: bool | None) -> None:
    """Record the store's choice: True keeps trace rows from now on (the writer builds what is
    missing at the end of the run), False deletes them, None keeps the store's choice."""
    d = rows_dir(data_dir)
    if wanted is True:
        d.mkdir(parents=True, exist_ok=True)
    elif wanted is False and d.exists():
        # renamed away first, so a reader never sees a half-deleted folder vouched for
        gone = d.with_name(d.name + ".deleting")
        shutil.rmtree(gone, ignore_errors=True)
        d.rename(gone)
        shutil.rmtree(gone)


def _read_state(d: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((d / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("format") == FORMAT else None


def _block_hash(graph: ChainGraph, height: int) -> str:
    return bytes(np.asarray(graph.block_hash[height])).hex()


def valid_blocks(graph: ChainGraph, state: dict[str, Any] | None) -> int:
    """How many of the store's first blocks the recorded rows are still right for: all B
    recorded when block B-1's hash matches, else up to the last matching checkpoint."""
    if state is None:
        return 0
    blocks = int(state["blocks"])
    if 0 < blocks <= graph.n_blocks and _block_hash(graph, blocks - 1) == state["last_hash"]:
        return blocks
    best = 0
    for height, digest in state.get("checkpoints", []):
        if (
            height < graph.n_blocks
            and height + 1 <= blocks
            and _block_hash(graph, height) == digest
        ):
            best = max(best, height + 1)
    return best


def _counts_at(graph: ChainGraph, blocks: int) -> tuple[int, int, int]:
    """(txs, inputs, outputs) of the first `blocks` blocks."""
    if blocks >= graph.n_blocks:
        return graph.n_txs, graph.n_inputs, graph.n_outputs
    t = int(graph.block_first_tx[blocks])
    return t, int(graph.tx_first_input[t]), int(graph.tx_first_output[t])


def _map(path: Path, dtype: str, rows: int) -> np.ndarray:
    if rows == 0:
        return np.zeros(0, dtype)
    return np.asarray(np.memmap(path, dtype=dtype, mode="r", shape=(rows,)))


def read_rows(data_dir: Path, graph: ChainGraph) -> tuple[np.ndarray, np.ndarray] | None:
    """(output_row, input_value) memory-mapped when they cover the whole store, else None."""
    d = rows_dir(data_dir)
    state = _read_state(d)
    if state is None or valid_blocks(graph, state) != graph.n_blocks:
        return None
    if int(state["outputs"]) != graph.n_outputs or int(state["inputs"]) != graph.n_inputs:
        return None
    return _map(d / OUTPUT_ROW, "<u8", graph.n_outputs), _map(
        d / INPUT_VALUE, "<i8", graph.n_inputs
    )


def _write_at(path: Path, offset_bytes: int, total_bytes: int, chunks: Any) -> None:
    """Write `chunks` (arrays) into `path` from `offset_bytes` on, cut it to `total_bytes`,
    and make it durable."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, total_bytes)
        pos = offset_bytes
        for a in chunks:
            data = np.ascontiguousarray(a).data.cast("B")
            while data:
                n = os.pwrite(fd, data, pos)
                pos += n
                data = data[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _output_rows(graph: ChainGraph, t0: int) -> Any:
    first = graph.tx_first_output
    for lo in range(t0, graph.n_txs, BUILD_TXS):
        hi = min(graph.n_txs, lo + BUILD_TXS)
        o_lo = int(first[lo])
        o_hi = int(first[hi]) if hi < graph.n_txs else graph.n_outputs
        starts = np.asarray(first[lo:hi], np.int64)
        counts = np.diff(np.append(starts, o_hi))
        creator = np.repeat(np.arange(lo, hi, dtype=np.uint64), counts)
        address = np.asarray(graph.output_address[o_lo:o_hi]).astype(np.uint64)
        yield (address << np.uint64(32)) | creator


def _input_values(graph: ChainGraph, i0: int) -> Any:
    for lo in range(i0, graph.n_inputs, BUILD_INPUTS):
        hi = min(graph.n_inputs, lo + BUILD_INPUTS)
        spent = np.asarray(graph.input_spent_output[lo:hi])
        out = np.zeros(hi - lo, np.int64)
        real = np.flatnonzero(spent >= 0)
        # read the spent outputs' values in ascending output id (one pass over the pages)
        order = real[np.argsort(spent[real], kind="stable")]
        out[order] = graph.output_value[spent[order]]
        yield out


@contextlib.contextmanager
def _locked(d: Path) -> Any:
    with open(d / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_rows(data_dir: Path, graph: ChainGraph) -> tuple[np.ndarray, np.ndarray] | None:
    """The trace rows of the store at `data_dir`, written first where missing or stale (from
    the first block they are not right for), memory-mapped. None when the folder cannot be
    written (the walk then reads the store's arrays). Re-runnable: a second call writes
    nothing."""
    found = read_rows(data_dir, graph)
    if found is not None or graph.n_blocks == 0:
        return found
    d = rows_dir(data_dir)
    try:
        d.mkdir(exist_ok=True)
        with _locked(d):
            state = _read_state(d)
            keep = valid_blocks(graph, state)
            if keep == graph.n_blocks and state is not None:
                return read_rows(data_dir, graph)
            t0, i0, o0 = _counts_at(graph, keep)
            _write_at(d / OUTPUT_ROW, o0 * 8, graph.n_outputs * 8, _output_rows(graph, t0))
            _write_at(d / INPUT_VALUE, i0 * 8, graph.n_inputs * 8, _input_values(graph, i0))
            checkpoints = [
                [h, _block_hash(graph, h)]
                for h in range(CHECKPOINT_BLOCKS - 1, graph.n_blocks, CHECKPOINT_BLOCKS)
            ]
            new_state = {
                "format": FORMAT,
                "blocks": graph.n_blocks,
                "last_hash": _block_hash(graph, graph.n_blocks - 1),
                "txs": graph.n_txs,
                "inputs": graph.n_inputs,
                "outputs": graph.n_outputs,
                "checkpoints": checkpoints,
                "none_address": int(NONE32),
            }
            atomic_write_text(d / "state.json", json.dumps(new_state))
    except OSError:
        return None
    return read_rows(data_dir, graph)
