"""Turn flat numpy arrays into Arrow columns without one Python object per row.

Hashes become display-order hex strings, script byte ranges become binary columns; both are
built directly from buffers filled by numba kernels. Used by the store writer.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


@njit(cache=True, nogil=True)
def _hex_kernel(rows, reverse, hexdigits, out):
    n, width = rows.shape
    for i in range(n):
        base = i * width * 2
        for j in range(width):
            byte = rows[i, width - 1 - j] if reverse else rows[i, j]
            out[base + 2 * j] = hexdigits[byte >> 4]
            out[base + 2 * j + 1] = hexdigits[byte & 15]


def hex_column(rows: np.ndarray, reverse: bool = True, valid: np.ndarray | None = None) -> pa.Array:
    """(n, w) uint8 rows -> Arrow strings of 2w hex chars (reversed: Bitcoin's display order)."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    n, width = rows.shape
    data = np.empty(n * width * 2, np.uint8)
    _hex_kernel(rows, reverse, _HEX, data)
    offsets = np.arange(0, n * width * 2 + 1, width * 2, dtype=np.int32)
    return _string_from_buffers(pa.string(), n, offsets, data, valid)


@njit(cache=True, nogil=True)
def _gather_kernel(buf, starts, lengths, offsets, out):
    for i in range(starts.shape[0]):
        s = starts[i]
        d = offsets[i]
        for j in range(lengths[i]):
            out[d + j] = buf[s + j]


def binary_column(
    buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, valid: np.ndarray | None = None
) -> pa.Array:
    """Byte ranges of `buf` -> an Arrow binary column (nulls where `valid` is False)."""
    lengths = np.where(starts < 0, 0, lengths).astype(np.int64)
    offsets = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.uint8)
    _gather_kernel(buf, starts.astype(np.int64), lengths, offsets, out)
    large = offsets[-1] >= 2**31
    typ = pa.large_binary() if large else pa.binary()
    return _string_from_buffers(
        typ, lengths.shape[0], offsets if large else offsets.astype(np.int32), out, valid
    )


def _string_from_buffers(
    typ: pa.DataType, n: int, offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None
) -> pa.Array:
    validity = None
    null_count = 0
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        null_count = int(n - valid.sum())
        if null_count:
            validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        typ, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=null_count
    )


def masked(values: np.ndarray, valid: np.ndarray, typ: pa.DataType | None = None) -> pa.Array:
    """An Arrow array of `values` with nulls where `valid` is False."""
    return pa.array(values, type=typ, mask=~np.asarray(valid, dtype=bool))


def timestamps(unix_seconds: np.ndarray) -> pa.Array:
    return pa.array(unix_seconds.astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC"))
