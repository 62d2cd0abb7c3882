"""Append parsed batches to the store: link inputs to outputs, assign dense ids, write parquet.

The writer owns every mutation of a store: `append` (a batch of consecutive blocks), `rollback`
(to a fork point) and `commit` (publish through the manifest). Ingest (`chainsleuth.store.ingest`)
drives it; nothing else writes.

Per batch: the batch's txids are added to the outpoint index; each non-coinbase input is
resolved to the output it spends (`tx_first_output[prev_tx] + vout`), which must exist and be
unspent; output address keys get dense address ids; the graph arrays are appended; parquet files
for the four tables are written under their height-range partitions. `commit` makes it visible.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numba import njit

from chainsleuth.core.errors import InputError, StoreError
from chainsleuth.core.files import publish_dir, replace_into_place
from chainsleuth.core.heap import bound_heap, trim_heap
from chainsleuth.core.network import network_by_name
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES
from chainsleuth.parse.address_kernels import encode_key_rows
from chainsleuth.parse.blocks import ParsedBatch
from chainsleuth.store import layout
from chainsleuth.store.addrindex import AddressIndex
from chainsleuth.store.columns import binary_column, hex_column, masked, timestamps
from chainsleuth.store.computed import standard_scripts
from chainsleuth.store.hashindex import MAX_LOAD, HashIndex
from chainsleuth.store.layout import ADDRESS_KEY_WIDTH, ARRAYS, COINBASE_SPENT_OUTPUT, NONE32
from chainsleuth.store.lookup import LookupBuilder

_SCRIPT_TYPES = pa.array(SCRIPT_TYPE_NAMES, pa.string())

# Input resolution's codes (the writer's own: none reaches the store). An input's previous tx is
# COINBASE_PREV for a coinbase input, negative when the outpoint index does not know it;
# a failed input's out[] holds the reason.
COINBASE_PREV = -9
UNKNOWN_TX = -2
VOUT_OUT_OF_RANGE = -3
ALREADY_SPENT = -4
_REASONS = {
    UNKNOWN_TX: "spends an output of an unknown transaction",
    VOUT_OUT_OF_RANGE: "spends an output index the previous transaction does not have",
    ALREADY_SPENT: "spends an output that is already spent",
}
#: Bring the lookup index (lookup.py) up to date at a commit once this many outputs are beyond
#: it, so that readers of a long-running ingest scan at most this much of the tail.
LOOKUP_EVERY_OUTPUTS = 1 << 24
#: The outpoint index's rebuild reads the chain's txs in chunks of this many (≈ 20 B each
#: while read: 8 B first-output offsets, 4 B per-tx counts, ≈ 3 B of unspent flags per
#: output, the live ids). 2^20 (≈ 20 MB) rather than 2^24 (≈ 335 MB): a chunk the bench-scale
#: chains (2-10 M txs) do not fill grows with the chain there and fools the fit, and the
#: per-chunk numpy calls cost nothing at 1 M txs each.
COMPACT_CHUNK_TXS = 1 << 20
#: ... and inserts the live txs in chunks of this many (≈ 56 B each while inserted: the txid
#: rows gathered, their fingerprints, ids and results): ≈ 15 MB (2^22 was ≈ 235 MB).
COMPACT_INSERT_TXS = 1 << 18
#: Below this many entries the outpoint index is never rebuilt (it is at most 25 MB).
COMPACT_MIN = 1 << 20


@njit(cache=True, nogil=True)
def _resolve_inputs(
    prev_tx, prev_vout, tx_first_output, n_outputs_total, spent_by, n_tx_committed, out
):
    """Resolve each input to the output id it spends, without changing anything.

    Returns -1 on success, else the index of the first input that fails, with the reason in
    out[i]: UNKNOWN_TX, VOUT_OUT_OF_RANGE or ALREADY_SPENT. Coinbase inputs
    (prev_tx == COINBASE_PREV) get COINBASE_SPENT_OUTPUT. Spent marks >= n_tx_committed are
    leftovers of an interrupted run and count as unspent.
    """
    n_tx = tx_first_output.shape[0]
    for i in range(prev_tx.shape[0]):
        t = prev_tx[i]
        if t == COINBASE_PREV:
            out[i] = COINBASE_SPENT_OUTPUT
            continue
        if t < 0:
            out[i] = UNKNOWN_TX
            return i
        first = tx_first_output[t]
        end = tx_first_output[t + 1] if t + 1 < n_tx else n_outputs_total
        if prev_vout[i] >= end - first:
            out[i] = VOUT_OUT_OF_RANGE
            return i
        o = first + prev_vout[i]
        if spent_by[o] != NONE32 and np.int64(spent_by[o]) < n_tx_committed:
            out[i] = ALREADY_SPENT
            return i
        out[i] = o
    return -1


@njit(cache=True, nogil=True)
def _first_repeat(ids):
    """Index of the first id (>= 0) that already occurred earlier in `ids`, else -1."""
    order = np.argsort(ids, kind="mergesort")
    first = -1
    for k in range(1, order.shape[0]):
        a = order[k - 1]
        b = order[k]
        if ids[a] >= 0 and ids[a] == ids[b] and (first < 0 or b < first):
            first = b
    return first


@njit(cache=True, nogil=True)
def _mark_spent(spent_by, spent_output, input_tx):
    for i in range(spent_output.shape[0]):
        o = spent_output[i]
        if o >= 0:
            spent_by[o] = np.uint32(input_tx[i])


def _conform(table: str, columns: dict[str, Any]) -> pa.Table:
    """Columns as a table with exactly the documented schema (layout.SCHEMAS) of `table`."""
    schema = layout.SCHEMAS[table]
    return pa.table(columns).select(schema.names).cast(schema)


LOCK_FILE = ".writer.lock"


def _lock_writer(data_dir: Path) -> int:
    """Take the data directory's writer lock (one writer at a time: an `ingest --follow` and
    a one-shot `ingest` into the same directory would corrupt it). Released when the writer
    closes or aborts, or when its process ends however it ends (flock)."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"{data_dir} is being written by another chainsleuth ingest (an `ingest --follow`?); "
            "stop it first, or use another --data directory"
        ) from None
    return fd


@dataclass
class _Staged:
    """An appended batch: the state to publish once its parquet files are written."""

    counts: dict[str, int]
    tip: dict[str, Any] | None
    files: Future[list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class _BatchRows:
    """What `append` worked out for a batch that its parquet tables need (ids are the store's)."""

    heights: np.ndarray  # per block
    tx_ids: np.ndarray  # per tx
    tx_height: np.ndarray  # per tx
    in_tx_local: np.ndarray  # per input: its tx's index in the batch
    out_tx_local: np.ndarray  # per output: its tx's index in the batch
    out_address: np.ndarray  # per output: address id, -1 none
    spent_output: np.ndarray  # per input: output id it spends (negative: coinbase)
    in_value: np.ndarray  # per input: value of the output it spends
    in_address: np.ndarray  # per input: address id of the output it spends, -1 none
    keys_all: np.ndarray  # the store's address keys, this batch's new ones included
    n_in0: int  # inputs before the batch
    n_out0: int  # outputs before the batch
    n_new_addresses: int


@dataclass
class BatchResult:
    n_blocks: int
    n_txs: int
    n_inputs: int
    n_outputs: int
    n_new_addresses: int
    bytes_in: int


def parquet_options(table: str, names: list[str]) -> dict[str, Any]:
    """`pq.write_table`'s options for a file of `table` with columns `names`.

    Dictionary encoding only where values repeat (script types): on hashes, scripts and
    addresses it costs more CPU than it saves bytes (measured: 2.4x slower writes).
    DELTA_BINARY_PACKED where it measurably shrinks a counting column (layout.DELTA_COLUMNS).
    Small row groups where lookups read by id (a cold `tx` reads one per table:
    layout.ROW_GROUP_ROWS)."""
    have = set(names)
    return {
        "compression": "zstd",
        "row_group_size": (
            layout.ROW_GROUP_ROWS if table in layout.POINT_TABLES else layout.ROW_GROUP_ROWS_SCAN
        ),
        "use_dictionary": [c for c in ("script_type", "address_type") if c in have],
        "column_encoding": {
            c: "DELTA_BINARY_PACKED" for c in layout.DELTA_COLUMNS.get(table, ()) if c in have
        }
        or None,
    }


class StoreWriter:
    """The only code that changes a store. Open, append batches, commit, close.

    Example::

        writer = StoreWriter.open(Path("chainsleuth-data"), "main")
        writer.append(parse_blocks(raw_blocks), first_height=0)
        writer.commit({"source": "blocks-dir"})
        writer.close()
    """

    def __init__(self, data_dir: Path, manifest: dict[str, Any]) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = manifest
        self.network = network_by_name(manifest["network"])
        self.counts: dict[str, int] = dict(manifest["counts"])
        self.pending_files: dict[str, list[dict[str, Any]]] = {t: [] for t in layout.TABLES}
        # Parquet files of appended batches are written on a background thread (pyarrow releases
        # the GIL) while the next batch is linked; a batch is committed once its files exist.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self._staged: list[_Staged] = []
        self.outpoints = HashIndex()
        self.addresses: AddressIndex | None = None  # opened with the committed address keys
        self.tip: dict[str, Any] | None = manifest["tip"]
        self._live_outpoints = 0  # entries of the outpoint index right after its last rebuild
        self._lock: int | None = None  # descriptor holding the data directory's writer lock
        self.lookup = LookupBuilder(self.data_dir)
        self._lookup_outputs = 0  # outputs the lookup index covered when last updated

    # ----------------------------------------------------------------- opening and recovery
    @classmethod
    def open(cls, data_dir: Path, network: str, keep_scripts: bool | None = None) -> StoreWriter:
        """Open (creating if needed) a store for `network`, repairing any interrupted write.

        `keep_scripts`: write scriptSigs and witnesses into the inputs table (None: as the
        store was first ingested, else not; a store refuses the other choice, see layout).
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        bound_heap()  # a writer runs for hours: its freed arrays must go back to the kernel
        lock = _lock_writer(data_dir)
        try:
            manifest = layout.read_manifest(data_dir)
            if manifest is None:
                manifest = layout.empty_manifest(
                    network_by_name(network).name, keep_scripts=bool(keep_scripts)
                )
                layout.write_manifest(data_dir, manifest)
            keep = layout.settle_keep_scripts(data_dir, manifest, keep_scripts)
            if keep != manifest["keep_scripts"]:
                manifest["keep_scripts"] = keep  # an empty store takes the new choice
                layout.write_manifest(data_dir, manifest)
            if manifest["network"] != network_by_name(network).name:
                raise StoreError(
                    f"{data_dir} holds a {manifest['network']} store; this source is "
                    f"{network_by_name(network).name}. Use another --data directory."
                )
            writer = cls(data_dir, manifest)
            writer._lock = lock
            writer._recover()
            if "files" in manifest:  # format 5: move the file list to the log (format 6)
                writer._write_log(layout.read_files(data_dir, manifest))
                del manifest["files"]
                manifest["format"] = layout.FORMAT_VERSION
                layout.write_manifest(data_dir, manifest)
                writer._remove_unlisted_logs()
            writer._load_indexes()
            writer._lookup_outputs = writer.lookup.covered_outputs(writer.manifest)
        except BaseException:
            os.close(lock)
            raise
        return writer

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    def _recover(self) -> None:
        """Undo whatever an interrupted run left beyond the committed manifest."""
        committed = self.counts
        # Outputs marked spent by uncommitted inputs become unspent again.
        in_path = layout.array_path(self.data_dir, "input_spent_output")
        out_path = layout.array_path(self.data_dir, "output_spent_by_tx")
        if in_path.exists() and out_path.exists():
            rows_on_disk = in_path.stat().st_size // 8
            if rows_on_disk > committed["inputs"]:
                tail = np.fromfile(in_path, dtype="<i8")[committed["inputs"] : rows_on_disk]
                n_out_disk = out_path.stat().st_size // 4
                spent_by = np.memmap(out_path, dtype="<u4", mode="r+", shape=(n_out_disk,))
                ids = tail[(tail >= 0) & (tail < n_out_disk)]
                stale = ids[spent_by[ids] >= committed["txs"]]
                spent_by[stale] = NONE32
                spent_by.flush()
                del spent_by
        for name, spec in ARRAYS.items():
            path = layout.array_path(self.data_dir, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            row_bytes = np.dtype(spec.dtype).itemsize * spec.width
            want = committed[spec.count] * row_bytes
            if not path.exists():
                path.touch()
            if path.stat().st_size != want:
                if path.stat().st_size < want:
                    raise StoreError(f"{path} is shorter than the manifest says: store damaged")
                os.truncate(path, want)
        self.lookup.remove_unlisted()
        log = self.manifest.get("files_log")
        if log is not None:  # bytes a crash appended beyond the committed end go
            path = self.data_dir / log["path"]
            if not path.exists():
                path.touch()
            if path.stat().st_size < log["bytes"]:
                raise StoreError(f"{path} is shorter than the manifest says: store damaged")
            os.truncate(path, log["bytes"])
            self._remove_unlisted_logs()
        files = layout.read_files(self.data_dir, self.manifest)
        listed = {f["path"] for t in layout.TABLES for f in files[t]}
        tables = self.data_dir / "tables"
        if tables.exists():
            for path in tables.rglob("*"):
                if path.is_file() and str(path.relative_to(self.data_dir)) not in listed:
                    path.unlink()

    def _remove_unlisted_logs(self) -> None:
        """Delete file logs other than the manifest's (an earlier epoch's, or one a crash left
        behind during a rollback or a format 5 conversion)."""
        log = self.manifest.get("files_log")
        for path in self.data_dir.glob("files-*.jsonl"):
            if log is None or path.name != log["path"]:
                path.unlink()

    def _write_log(self, files: dict[str, list[dict[str, Any]]]) -> None:
        """Write `files` as a new file log (the next number, atomically) and point the
        in-memory manifest at it; published with the manifest. Lines keep each table's order."""
        entries = [(t, f) for t in layout.TABLES for f in files[t]]
        in_order = all(
            (a["max_height"], a["min_height"]) <= (b["max_height"], b["min_height"])
            for t in layout.TABLES
            for a, b in zip(files[t], files[t][1:], strict=False)
        )
        log = layout.empty_files_log(layout.next_files_log_number(self.manifest))
        if in_order:  # the sort in log_lines keeps each table's order
            data, log = layout.log_lines(log, entries)
        else:
            data = b"".join(layout.log_lines(log, [e])[0] for e in entries)
            log = {**log, "bytes": len(data), "lines": len(entries), "sorted": False}
        layout.atomic_write_bytes(self.data_dir / log["path"], data)
        self.manifest["files_log"] = log

    # ------------------------------------------------------------------------- indexes
    def _index_dir(self) -> Path:
        return self.data_dir / "index"

    def _load_indexes(self) -> None:
        state_path = self._index_dir() / "state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else None
        usable = (
            state is not None
            and state["epoch"] == self.manifest["epoch"]
            and state["txs"] <= self.counts["txs"]
            and state["addresses"] <= self.counts["addresses"]
        )
        if usable:
            assert state is not None
            prefix = str(self._index_dir())
            self.outpoints = HashIndex.load(prefix + "/outpoints", state["outpoint_slots"])
            # the rebuild rule needs the entries after the last rebuild; without them (0) every
            # writer opened on a chain with > COMPACT_MIN live txs rebuilt at its first append,
            # a scan of the whole chain per `ingest` run. Stores from before: as if just rebuilt.
            self._live_outpoints = int(state.get("outpoint_live", self.outpoints.used))
            first_tx = state["txs"]
        else:
            self.outpoints = HashIndex()
            first_tx = 0
        self._catch_up_indexes(first_tx, full_rebuild=not usable)
        # The address index lives on disk beside index/ and brings itself up to date (it
        # survives rollbacks: see addrindex.py).
        keys = self._array("address_key", self.counts["addresses"])
        if self.addresses is None:
            self.addresses = AddressIndex.open(self.data_dir, np.asarray(keys))
        else:
            self.addresses._catch_up(np.asarray(keys))

    def _catch_up_indexes(self, first_tx: int, full_rebuild: bool) -> None:
        n_tx = self.counts["txs"]
        txids = layout.open_array(self.data_dir, "tx_txid", n_tx)
        if full_rebuild and n_tx:
            self._compact_outpoints()  # only txs with an unspent output can be spent again
        elif n_tx > first_tx:
            ids = np.arange(first_tx, n_tx, dtype=np.int64)
            self.outpoints.insert(np.asarray(txids[first_tx:]), ids, np.asarray(txids), txids[:0])

    def _compact_outpoints(self) -> None:
        """Rebuild the outpoint index with only the txs that still have an unspent output.

        Triggered by `_maybe_compact_outpoints`, so the cost stays proportional to the txs
        ingested (amortised) and the index stays near the size of the UTXO set's tx count
        rather than the whole chain's.
        """
        n_tx, n_out = self.counts["txs"], self.counts["outputs"]
        txids = np.asarray(self._array("tx_txid", n_tx))
        spent_by = self._array("output_spent_by_tx", n_out)
        first_out = self._array("tx_first_output", n_tx)
        # In chunks of txs, so the working memory is ≈ 1 B per output of one chunk plus 4 B per
        # live tx (uint32 ids), not 8 B per output of the chain (25 GB at mainnet); the old
        # table goes first.
        self.outpoints = HashIndex()
        parts = []
        for t0 in range(0, n_tx, COMPACT_CHUNK_TXS):
            t1 = min(t0 + COMPACT_CHUNK_TXS, n_tx)
            o0 = int(first_out[t0])
            o1 = int(first_out[t1]) if t1 < n_tx else n_out
            if o1 == o0:
                continue
            unspent = np.asarray(spent_by[o0:o1]) == NONE32
            per_tx = np.add.reduceat(unspent, np.asarray(first_out[t0:t1]) - o0, dtype=np.int32)
            parts.append((t0 + np.flatnonzero(per_tx > 0)).astype(np.uint32))
        live = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
        del parts
        index = HashIndex(int(live.shape[0] / 0.5) + 1)
        for lo in range(0, live.shape[0], COMPACT_INSERT_TXS):
            ids = live[lo : lo + COMPACT_INSERT_TXS]
            index.insert(txids[ids], ids, txids, txids[:0])
        self.outpoints = index
        self._live_outpoints = int(live.shape[0])

    def save_indexes(self) -> None:
        """Persist the derived indexes for the committed state (atomically, via a temp dir)."""
        tmp = self.data_dir / "index.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.outpoints.save(str(tmp / "outpoints"))
        assert self.addresses is not None
        self.addresses.save(self.counts_committed("addresses"))
        state = {
            "epoch": self.manifest["epoch"],
            "txs": self.counts["txs"],
            "addresses": self.counts["addresses"],
            "outpoint_slots": self.outpoints.used,
            "outpoint_live": self._live_outpoints,
        }
        (tmp / "state.json").write_text(json.dumps(state))
        publish_dir(tmp, self._index_dir())
        self.update_lookup()

    def update_lookup(self) -> None:
        """Index the committed outputs and txs beyond the lookup index (see lookup.py)."""
        state = self.lookup.update(self.manifest)
        self._lookup_outputs = int(state["outputs"])

    # ------------------------------------------------------------------------- appending
    def _append_array(self, name: str, values: np.ndarray) -> None:
        spec = ARRAYS[name]
        data = np.ascontiguousarray(values, dtype=spec.dtype)
        with open(layout.array_path(self.data_dir, name), "ab") as f:
            f.write(data.tobytes())

    def _array(self, name: str, rows: int, writable: bool = False) -> np.ndarray:
        return layout.open_array(self.data_dir, name, rows, writable)

    def append(self, batch: ParsedBatch, first_height: int, where: list[str]) -> BatchResult:
        """Append a batch of consecutive blocks starting at `first_height` (not yet visible).

        The arrays grow in this order (transactions, outputs, inputs, blocks) because each step
        reads what the one before wrote; then the batch's parquet files are written in the
        background and the batch is staged for `commit`.
        """
        c = self.counts
        n_tx0, n_in0, n_out0, n_addr0 = c["txs"], c["inputs"], c["outputs"], c["addresses"]
        heights = first_height + np.arange(batch.n_blocks, dtype=np.int64)
        tx_ids = n_tx0 + np.arange(batch.n_tx, dtype=np.int64)
        in_tx_local = np.repeat(np.arange(batch.n_tx), np.diff(batch.tx_first_input))
        out_tx_local = np.repeat(np.arange(batch.n_tx), np.diff(batch.tx_first_output))

        tx_height = self._append_txs(batch, heights, tx_ids)
        out_address, key_rows, new_rows = self._append_outputs(batch)
        spent_output, in_value, in_address = self._append_inputs(batch, tx_ids, in_tx_local, where)
        self._append_blocks(batch, key_rows, new_rows, out_tx_local, n_addr0)

        # 5. Parquet (written in the background; see commit).
        n_tx1, n_out1 = n_tx0 + batch.n_tx, n_out0 + batch.n_outputs
        n_addr1 = n_addr0 + new_rows.shape[0]
        rows = _BatchRows(
            heights=heights,
            tx_ids=tx_ids,
            tx_height=tx_height,
            in_tx_local=in_tx_local,
            out_tx_local=out_tx_local,
            out_address=out_address,
            spent_output=spent_output,
            in_value=in_value,
            in_address=in_address,
            keys_all=np.asarray(self._array("address_key", n_addr1)),
            n_in0=n_in0,
            n_out0=n_out0,
            n_new_addresses=int(new_rows.shape[0]),
        )
        # Building and writing the tables runs on the writer thread (numba kernels and pyarrow
        # release the GIL) while the main thread links the next batch.
        generation = self.manifest["generation"] + len(self._staged) + 1
        files = self._pool.submit(self._write_tables, generation, batch, rows)
        c.update(
            blocks=c["blocks"] + batch.n_blocks,
            txs=n_tx1,
            inputs=n_in0 + batch.n_inputs,
            outputs=n_out1,
            addresses=n_addr1,
        )
        self.tip = {"height": int(heights[-1]), "hash": batch.block_hash_hex(batch.n_blocks - 1)}
        self._staged.append(_Staged(dict(c), dict(self.tip), files))
        return BatchResult(
            batch.n_blocks,
            batch.n_tx,
            batch.n_inputs,
            batch.n_outputs,
            int(new_rows.shape[0]),
            int(batch.buf.shape[0]),
        )

    def _append_txs(
        self, batch: ParsedBatch, heights: np.ndarray, tx_ids: np.ndarray
    ) -> np.ndarray:
        """1. Transactions: arrays first (the outpoint index verifies keys against them).
        Returns each tx's block height."""
        n_tx0, n_in0, n_out0 = self.counts["txs"], self.counts["inputs"], self.counts["outputs"]
        tx_height = heights[batch.tx_block]
        self._append_array("tx_txid", batch.txid)
        self._append_array("tx_first_output", n_out0 + batch.tx_first_output[:-1])
        self._append_array("tx_first_input", n_in0 + batch.tx_first_input[:-1])
        self._append_array("tx_height", tx_height)
        all_txids = self._array("tx_txid", n_tx0 + batch.n_tx)
        self._maybe_compact_outpoints(batch.n_tx)
        self.outpoints.insert(batch.txid, tx_ids, np.asarray(all_txids), batch.txid[:0])
        return tx_height

    def _maybe_compact_outpoints(self, extra: int) -> None:
        """Rebuild the outpoint index before `extra` more txids go in, when it holds twice the
        entries it had after its last rebuild, or when they would make its table double.

        A doubling holds the old and the new table at once: at mainnet's ≈ 130 M txs with an
        unspent output that is 2^28 slots growing to 2^29, 9.7 GB for a moment and 6.4 GB after.
        The rebuild frees the old table first and sizes the new one for the live txs (2^28
        slots, 3.2 GB), so the table never exceeds ≈ 48 B per live tx.
        """
        index = self.outpoints
        if index.used <= COMPACT_MIN:
            return
        doubles = index.used + extra > MAX_LOAD * index.capacity
        # a rebuild that would keep nearly every entry is not worth a scan of the chain
        worth = index.used > 1.25 * self._live_outpoints
        if index.used > 2 * self._live_outpoints or (doubles and worth):
            self._compact_outpoints()

    def _append_outputs(self, batch: ParsedBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """2. Outputs and their addresses. Returns each output's address id (-1 none), the
        outputs that carry an address key, and which of those keys were new addresses."""
        n_addr0 = self.counts["addresses"]
        has_key = batch.out_key_len > 0
        key_rows = np.flatnonzero(has_key)
        keys = np.zeros((key_rows.shape[0], ADDRESS_KEY_WIDTH), np.uint8)
        keys[:, 0] = batch.out_key_kind[key_rows]
        keys[:, 1] = batch.out_key_len[key_rows]
        keys[:, 2:] = batch.out_key_payload[key_rows]
        stored_keys = self._array("address_key", n_addr0)
        assert self.addresses is not None
        ids, new_rows = self.addresses.lookup_or_add(keys, np.asarray(stored_keys), n_addr0)
        self._append_array("address_key", keys[new_rows])
        out_address = np.full(batch.n_outputs, -1, np.int64)
        out_address[key_rows] = ids
        out_addr32 = np.where(out_address < 0, NONE32, out_address).astype("<u4")
        self._append_array("output_value", batch.out_value)
        self._append_array("output_script_type", batch.out_script_type)
        self._append_array("output_address", out_addr32)
        self._append_array("output_spent_by_tx", np.full(batch.n_outputs, NONE32, "<u4"))
        return out_address, key_rows, new_rows

    def _append_inputs(
        self, batch: ParsedBatch, tx_ids: np.ndarray, in_tx_local: np.ndarray, where: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """3. Inputs: resolve each to the output it spends and mark that output spent.
        Returns each input's spent output id, value and address id (-1 none)."""
        n_tx0 = self.counts["txs"]
        n_tx1 = n_tx0 + batch.n_tx
        n_out1 = self.counts["outputs"] + batch.n_outputs
        all_txids = self._array("tx_txid", n_tx1)
        prev_tx = np.full(batch.n_inputs, COINBASE_PREV, np.int64)
        spending = np.flatnonzero(~batch.in_is_coinbase)
        if spending.shape[0]:
            prev_tx[spending] = self.outpoints.lookup(
                batch.in_prev_txid()[spending], np.asarray(all_txids)
            )
        spent_output = np.empty(batch.n_inputs, np.int64)
        spent_by = self._array("output_spent_by_tx", n_out1, writable=True)
        first_out_all = self._array("tx_first_output", n_tx1)
        bad = _resolve_inputs(
            prev_tx, batch.in_prev_vout, first_out_all, n_out1, spent_by, n_tx0, spent_output
        )
        if bad < 0:
            bad = _first_repeat(spent_output)  # two inputs of this batch spend one output
            if bad >= 0:
                spent_output[bad] = ALREADY_SPENT
        if bad >= 0:
            t = int(in_tx_local[bad])
            b = int(batch.tx_block[t])
            vin = bad - int(batch.tx_first_input[t])
            prev = bytes(batch.in_prev_txid()[bad][::-1]).hex()
            reason = _REASONS[int(spent_output[bad])]
            raise InputError(
                f"tx {batch.txid_hex(t)} input {vin} {reason} ({prev}:{batch.in_prev_vout[bad]})",
                path=where[b],
                offset=int(batch.in_prev_offset[bad] - batch.block_start[b]),
                field="input prevout",
            )
        # The inputs' rows go to disk before the spent marks, so that recovery after a crash
        # can find and undo every mark (see _recover).
        self._append_array("input_spent_output", spent_output)
        _mark_spent(spent_by, spent_output, tx_ids[in_tx_local])
        if isinstance(spent_by, np.memmap):
            spent_by.flush()
        resolved = spent_output >= 0
        values_all = self._array("output_value", n_out1)
        address_all = self._array("output_address", n_out1)
        in_value = np.zeros(batch.n_inputs, np.int64)
        in_address = np.full(batch.n_inputs, -1, np.int64)
        in_value[resolved] = values_all[spent_output[resolved]]
        addr = np.asarray(address_all[spent_output[resolved]]).astype(np.int64)
        in_address[resolved] = np.where(addr == int(NONE32), -1, addr)
        # Kept beside input_spent_output so that clustering and tracing read input addresses
        # sequentially instead of gathering them through the outputs (4 B/input).
        self._append_array(
            "input_address", np.where(in_address < 0, NONE32, in_address).astype("<u4")
        )
        return spent_output, in_value, in_address

    def _append_blocks(
        self,
        batch: ParsedBatch,
        key_rows: np.ndarray,
        new_rows: np.ndarray,
        out_tx_local: np.ndarray,
        n_addr0: int,
    ) -> None:
        """4. Blocks: hashes, times, first tx and first new address, where each block lies in
        the node's files."""
        n_tx0 = self.counts["txs"]
        self._append_array("block_hash", batch.block_hash)
        self._append_array("block_time", batch.block_time)
        self._append_array("block_first_tx", n_tx0 + batch.block_first_tx[:-1])
        block_first_address = np.full(batch.n_blocks, n_addr0, np.int64)
        if new_rows.shape[0]:
            # the first new address of each block; blocks without one inherit the next start
            new_out = key_rows[new_rows]
            new_block = batch.tx_block[out_tx_local[new_out]]
            firsts = np.searchsorted(new_block, np.arange(batch.n_blocks), side="left")
            block_first_address = n_addr0 + firsts
        self._append_array("block_first_address", block_first_address)
        location = np.full((batch.n_blocks, 3), -1, np.int64)  # file -1: not from blk files
        if batch.block_file_offset.shape[0] == batch.n_blocks:
            location[:, :2] = batch.block_file_offset
        location[:, 2] = batch.block_end - batch.block_start
        self._append_array("block_location", location)
        self._append_array("tx_offset", batch.tx_start - batch.block_start[batch.tx_block])

    def _write_tables(
        self, generation: int, batch: ParsedBatch, rows: _BatchRows
    ) -> list[tuple[str, dict[str, Any]]]:
        """Build the batch's tables and write them; returns (table, manifest entry) pairs.

        `generation` (the one the batch will be committed as) makes file names unique.
        """
        heights, tx_ids, tx_height = rows.heights, rows.tx_ids, rows.tx_height
        in_tx_local, out_tx_local = rows.in_tx_local, rows.out_tx_local
        out_address, spent_output = rows.out_address, rows.spent_output
        in_value, in_address, keys_all = rows.in_value, rows.in_address, rows.keys_all
        n_in0, n_out0, n_new_addresses = rows.n_in0, rows.n_out0, rows.n_new_addresses
        # A default store leaves out what its arrays hold (store/computed.py: the views compute
        # it): txids, what an input spends, standard output scripts. --keep-scripts writes all.
        keep = bool(self.manifest["keep_scripts"])
        txid_hex = hex_column(batch.txid) if keep else pa.nulls(batch.n_tx, pa.string())
        n_in_per_tx = np.diff(batch.tx_first_input)
        n_out_per_tx = np.diff(batch.tx_first_output)
        out_sum = np.add.reduceat(batch.out_value, batch.tx_first_output[:-1])
        out_sum = np.where(n_out_per_tx > 0, out_sum, 0)
        in_sum = np.add.reduceat(in_value, batch.tx_first_input[:-1]) if batch.n_inputs else 0
        is_coinbase = batch.in_is_coinbase[batch.tx_first_input[:-1]]
        fee = np.where(is_coinbase, 0, in_sum - out_sum)
        rbf = np.zeros(batch.n_tx, bool)
        signals = (batch.in_sequence < 0xFFFFFFFE).astype(np.int64)
        if batch.n_inputs:
            rbf = np.add.reduceat(signals, batch.tx_first_input[:-1]) > 0
        # format 5: sums over the graph arrays, and weight/vsize from size and base_size
        nulls = pa.nulls(batch.n_tx, pa.int64())
        block_time = batch.block_time[batch.tx_block]
        index_in_block = np.arange(batch.n_tx) - batch.block_first_tx[batch.tx_block]
        txs = _conform(
            "txs",
            {
                "tx_id": tx_ids,
                "txid": txid_hex,
                "block_height": tx_height.astype(np.int32),
                "block_time": timestamps(block_time),
                "index_in_block": index_in_block.astype(np.int32),
                "version": batch.tx_version,
                "locktime": batch.tx_locktime,
                "n_inputs": n_in_per_tx.astype(np.int32),
                "n_outputs": n_out_per_tx.astype(np.int32),
                "input_value": np.where(is_coinbase, 0, in_sum) if keep else nulls,
                "output_value": out_sum if keep else nulls,
                "fee": fee if keep else nulls,
                "size": batch.tx_size,
                "base_size": batch.tx_base_size,
                "vsize": batch.tx_vsize if keep else nulls,
                "weight": batch.tx_weight if keep else nulls,
                "is_coinbase": is_coinbase,
                "is_segwit": batch.tx_witness_start >= 0,
                "signals_rbf": rbf,
                "first_input_id": n_in0 + batch.tx_first_input[:-1],
                "first_output_id": n_out0 + batch.tx_first_output[:-1],
            },
        )
        out_types = pa.DictionaryArray.from_arrays(
            pa.array(batch.out_script_type.astype(np.int8)), _SCRIPT_TYPES
        )
        has_addr = out_address >= 0
        address_kind = np.where(has_addr, batch.out_key_kind, 0).astype(np.int8)
        multisig = batch.out_multisig_n > 0
        outputs = _conform(
            "outputs",
            {
                "output_id": n_out0 + np.arange(batch.n_outputs, dtype=np.int64),
                "tx_id": tx_ids[out_tx_local],
                "txid": hex_column(batch.txid[out_tx_local])
                if keep
                else pa.nulls(batch.n_outputs, pa.string()),
                "vout": (np.arange(batch.n_outputs) - batch.tx_first_output[out_tx_local]).astype(
                    np.int32
                ),
                "block_height": tx_height[out_tx_local].astype(np.int32),
                "value": batch.out_value if keep else pa.nulls(batch.n_outputs, pa.int64()),
                "script_type": out_types.cast(pa.string()),
                "address_id": masked(out_address, has_addr, pa.int64()),
                "address_type": masked(
                    np.asarray(SCRIPT_TYPE_NAMES, dtype=object)[address_kind], has_addr, pa.string()
                ),
                "address_derived": batch.out_script_type == 1,  # P2PK shown as its P2PKH address
                "multisig_m": masked(batch.out_multisig_m, multisig, pa.int8()),
                "multisig_n": masked(batch.out_multisig_n, multisig, pa.int8()),
                "script_pubkey": binary_column(
                    batch.buf,
                    batch.out_script_offset,
                    batch.out_script_len,
                    valid=None if keep else ~self._standard_scripts(batch, out_address, keys_all),
                ),
            },
        )
        not_cb = ~batch.in_is_coinbase
        spends = not_cb if keep else np.zeros(batch.n_inputs, bool)
        prev_txid = hex_column(batch.in_prev_txid(), valid=spends)
        inputs = _conform(
            "inputs",
            {
                "input_id": n_in0 + np.arange(batch.n_inputs, dtype=np.int64),
                "tx_id": tx_ids[in_tx_local],
                "txid": hex_column(batch.txid[in_tx_local])
                if keep
                else pa.nulls(batch.n_inputs, pa.string()),
                "vin": (np.arange(batch.n_inputs) - batch.tx_first_input[in_tx_local]).astype(
                    np.int32
                ),
                "block_height": tx_height[in_tx_local].astype(np.int32),
                "prev_txid": prev_txid,
                "prev_vout": masked(batch.in_prev_vout, spends, pa.int64()),
                "spent_output_id": masked(spent_output, not_cb, pa.int64()),
                "value": masked(in_value, spends, pa.int64()),
                "address_id": masked(in_address, in_address >= 0, pa.int64()),
                "sequence": batch.in_sequence,
                "is_coinbase": batch.in_is_coinbase,
                **self._scripts(batch),
            },
        )
        n_tx_per_block = np.diff(batch.block_first_tx)
        sizes = batch.block_end - batch.block_start
        base_tx = np.add.reduceat(batch.tx_base_size, batch.block_first_tx[:-1])
        all_tx = np.add.reduceat(batch.tx_size, batch.block_first_tx[:-1])
        stripped = sizes - (all_tx - base_tx)
        coinbase_value = out_sum[batch.block_first_tx[:-1]]
        fees = np.add.reduceat(fee, batch.block_first_tx[:-1])
        blocks = _conform(
            "blocks",
            {
                "height": heights.astype(np.int32),
                "hash": hex_column(batch.block_hash),
                "prev_hash": hex_column(batch.block_prev_hash),
                "merkle_root": hex_column(batch.block_merkle_root),
                "version": batch.block_version,
                "time": timestamps(batch.block_time),
                "bits": batch.block_bits,
                "nonce": batch.block_nonce,
                "tx_count": n_tx_per_block.astype(np.int32),
                "size": sizes,
                "stripped_size": stripped,
                "weight": stripped * 3 + sizes,
                "fees": fees,
                "coinbase_value": coinbase_value,
                "bip34_height": masked(
                    batch.block_bip34_height, batch.block_bip34_height >= 0, pa.int64()
                ),
                "first_tx_id": tx_ids[batch.block_first_tx[:-1]],
            },
        )
        new_ids = np.flatnonzero((out_address >= keys_all.shape[0] - n_new_addresses) & has_addr)
        first_seen = np.unique(out_address[new_ids], return_index=True)[1]
        new_outputs = new_ids[first_seen]  # the output where each new address appears first
        new_rows = keys_all[keys_all.shape[0] - n_new_addresses :]
        address_list = _conform(
            "address_list",
            {
                "address_id": out_address[new_outputs],
                "address": encode_key_rows(new_rows, self.network.code),
                "address_type": np.asarray(SCRIPT_TYPE_NAMES, dtype=object)[new_rows[:, 0]],
                "first_height": tx_height[out_tx_local[new_outputs]].astype(np.int32),
            },
        )
        work = [
            ("blocks", blocks, heights),
            ("txs", txs, tx_height),
            ("outputs", outputs, tx_height[out_tx_local]),
            ("inputs", inputs, tx_height[in_tx_local]),
            ("address_list", address_list, tx_height[out_tx_local[new_outputs]]),
        ]
        return self._write_batch(work, generation)

    @staticmethod
    def _standard_scripts(
        batch: ParsedBatch, out_address: np.ndarray, keys_all: np.ndarray
    ) -> np.ndarray:
        """Bool per output: its script is its address key's standard script (rebuilt by the
        views, so a default store writes NULL for it)."""
        keys = np.zeros((batch.n_outputs, ADDRESS_KEY_WIDTH), np.uint8)
        has = out_address >= 0
        keys[has] = keys_all[out_address[has]]
        return standard_scripts(keys, batch.buf, batch.out_script_offset, batch.out_script_len)

    def _scripts(self, batch: ParsedBatch) -> dict[str, pa.Array]:
        """The inputs' script_sig and witness columns: the bytes with `--keep-scripts`, else
        all NULL (they are most of a chain's bytes and stay in the node's blk files)."""
        if not self.manifest["keep_scripts"]:
            nulls = pa.nulls(batch.n_inputs, pa.binary())
            return {"script_sig": nulls, "witness": nulls}
        return {
            "script_sig": binary_column(batch.buf, batch.in_script_offset, batch.in_script_len),
            "witness": binary_column(
                batch.buf,
                batch.in_witness_offset,
                batch.in_witness_len,
                valid=batch.in_witness_offset >= 0,
            ),
        }

    def _write_batch(
        self, work: list[tuple[str, pa.Table, np.ndarray]], generation: int
    ) -> list[tuple[str, dict[str, Any]]]:
        written = []
        for table, data, heights in work:
            for entry in self._write_partitioned(table, data, heights, generation):
                written.append((table, entry))
        return written

    def _write_partitioned(
        self, table: str, data: pa.Table, heights: np.ndarray, generation: int
    ) -> list[dict[str, Any]]:
        """Write rows (sorted by height) into one file per height-range partition."""
        if data.num_rows == 0:
            return []
        bucket = heights // layout.HEIGHT_RANGE
        cuts = np.flatnonzero(np.diff(bucket)) + 1
        bounds = [0, *cuts.tolist(), data.num_rows]
        entries = []
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            part = data.slice(lo, hi - lo)
            rel = (
                f"{layout.partition_dir(table, int(heights[lo]))}/"
                f"g{generation:08d}-h{int(heights[lo]):010d}.parquet"
            )
            entries.append(self._write_file(rel, part, int(heights[lo]), int(heights[hi - 1])))
        return entries

    def _write_file(self, rel: str, data: pa.Table, lo: int, hi: int) -> dict[str, Any]:
        path = self.data_dir / rel
        table = Path(rel).parts[1]  # tables/<table>/height_range=.../...
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(data, tmp, **parquet_options(table, data.column_names))
        with open(tmp, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        replace_into_place(tmp, path)
        return {
            "path": rel,
            "rows": data.num_rows,
            "bytes": path.stat().st_size,
            "sha256": digest,
            "min_height": lo,
            "max_height": hi,
        }

    # ------------------------------------------------------------------------ commit
    def commit(self, ingest_info: dict[str, Any] | None = None, keep_last: int = 0) -> None:
        """Publish the appended batches with one manifest replace.

        `keep_last` batches stay unpublished (their files may still be being written), so the
        ingest loop can commit batch k-1 while batch k's files are written.
        """
        ready = self._staged[: max(len(self._staged) - keep_last, 0)]
        if not ready and not any(self.pending_files.values()):
            return
        for staged in ready:
            for table, entry in staged.files.result():
                self.pending_files[table].append(entry)
        self._staged = self._staged[len(ready) :]
        if ready:
            self._publish(ready[-1].counts, ready[-1].tip, ingest_info, len(ready))
            if self.counts_committed("outputs") - self._lookup_outputs > LOOKUP_EVERY_OUTPUTS:
                self.update_lookup()
            # the committed batches' arrays are freed by now: give their pages back, or the
            # heaps keep them, fragmented, and grow with the run (core/heap.py)
            trim_heap()

    def counts_committed(self, name: str) -> int:
        return int(self.manifest["counts"][name])

    def _publish(
        self,
        counts: dict[str, int],
        tip: dict[str, Any] | None,
        ingest_info: dict[str, Any] | None,
        generations: int = 1,
    ) -> None:
        for name in ARRAYS:
            # make appended array bytes durable before the manifest points at them
            fd = os.open(layout.array_path(self.data_dir, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        m = self.manifest
        m["generation"] += generations
        m["counts"] = dict(counts)
        m["tip"] = tip
        entries = [(t, f) for t in layout.TABLES for f in self.pending_files[t]]
        if entries:  # the new files' lines, durable before the manifest counts them
            data, log = layout.log_lines(m["files_log"], entries)
            layout.append_log(self.data_dir, m["files_log"], data)
            m["files_log"] = log
        self.pending_files = {t: [] for t in layout.TABLES}
        if ingest_info is not None:
            m["ingests"] = [*m["ingests"][-49:], ingest_info]
        layout.write_manifest(self.data_dir, m)

    def close(self) -> None:
        """Publish what is left, save the derived indexes, stop the writer thread."""
        try:
            self.commit()
            self._pool.shutdown()
            self.save_indexes()
        finally:
            if self.addresses is not None:
                self.addresses.close()
            self._unlock()

    def abort(self) -> None:
        """Stop without publishing anything more (after an error): the next open recovers."""
        for staged in self._staged:
            staged.files.cancel()
        self._pool.shutdown(wait=True)
        self._staged = []
        if self.addresses is not None:
            self.addresses.close()
        self._unlock()

    # ---------------------------------------------------------------------- rollback
    def rollback(self, fork_height: int) -> int:
        """Remove every block above `fork_height` (a reorg); commits. Returns blocks removed."""
        self.commit()  # nothing may be in flight while files are rewritten
        c = self.counts
        if c["blocks"] <= fork_height + 1:
            return 0
        keep_blocks = fork_height + 1
        first_tx = self._array("block_first_tx", c["blocks"])
        first_addr = self._array("block_first_address", c["blocks"])
        keep_txs = int(first_tx[keep_blocks])
        keep_addresses = int(first_addr[keep_blocks])
        tx_first_out = self._array("tx_first_output", c["txs"])
        tx_first_in = self._array("tx_first_input", c["txs"])
        keep_outputs = int(tx_first_out[keep_txs]) if keep_txs < c["txs"] else c["outputs"]
        keep_inputs = int(tx_first_in[keep_txs]) if keep_txs < c["txs"] else c["inputs"]
        removed = c["blocks"] - keep_blocks
        m = self.manifest
        # The lookup and address indexes stop trusting ids from the fork on before the
        # rollback is visible.
        self.lookup.clip(m, keep_outputs, keep_txs)
        assert self.addresses is not None
        self.addresses.clip(keep_addresses)
        files = layout.read_files(self.data_dir, m)
        for table in layout.TABLES:
            kept = []
            for entry in files[table]:
                if entry["min_height"] > fork_height:
                    continue
                if entry["max_height"] > fork_height:
                    data = pq.read_table(self.data_dir / entry["path"])
                    col = {"blocks": "height", "address_list": "first_height"}.get(
                        table, "block_height"
                    )
                    data = data.filter(pc.field(col) <= fork_height)
                    rel = entry["path"].replace(".parquet", f"-r{m['generation'] + 1}.parquet")
                    kept.append(self._write_file(rel, data, entry["min_height"], fork_height))
                else:
                    kept.append(entry)
            files[table] = kept
        self._write_log(files)  # a new log, published by the manifest below
        block_hash = self._array("block_hash", c["blocks"])
        self.counts = {
            "blocks": keep_blocks,
            "txs": keep_txs,
            "inputs": keep_inputs,
            "outputs": keep_outputs,
            "addresses": keep_addresses,
        }
        self.tip = {"height": fork_height, "hash": bytes(block_hash[fork_height][::-1]).hex()}
        m["epoch"] += 1
        self._publish(
            self.counts,
            self.tip,
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "rollback_to": fork_height,
                "blocks_removed": removed,
            },
        )
        # Unspend what the removed inputs spent, drop unlisted files, rebuild the indexes.
        self._recover()
        self._load_indexes()
        return removed
