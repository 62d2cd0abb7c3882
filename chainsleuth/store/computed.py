"""Columns a default store computes from its graph arrays instead of holding them in parquet.

A default (slim) store writes these parquet columns as NULL, because the graph arrays already
hold what they say (issue 13, item 5; docs/design/store.md, "What a store keeps"):

- `txs.txid`, `outputs.txid`, `inputs.txid`: the tx's `tx_txid` row as display hex (a random
  32-byte hash costs 34 B in each of the three tables; the array holds it once, 32 B/tx);
- `inputs.prev_txid` and `inputs.value`: the spent output's tx and value (`input_spent_output`
  names it, `tx_first_output` and `output_value` give them);
- `outputs.script_pubkey` where the output script is exactly the standard script of its address
  key (P2PKH, P2SH, P2WPKH, P2WSH, P2TR, P2A, witness v1+): rebuilt from `address_key`. Any other
  script (P2PK, bare multisig, OP_RETURN, non-standard, a key-type script that is not byte for
  byte the standard one) is kept in the file;
- (format 5) `txs.input_value`, `txs.output_value` and `txs.fee`: sums over the tx's inputs'
  spent outputs and its outputs (`tx_first_input`, `input_spent_output`, `tx_first_output`,
  `output_value`); `inputs.prev_vout`: the spent output's position in its tx
  (`spent_output_id - tx_first_output[its tx]`). `txs.weight` and `txs.vsize` need no array:
  the views compute them from the row's `size` and `base_size` (store.COMPUTED).

The SQL views read `coalesce(file column, computed)` through the DuckDB functions registered
here (`register`), so a `--keep-scripts` store, whose files hold every column, never calls them,
and a query filtered on ids computes only the rows it returns. Each function takes a batch of ids
(Arrow, one DuckDB vector) and gathers from the memory-mapped arrays: no join over the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from duckdb.func import FunctionNullHandling, PythonUDFType
from numba import njit

from chainsleuth.core.script_types import ScriptType
from chainsleuth.store import layout
from chainsleuth.store.columns import hex_column

_P2PKH, _P2SH = int(ScriptType.P2PKH), int(ScriptType.P2SH)
_P2WPKH, _P2WSH = int(ScriptType.P2WPKH), int(ScriptType.P2WSH)
_P2TR, _P2A = int(ScriptType.P2TR), int(ScriptType.P2A)
_WITNESS_UNKNOWN = int(ScriptType.WITNESS_UNKNOWN)


@njit(cache=True, nogil=True)
def _script_length(kind, n):
    """Bytes of the standard script of an address key (kind, payload length); -1: none."""
    if kind == _P2PKH:
        return 25 if n == 20 else -1
    if kind == _P2SH:
        return 23 if n == 20 else -1
    if kind in (_P2WPKH, _P2WSH, _P2TR, _P2A):
        return 2 + n
    if kind == _WITNESS_UNKNOWN:
        return 1 + n if n >= 1 else -1
    return -1


@njit(cache=True, nogil=True)
def _write_script(key, out, at):
    """Write the standard script of one address_key row at out[at:] (its length is known)."""
    kind = key[0]
    n = key[1]
    if kind == _P2PKH:
        out[at] = 0x76
        out[at + 1] = 0xA9
        out[at + 2] = 0x14
        for j in range(20):
            out[at + 3 + j] = key[2 + j]
        out[at + 23] = 0x88
        out[at + 24] = 0xAC
    elif kind == _P2SH:
        out[at] = 0xA9
        out[at + 1] = 0x14
        for j in range(20):
            out[at + 2 + j] = key[2 + j]
        out[at + 22] = 0x87
    elif kind == _WITNESS_UNKNOWN:
        out[at] = 0x50 + key[2]  # OP_1..OP_16, then the program
        out[at + 1] = n - 1
        for j in range(n - 1):
            out[at + 2 + j] = key[3 + j]
    else:
        out[at] = 0 if kind in (_P2WPKH, _P2WSH) else 0x51
        out[at + 1] = n
        for j in range(n):
            out[at + 2 + j] = key[2 + j]


@njit(cache=True, nogil=True)
def _same_as_standard(keys, buf, starts, lengths, out):
    """out[i]: the script at buf[starts[i]:+lengths[i]] is exactly keys[i]'s standard script."""
    scratch = np.empty(64, np.uint8)
    for i in range(keys.shape[0]):
        want = _script_length(keys[i, 0], keys[i, 1])
        if want < 0 or want != lengths[i]:
            out[i] = False
            continue
        _write_script(keys[i], scratch, 0)
        same = True
        s = starts[i]
        for j in range(want):
            if buf[s + j] != scratch[j]:
                same = False
                break
        out[i] = same


@njit(cache=True, nogil=True)
def _script_lengths(keys, out):
    for i in range(keys.shape[0]):
        out[i] = _script_length(keys[i, 0], keys[i, 1])


@njit(cache=True, nogil=True)
def _fill_scripts(keys, offsets, out):
    for i in range(keys.shape[0]):
        if offsets[i + 1] > offsets[i]:
            _write_script(keys[i], out, offsets[i])


def standard_scripts(
    keys: np.ndarray, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Bool per output: its script can be rebuilt from its address_key row (`keys`, one row per
    output, kind 0 / length 0 for none), so a default store writes NULL for it."""
    out = np.zeros(keys.shape[0], np.bool_)
    if keys.shape[0]:
        _same_as_standard(
            np.ascontiguousarray(keys, np.uint8),
            buf,
            np.asarray(starts, np.int64),
            np.asarray(lengths, np.int64),
            out,
        )
    return out


def scripts_of_keys(keys: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """The standard output script of each address_key row, as an Arrow binary column (NULL
    where `valid` is False or the key has no standard script)."""
    keys = np.ascontiguousarray(keys, np.uint8)
    n = keys.shape[0]
    lengths = np.empty(n, np.int64)
    _script_lengths(keys, lengths)
    ok = lengths >= 0 if valid is None else (lengths >= 0) & valid
    lengths = np.where(ok, lengths, 0)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    _fill_scripts(keys, offsets, data)
    validity = None if ok.all() else pa.py_buffer(np.packbits(ok, bitorder="little"))
    return pa.Array.from_buffers(
        pa.binary(),
        n,
        [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
        null_count=int(n - ok.sum()),
    )


def _ids(arg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids with nulls as 0, valid mask) of one DuckDB vector passed as Arrow."""
    if isinstance(arg, pa.ChunkedArray):
        arg = arg.combine_chunks()
    valid = np.asarray(arg.is_valid().to_numpy(zero_copy_only=False), np.bool_)
    ids = np.asarray(arg.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    return ids, valid


@njit(cache=True, nogil=True)
def _tx_sums(tx, first_input, first_output, n_inputs, n_outputs, spent_output, values, out):
    """out[i] = (value spent by tx[i]'s inputs, value of its outputs, 1 if it is a coinbase)."""
    n_tx = first_input.shape[0]
    for i in range(tx.shape[0]):
        t = tx[i]
        i0 = first_input[t]
        i1 = first_input[t + 1] if t + 1 < n_tx else n_inputs
        o0 = first_output[t]
        o1 = first_output[t + 1] if t + 1 < n_tx else n_outputs
        spent = 0
        coinbase = 0
        for j in range(i0, i1):
            o = spent_output[j]
            if o < 0:
                coinbase = 1
            else:
                spent += values[o]
        paid = 0
        for j in range(o0, o1):
            paid += values[j]
        out[i, 0] = spent
        out[i, 1] = paid
        out[i, 2] = coinbase


class _Arrays:
    """The committed arrays the functions read, memory-mapped once per connection.

    `txs_of_outputs` (point reads: `Store.point_rows`): the arrays are mapped for scattered
    reads (`MADV_RANDOM`: a cold row costs its page, not the kernel's read-around window, 8 MB
    on the bench VM) and an output's tx is found with this function (the lookup index's fenced
    search of `tx_first_output`: 2-3 pages) instead of a binary search of the whole array.
    """

    def __init__(
        self,
        data_dir: Path,
        counts: dict[str, int],
        txs_of_outputs: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        random = txs_of_outputs is not None
        self._txs_of_outputs = txs_of_outputs

        def array(name: str) -> np.ndarray:
            spec = layout.ARRAYS[name]
            return layout.open_array(data_dir, name, counts[spec.count], random=random)

        self.tx_txid = array("tx_txid")
        self.tx_first_output = array("tx_first_output")
        self.tx_first_input = array("tx_first_input")
        self.input_spent_output = array("input_spent_output")
        self.values = array("output_value")
        self.address_key = array("address_key")

    def _tx_sums(self, arg: Any) -> tuple[np.ndarray, np.ndarray]:
        """(per tx id: spent value, output value, coinbase flag; valid mask)."""
        ids, valid = _ids(arg)
        out = np.zeros((ids.shape[0], 3), np.int64)
        if self.tx_first_input.shape[0]:
            _tx_sums(
                ids,
                self.tx_first_input,
                self.tx_first_output,
                self.input_spent_output.shape[0],
                self.values.shape[0],
                self.input_spent_output,
                self.values,
                out,
            )
        return out, valid

    def tx_input_value(self, arg: Any) -> pa.Array:
        sums, valid = self._tx_sums(arg)
        return pa.array(sums[:, 0], pa.int64(), mask=~valid)

    def tx_output_value(self, arg: Any) -> pa.Array:
        sums, valid = self._tx_sums(arg)
        return pa.array(sums[:, 1], pa.int64(), mask=~valid)

    def tx_fee(self, arg: Any) -> pa.Array:
        """Inputs' value less outputs' value; 0 for a coinbase (as the writer computes it)."""
        sums, valid = self._tx_sums(arg)
        fee = np.where(sums[:, 2] == 1, 0, sums[:, 0] - sums[:, 1])
        return pa.array(fee, pa.int64(), mask=~valid)

    def _tx_of(self, outputs: np.ndarray) -> np.ndarray:
        """The tx that created each output id (-1 before the first tx)."""
        if self._txs_of_outputs is not None:
            return np.asarray(self._txs_of_outputs(outputs), np.int64)
        return np.searchsorted(self.tx_first_output, outputs, side="right") - 1

    def output_vout(self, arg: Any) -> pa.Array:
        ids, valid = _ids(arg)
        tx = np.maximum(self._tx_of(ids), 0)
        vout = ids - (np.asarray(self.tx_first_output[tx], np.int64) if tx.shape[0] else 0)
        return pa.array(vout, pa.int64(), mask=~valid)

    def txid(self, arg: Any) -> pa.Array:
        ids, valid = _ids(arg)
        return hex_column(self.tx_txid[ids], valid=valid)

    def output_txid(self, arg: Any) -> pa.Array:
        ids, valid = _ids(arg)
        tx = self._tx_of(ids)
        return hex_column(self.tx_txid[np.maximum(tx, 0)], valid=valid)

    def output_value(self, arg: Any) -> pa.Array:
        ids, valid = _ids(arg)
        return pa.array(np.asarray(self.values[ids], np.int64), pa.int64(), mask=~valid)

    def script(self, arg: Any) -> pa.Array:
        ids, valid = _ids(arg)
        return scripts_of_keys(self.address_key[ids], valid)


#: name -> (method of _Arrays, argument type, result type)
FUNCTIONS = {
    "cs_txid": ("txid", "BIGINT", "VARCHAR"),
    "cs_output_txid": ("output_txid", "BIGINT", "VARCHAR"),
    "cs_output_value": ("output_value", "BIGINT", "BIGINT"),
    "cs_script": ("script", "BIGINT", "BLOB"),
    "cs_tx_input_value": ("tx_input_value", "BIGINT", "BIGINT"),
    "cs_tx_output_value": ("tx_output_value", "BIGINT", "BIGINT"),
    "cs_tx_fee": ("tx_fee", "BIGINT", "BIGINT"),
    "cs_output_vout": ("output_vout", "BIGINT", "BIGINT"),
}


def register(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    counts: dict[str, int],
    txs_of_outputs: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """Define the views' computed-column functions on `con` (and its cursors), reading the
    committed rows of the store's arrays (`counts`: the manifest's). With `txs_of_outputs`
    the functions are for a few rows at a time (see `_Arrays`)."""
    arrays = _Arrays(data_dir, counts, txs_of_outputs)
    for name, (method, arg, result) in FUNCTIONS.items():
        con.create_function(
            name,
            getattr(arrays, method),
            [duckdb.sqltype(arg)],
            duckdb.sqltype(result),
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
            side_effects=False,
        )
