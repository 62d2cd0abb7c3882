"""The on-disk layout of a chainsleuth store, and its single commit point, the manifest.

    DATA/
      manifest.json            what is visible: counts, tip, every parquet file (with sha256)
      tables/<table>/height_range=<lo>-<hi>/g<generation>-<part>.parquet
      arrays/<name>.bin        memory-mapped graph arrays (raw little-endian, fixed-width rows)
      index/                   derived, rebuildable indexes (the outpoint hash table)
      address_index/           the address hash table, sharded, updated in place (addrindex.py)
      lookup/                  address -> outputs and txid -> tx runs (lookup.py)

Every later stage reads the store through this layout (parquet files, arrays, manifest).

Atomicity: an ingest writes new parquet files and appends to the arrays, then replaces
manifest.json in one `os.replace`. Readers see only files the manifest lists and only the first
`count` rows of each array, so a crash at any moment leaves the previous state readable; the next
run deletes unlisted files and truncates the arrays (see `StoreWriter.open`).
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from chainsleuth.core.address import KEY_PAYLOAD_WIDTH
from chainsleuth.core.errors import StoreError

# the one atomic write lives in core.files; re-exported because callers write layout.atomic_write_bytes
from chainsleuth.core.files import atomic_write_bytes as atomic_write_bytes

#: 2: address_list table, input_address array; 3: block_location and tx_offset arrays, and
#: scriptSigs and witnesses kept only with `ingest --keep-scripts` (manifest "keep_scripts");
#: 4: without --keep-scripts, txids, inputs' prev_txid and value, and standard output scripts
#: are NULL in the files and computed by the views from the arrays (store/computed.py);
#: 5: also txs' input_value, output_value, fee, vsize, weight and inputs' prev_vout, and
#: counting columns written DELTA_BINARY_PACKED (DELTA_COLUMNS)
FORMAT_VERSION = 5
#: What changed at each format, for the one line that refuses an older store.
FORMAT_CHANGES = {
    3: "scriptSigs and witnesses kept only with --keep-scripts",
    4: "txids, spent values and standard scripts computed from the arrays",
    5: "fees, tx values, weights and spent output positions computed too",
}
#: Counting columns (ids, positions, block heights and times) written with parquet's
#: DELTA_BINARY_PACKED encoding instead of PLAIN (both under zstd): each kept only where it
#: measurably shrank the column (docs/design/store.md, "Format 5").
DELTA_COLUMNS: dict[str, tuple[str, ...]] = {
    "blocks": ("height", "version", "time", "bip34_height", "first_tx_id"),
    "txs": ("tx_id", "index_in_block", "version", "first_input_id", "first_output_id"),
    "inputs": ("input_id", "tx_id", "vin", "spent_output_id"),
    "outputs": ("output_id", "tx_id", "vout", "address_id"),
    "address_list": ("address_id",),
}
TABLES = ("blocks", "txs", "inputs", "outputs", "address_list")
HEIGHT_RANGE = 10_000  # blocks per hive partition (height_range=0000000000-0000009999)
NONE32 = np.uint32(0xFFFFFFFF)  # "no id" in uint32 id arrays (unspent output, no address)
COINBASE_SPENT_OUTPUT = -1  # input_spent_output of a coinbase input (it spends nothing)
#: Bytes of an address_key row: kind, payload length, then the payload
#: (core.address.KEY_PAYLOAD_WIDTH bytes, zero-padded).
ADDRESS_KEY_WIDTH = 2 + KEY_PAYLOAD_WIDTH


@dataclass(frozen=True)
class ArraySpec:
    """One memory-mapped array: dtype and row width; its row count comes from `counts`."""

    dtype: str
    width: int  # values per row (32 for hashes)
    count: str  # which entry of manifest["counts"] gives its number of rows
    doc: str


# Bytes per item are written down here because they decide what fits at mainnet scale.
ARRAYS: dict[str, ArraySpec] = {
    "block_hash": ArraySpec("u1", 32, "blocks", "block hash, internal byte order (32 B/block)"),
    "block_time": ArraySpec("<i8", 1, "blocks", "header time, unix seconds (8 B/block)"),
    "block_first_tx": ArraySpec("<i8", 1, "blocks", "id of the block's first tx (8 B/block)"),
    "block_first_address": ArraySpec(
        "<i8", 1, "blocks", "address count before the block: rollback point (8 B/block)"
    ),
    "tx_txid": ArraySpec("u1", 32, "txs", "txid, internal byte order (32 B/tx)"),
    "tx_first_output": ArraySpec("<i8", 1, "txs", "id of the tx's first output (8 B/tx)"),
    "tx_first_input": ArraySpec("<i8", 1, "txs", "id of the tx's first input (8 B/tx)"),
    "tx_height": ArraySpec("<i4", 1, "txs", "block height (4 B/tx)"),
    "output_value": ArraySpec("<i8", 1, "outputs", "satoshis (8 B/output)"),
    "output_script_type": ArraySpec("u1", 1, "outputs", "ScriptType code (1 B/output)"),
    "output_address": ArraySpec("<u4", 1, "outputs", "address id, 0xFFFFFFFF none (4 B/output)"),
    "output_spent_by_tx": ArraySpec(
        "<u4", 1, "outputs", "spending tx id, 0xFFFFFFFF unspent (4 B/output)"
    ),
    "input_address": ArraySpec(
        "<u4", 1, "inputs", "address id of the spent output, 0xFFFFFFFF none (4 B/input)"
    ),
    "input_spent_output": ArraySpec(
        "<i8", 1, "inputs", "output id the input spends, -1 coinbase (8 B/input)"
    ),
    "address_key": ArraySpec(
        "u1", ADDRESS_KEY_WIDTH, "addresses", "kind, length, 41-byte payload (43 B/addr)"
    ),
    # Where each block's bytes are in the node's blk files, so that `tx --raw` can read a tx's
    # full bytes (scriptSigs and witnesses are not in a default store; see store/raw.py).
    "block_location": ArraySpec(
        "<i8",
        3,
        "blocks",
        "blk file number (-1: ingested over RPC), byte offset of the header in it, length (24 B/block)",
    ),
    "tx_offset": ArraySpec(
        "<u4",
        1,
        "txs",
        "byte offset of the tx inside its block; its length is up to the next (4 B/tx)",
    ),
}


_S, _I4, _I8, _B = pa.string(), pa.int32(), pa.int64(), pa.bool_()
_TIME = pa.timestamp("s", tz="UTC")

#: The parquet tables' columns and types. The SQL views (store.VIEWS) are built on these; Spark
#: and other readers can rely on them. Add columns at the end; never rename.
SCHEMAS: dict[str, pa.Schema] = {
    "blocks": pa.schema(
        [
            ("height", _I4),
            ("hash", _S),
            ("prev_hash", _S),
            ("merkle_root", _S),
            ("version", _I8),
            ("time", _TIME),
            ("bits", _I8),
            ("nonce", _I8),
            ("tx_count", _I4),
            ("size", _I8),
            ("stripped_size", _I8),
            ("weight", _I8),
            ("fees", _I8),
            ("coinbase_value", _I8),
            ("bip34_height", _I8),
            ("first_tx_id", _I8),
        ]
    ),
    "txs": pa.schema(
        [
            ("tx_id", _I8),
            ("txid", _S),
            ("block_height", _I4),
            ("block_time", _TIME),
            ("index_in_block", _I4),
            ("version", _I8),
            ("locktime", _I8),
            ("n_inputs", _I4),
            ("n_outputs", _I4),
            ("input_value", _I8),
            ("output_value", _I8),
            ("fee", _I8),
            ("size", _I8),
            ("base_size", _I8),
            ("vsize", _I8),
            ("weight", _I8),
            ("is_coinbase", _B),
            ("is_segwit", _B),
            ("signals_rbf", _B),
            ("first_input_id", _I8),
            ("first_output_id", _I8),
        ]
    ),
    "outputs": pa.schema(
        [
            ("output_id", _I8),
            ("tx_id", _I8),
            ("txid", _S),
            ("vout", _I4),
            ("block_height", _I4),
            ("value", _I8),
            ("script_type", _S),
            ("address_id", _I8),
            ("address_type", _S),
            ("address_derived", _B),
            ("multisig_m", pa.int8()),
            ("multisig_n", pa.int8()),
            ("script_pubkey", pa.binary()),
        ]
    ),
    "inputs": pa.schema(
        [
            ("input_id", _I8),
            ("tx_id", _I8),
            ("txid", _S),
            ("vin", _I4),
            ("block_height", _I4),
            ("prev_txid", _S),
            ("prev_vout", _I8),
            ("spent_output_id", _I8),
            ("value", _I8),
            ("address_id", _I8),
            ("sequence", _I8),
            ("is_coinbase", _B),
            # NULL unless the store was ingested with --keep-scripts (manifest "keep_scripts")
            ("script_sig", pa.binary()),
            ("witness", pa.binary()),
        ]
    ),
    # One row per address, written once, when the address first appears: the outputs and inputs
    # tables hold only address ids, and the views join this for the address string, so each
    # address is encoded once instead of at every output and input that uses it.
    "address_list": pa.schema(
        [
            ("address_id", _I8),
            ("address", _S),
            ("address_type", _S),
            ("first_height", _I4),
        ]
    ),
}


def partition_dir(table: str, height: int) -> str:
    lo = (height // HEIGHT_RANGE) * HEIGHT_RANGE
    return f"tables/{table}/height_range={lo:010d}-{lo + HEIGHT_RANGE - 1:010d}"


def empty_manifest(network: str, keep_scripts: bool = False) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "generation": 0,
        "epoch": 0,  # incremented by every rollback; derived indexes of another epoch are rebuilt
        "network": network,
        "tip": None,
        "counts": {"blocks": 0, "txs": 0, "inputs": 0, "outputs": 0, "addresses": 0},
        # False: the inputs table's script_sig and witness are NULL (the bytes stay in the
        # node's blk files; `tx --raw` reads them). Chosen by the first ingest, then fixed.
        "keep_scripts": keep_scripts,
        "files": {t: [] for t in TABLES},
        "ingests": [],
    }


def settle_keep_scripts(data_dir: Path, manifest: dict[str, Any], wanted: bool | None) -> bool:
    """The store's `--keep-scripts` choice: a later ingest keeps the first one's (None), or is
    refused with one line when it asks for the other (a store half with and half without
    scriptSigs would answer SQL on them differently by height)."""
    kept = bool(manifest.get("keep_scripts", True))
    if wanted is not None and wanted != kept and manifest["counts"]["blocks"] > 0:
        have = "keeps scriptSigs and witnesses" if kept else "does not keep scriptSigs or witnesses"
        flag = "--keep-scripts" if wanted else "--no-keep-scripts"
        raise StoreError(
            f"{data_dir} {have} (chosen by its first ingest); {flag} asks for the other: "
            "leave the flag out, or ingest into a new --data directory"
        )
    return kept if wanted is None or manifest["counts"]["blocks"] > 0 else wanted


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The committed manifest, or None when there is no store; refuses other formats."""
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise StoreError(
            f"{data_dir} holds a store of format {manifest.get('format')}; this chainsleuth "
            f"reads format {FORMAT_VERSION} ({FORMAT_CHANGES[FORMAT_VERSION]}). "
            "Ingest again into a new --data directory."
        )
    return manifest


def write_manifest(data_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(
        Path(data_dir) / "manifest.json", json.dumps(manifest, indent=1).encode() + b"\n"
    )


def array_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "arrays" / f"{name}.bin"


def random_access(array: np.ndarray) -> np.ndarray:
    """Tell the kernel a memory-mapped array is read at random (`MADV_RANDOM`), for lookups.

    Without it each cold page fault reads the pages around it too (read-around): measured on
    the medium world, a cold hash-table probe took 10.6 ms with it and 0.15 ms without.
    """
    raw = getattr(array, "_mmap", None)
    if raw is not None and hasattr(mmap, "MADV_RANDOM"):
        raw.madvise(mmap.MADV_RANDOM)
    return array


def open_array(
    data_dir: Path, name: str, rows: int, writable: bool = False, random: bool = False
) -> np.ndarray:
    """The first `rows` rows of an array, memory-mapped (a zero-length array when empty).

    `random`: the caller reads a few scattered rows (lookups), not a range (see random_access).
    """
    spec = ARRAYS[name]
    shape: tuple[int, ...] = (rows,) if spec.width == 1 else (rows, spec.width)
    if rows == 0:
        return np.zeros(shape, spec.dtype)
    array = np.memmap(
        array_path(data_dir, name), dtype=spec.dtype, mode="r+" if writable else "r", shape=shape
    )
    return random_access(array) if random else array
