"""Append parsed batches to the store: link inputs to outputs, assign dense ids, write parquet.

The writer owns every mutation of a store: `append` (a batch of consecutive blocks), `rollback`
(to a fork point) and `commit` (publish through the manifest). Ingest (`chainsleuth.store.ingest`)
drives it; nothing else writes.

Per batch: output address keys get dense address ids; the batch's outputs go into the UTXO
cache (store/utxocache.py); each non-coinbase input is resolved from it to the output it spends
(which must exist and be unspent), with its value and address, and that entry leaves the cache;
the graph arrays are appended; parquet files for the four tables are written under their
height-range partitions. `commit` marks the spent outputs in `output_spent_by_tx` (sorted by
output, once per commit) and makes it visible.
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
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES, ScriptType
from chainsleuth.parse.address_kernels import encode_key_rows
from chainsleuth.parse.blocks import ParsedBatch
from chainsleuth.store import layout, tracerows
from chainsleuth.store.addrindex import AddressIndex
from chainsleuth.store.columns import binary_column, hex_column, masked, timestamps
from chainsleuth.store.computed import standard_scripts
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.layout import ADDRESS_KEY_WIDTH, ARRAYS, COINBASE_SPENT_OUTPUT, NONE32
from chainsleuth.store.lookup import LookupBuilder
from chainsleuth.store.utxocache import NO_ADDRESS, UtxoCache

_SCRIPT_TYPES = pa.array(SCRIPT_TYPE_NAMES, pa.string())

# Why an input failed to resolve (the writer's own codes: none reaches the store).
UNKNOWN_TX = -2
VOUT_OUT_OF_RANGE = -3
ALREADY_SPENT = -4
UNSPENDABLE = -5
_REASONS = {
    UNKNOWN_TX: "spends an output of an unknown transaction",
    VOUT_OUT_OF_RANGE: "spends an output index the previous transaction does not have",
    ALREADY_SPENT: "spends an output that is already spent",
    UNSPENDABLE: "spends an OP_RETURN output (unspendable)",
}
_OP_RETURN = int(ScriptType.OP_RETURN)
#: Bring the lookup index (lookup.py) up to date at a commit once this many outputs are beyond
#: it, so that readers of a long-running ingest scan at most this much of the tail.
LOOKUP_EVERY_OUTPUTS = 1 << 24
#: The UTXO cache's rebuild (store/utxocache.py) reads the chain in chunks of this many txs
#: (≈ 4 outputs a tx, ≈ 70 B per unspent output gathered: ≈ 20-70 MB a chunk).
REBUILD_CHUNK_TXS = 1 << 18


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


class _StaleCache(Exception):
    """The saved UTXO cache does not match the chain it is caught up with: rebuild it."""


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
        # per unspent output, what linking an input needs (store/utxocache.py); it doubles
        # through a file in the data directory
        self.utxos = UtxoCache(spill_dir=self.data_dir)
        self._utxos_valid = True  # False once a failed append left it half-changed
        # (output ids, spending tx ids) of appended inputs, marked in output_spent_by_tx at the
        # next commit in output order
        self._pending_spends: list[tuple[np.ndarray, np.ndarray]] = []
        self.addresses: AddressIndex | None = None  # opened with the committed address keys
        self.tip: dict[str, Any] | None = manifest["tip"]
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
        (self.data_dir / "utxo-grow.tmp").unlink(missing_ok=True)  # a doubling's leftover
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
        self.utxos = UtxoCache(spill_dir=self.data_dir)  # the old one goes first
        self._utxos_valid = True
        self._pending_spends = []
        first_tx = 0
        if usable and state is not None and "utxo_used" in state:
            self.utxos = UtxoCache.load(
                str(self._index_dir() / "utxo"), int(state["utxo_used"]), self.data_dir
            )
            first_tx = int(state["txs"])
        try:
            self._rebuild_utxos(first_tx)
        except _StaleCache:  # the saved cache does not match the chain: from scratch
            self.utxos = UtxoCache(spill_dir=self.data_dir)
            self._rebuild_utxos(0)
        # The address index lives on disk beside index/ and brings itself up to date (it
        # survives rollbacks: see addrindex.py).
        keys = self._array("address_key", self.counts["addresses"])
        if self.addresses is None:
            self.addresses = AddressIndex.open(self.data_dir, np.asarray(keys))
        else:
            self.addresses._catch_up(np.asarray(keys))

    def _rebuild_utxos(self, first_tx: int) -> None:
        """Bring the UTXO cache from the committed state of the chain's first `first_tx` txs
        (0: an empty cache) to the committed chain's.

        Reads sequentially: the unspent outputs of txs >= first_tx, in chain order (spent ones
        are marked in `output_spent_by_tx`; `_recover` has undone uncommitted marks). Only
        the outputs before first_tx that inputs from there on spent are found at random (their
        tx by binary search, its txid): a catch-up after a crash covers the txs since the last
        `save_indexes`, a few at most.
        """
        c = self.counts
        n_tx, n_out, n_in = c["txs"], c["outputs"], c["inputs"]
        if first_tx >= n_tx:
            return
        first_out = self._array("tx_first_output", n_tx)
        txids = self._array("tx_txid", n_tx)
        o_start = int(first_out[first_tx])
        i_start = int(self._array("tx_first_input", n_tx)[first_tx])
        if o_start and i_start < n_in:
            spent = self._array("input_spent_output", n_in)
            for lo in range(i_start, n_in, REBUILD_CHUNK_TXS):
                ids = np.asarray(spent[lo : min(lo + REBUILD_CHUNK_TXS, n_in)])
                old = ids[(ids >= 0) & (ids < o_start)]
                if not old.shape[0]:
                    continue
                tx = np.searchsorted(first_out, old, side="right") - 1
                bad, outs, _, _ = self.utxos.take(txids[tx], old - np.asarray(first_out[tx]))
                if bad >= 0 or not np.array_equal(outs, old):
                    raise _StaleCache
        spent_by = self._array("output_spent_by_tx", n_out)
        script_type = self._array("output_script_type", n_out)
        values = self._array("output_value", n_out)
        address = self._array("output_address", n_out)
        for t0 in range(first_tx, n_tx, REBUILD_CHUNK_TXS):
            t1 = min(t0 + REBUILD_CHUNK_TXS, n_tx)
            o0 = int(first_out[t0])
            o1 = int(first_out[t1]) if t1 < n_tx else n_out
            if o1 == o0:
                continue
            fo = np.asarray(first_out[t0:t1]).astype(np.int64)
            live = (np.asarray(spent_by[o0:o1]) == NONE32) & (
                np.asarray(script_type[o0:o1]) != _OP_RETURN
            )
            rows = np.flatnonzero(live)
            tx_local = np.searchsorted(fo - o0, rows, side="right") - 1
            self._put_utxos(
                np.asarray(txids[t0:t1]),
                rows + o0 - fo[tx_local],
                rows + o0,
                np.asarray(values[o0:o1])[rows],
                np.asarray(address[o0:o1])[rows],
                n_tx,
                tx_local,
            )

    def _put_utxos(
        self,
        txids: np.ndarray,
        vouts: np.ndarray,
        outputs: np.ndarray,
        values: np.ndarray,
        addresses: np.ndarray,
        n_tx: int,
        tx_local: np.ndarray | None = None,
    ) -> None:
        """Add unspent outputs to the cache (of the first `n_tx` txs on disk). An entry they
        replace must be the same outpoint of an earlier tx with the same txid (BIP30: the later
        tx takes it over, as the txid -> tx index did); anything else is a collision of the
        cache's 88-bit keys, confirmed here against `tx_txid` and refused. With `tx_local`,
        `txids` holds one row per tx (UtxoCache.put)."""
        replaced = self.utxos.put(txids, vouts, outputs, values, addresses, tx_local)
        dup = np.flatnonzero(replaced >= 0)
        if dup.shape[0]:
            if tx_local is not None:
                txids = txids[tx_local]
            first_out = self._array("tx_first_output", n_tx)
            old = replaced[dup]
            tx = np.searchsorted(first_out, old, side="right") - 1
            same = (np.asarray(self._array("tx_txid", n_tx)[tx]) == txids[dup]).all(axis=1) & (
                old - np.asarray(first_out[tx]) == vouts[dup]
            )
            if not same.all():
                self._utxos_valid = False
                k = int(dup[np.flatnonzero(~same)[0]])
                raise StoreError(
                    f"outpoint {bytes(txids[k][::-1]).hex()}:{int(vouts[k])} has the UTXO "
                    "cache key of another unspent output (a collision of its 88-bit keys); "
                    "please report it"
                )

    def save_indexes(self) -> None:
        """Persist the derived indexes for the committed state (atomically, via a temp dir).

        The UTXO cache is saved only for a fully committed writer (nothing staged or pending);
        otherwise the next open rebuilds it from the arrays."""
        tmp = self.data_dir / "index.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        assert self.addresses is not None
        self.addresses.save(self.counts_committed("addresses"))
        state: dict[str, Any] = {
            "epoch": self.manifest["epoch"],
            "txs": self.counts["txs"],
            "addresses": self.counts["addresses"],
        }
        settled = (
            self._utxos_valid
            and not self._staged
            and not self._pending_spends
            and self.counts == self.manifest["counts"]
        )
        if settled:
            self.utxos.save(str(tmp / "utxo"))
            state["utxo_used"] = self.utxos.used
        (tmp / "state.json").write_text(json.dumps(state))
        publish_dir(tmp, self._index_dir())
        self.update_lookup()
        # the backward trace's rows (tracerows.py): written from the first block they are not
        # right for, so O(the blocks this run added), or after a rollback from its fork on
        # (opt-in: `ingest --trace-rows`, tracerows.enabled)
        if tracerows.enabled(self.data_dir):
            tracerows.ensure_rows(
                self.data_dir, ChainGraph.open(self.data_dir, self.manifest["counts"])
            )

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
        out_address, key_rows, new_rows = self._append_outputs(batch, out_tx_local)
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
        """1. Transactions. Returns each tx's block height."""
        n_in0, n_out0 = self.counts["inputs"], self.counts["outputs"]
        tx_height = heights[batch.tx_block]
        self._append_array("tx_txid", batch.txid)
        self._append_array("tx_first_output", n_out0 + batch.tx_first_output[:-1])
        self._append_array("tx_first_input", n_in0 + batch.tx_first_input[:-1])
        self._append_array("tx_height", tx_height)
        return tx_height

    def _append_outputs(
        self, batch: ParsedBatch, out_tx_local: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """2. Outputs and their addresses; the spendable ones go into the UTXO cache. Returns
        each output's address id (-1 none), the outputs that carry an address key, and which
        of those keys were new addresses."""
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
        live = np.flatnonzero(batch.out_script_type != _OP_RETURN)
        tx_local = out_tx_local[live]
        n_out0 = self.counts["outputs"]
        try:
            self._put_utxos(
                batch.txid,
                live - batch.tx_first_output[tx_local],
                n_out0 + live,
                batch.out_value[live],
                out_addr32[live],
                self.counts["txs"] + batch.n_tx,
                tx_local,
            )
        except BaseException:
            self._utxos_valid = False
            raise
        return out_address, key_rows, new_rows

    def _append_inputs(
        self, batch: ParsedBatch, tx_ids: np.ndarray, in_tx_local: np.ndarray, where: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """3. Inputs: resolve each from the UTXO cache to the output it spends (its entry
        leaves the cache; the spent mark waits for the commit). Returns each input's spent
        output id, value and address id (-1 none)."""
        spent_output = np.full(batch.n_inputs, COINBASE_SPENT_OUTPUT, np.int64)
        in_value = np.zeros(batch.n_inputs, np.int64)
        in_addr32 = np.full(batch.n_inputs, NO_ADDRESS, np.uint32)
        spending = np.flatnonzero(~batch.in_is_coinbase)
        if spending.shape[0]:
            bad, outs, values, addrs = self.utxos.take(
                batch.in_prev_txid()[spending], batch.in_prev_vout[spending]
            )
            if bad >= 0:
                self._utxos_valid = False  # the inputs before it left the cache
                self._input_error(batch, int(spending[bad]), in_tx_local, where)
            spent_output[spending] = outs
            in_value[spending] = values
            in_addr32[spending] = addrs
        # The inputs' rows go to disk before their spent marks (applied at commit), so that
        # recovery after a crash can find and undo every mark (see _recover).
        self._append_array("input_spent_output", spent_output)
        if spending.shape[0]:
            self._pending_spends.append((outs, tx_ids[in_tx_local[spending]]))
        in_address = np.where(in_addr32 == NO_ADDRESS, -1, in_addr32.astype(np.int64))
        # Kept beside input_spent_output so that clustering and tracing read input addresses
        # sequentially instead of gathering them through the outputs (4 B/input).
        self._append_array("input_address", in_addr32)
        return spent_output, in_value, in_address

    def _input_error(
        self, batch: ParsedBatch, i: int, in_tx_local: np.ndarray, where: list[str]
    ) -> None:
        """Raise the InputError of input `i`, which the UTXO cache does not hold. Finding out
        why reads the chain's txids (only on this error path)."""
        n_tx1 = self.counts["txs"] + batch.n_tx
        n_out1 = self.counts["outputs"] + batch.n_outputs
        prev = batch.in_prev_txid()[i]
        vout = int(batch.in_prev_vout[i])
        txids = self._array("tx_txid", n_tx1)
        prev_tx = -1
        for lo in range(0, n_tx1, REBUILD_CHUNK_TXS):
            hits = np.flatnonzero((txids[lo : lo + REBUILD_CHUNK_TXS] == prev).all(axis=1))
            if hits.shape[0]:
                prev_tx = lo + int(hits[-1])  # a later duplicate txid takes the earlier over
        reason = UNKNOWN_TX
        if prev_tx >= 0:
            first_out = self._array("tx_first_output", n_tx1)
            first = int(first_out[prev_tx])
            end = int(first_out[prev_tx + 1]) if prev_tx + 1 < n_tx1 else n_out1
            reason = VOUT_OUT_OF_RANGE
            if vout < end - first:
                kind = int(self._array("output_script_type", n_out1)[first + vout])
                reason = UNSPENDABLE if kind == _OP_RETURN else ALREADY_SPENT
        t = int(in_tx_local[i])
        b = int(batch.tx_block[t])
        vin = i - int(batch.tx_first_input[t])
        raise InputError(
            f"tx {batch.txid_hex(t)} input {vin} {_REASONS[reason]} "
            f"({bytes(prev[::-1]).hex()}:{vout})",
            path=where[b],
            offset=int(batch.in_prev_offset[i] - batch.block_start[b]),
            field="input prevout",
        )

    def _apply_spends(self) -> None:
        """Mark the outputs that the appended inputs spent, in output order (one pass over
        `output_spent_by_tx` per commit, not a random page write per input)."""
        if not self._pending_spends:
            return
        outs = np.concatenate([o for o, _ in self._pending_spends])
        txs = np.concatenate([t for _, t in self._pending_spends])
        self._pending_spends = []
        order = np.argsort(outs, kind="stable")
        spent_by = self._array("output_spent_by_tx", self.counts["outputs"], writable=True)
        _mark_spent(spent_by, outs[order], txs[order])
        if isinstance(spent_by, np.memmap):
            spent_by.flush()

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
                    valid=None if keep else ~self._standard_scripts(batch, out_address),
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
    def _standard_scripts(batch: ParsedBatch, out_address: np.ndarray) -> np.ndarray:
        """Bool per output: its script is its address key's standard script (rebuilt by the
        views, so a default store writes NULL for it).

        The key of an output with an address is the batch's own (`address_key[id]` holds the
        same bytes: the index gave the id for them), so nothing reads `address_key` at random
        here: reading `keys_all[out_address]` did, one page per reused address, on the writer
        thread (at 20 M txs under the memory limit, most of the bytes read; bench-scale.md)."""
        keys = np.zeros((batch.n_outputs, ADDRESS_KEY_WIDTH), np.uint8)
        has = out_address >= 0
        keys[has, 0] = batch.out_key_kind[has]
        keys[has, 1] = batch.out_key_len[has]
        keys[has, 2:] = batch.out_key_payload[has]
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
        # every appended input's row is on disk: its spent mark may go too (recovery undoes
        # the marks of inputs that end up uncommitted)
        self._apply_spends()
        ready = self._staged[: max(len(self._staged) - keep_last, 0)]
        if not ready and not any(self.pending_files.values()):
            return
        for staged in ready:
            for table, entry in staged.files.result():
                self.pending_files[table].append(entry)
        self._staged = self._staged[len(ready) :]
        if ready:
            self._publish(ready[-1].counts, ready[-1].tip, ingest_info, len(ready))
            if self.addresses is not None:  # its next merge may record these ids as durable
                self.addresses.vouch(self.counts_committed("addresses"))
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
        self._pending_spends = []
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
