"""Address strings for millions of simulated keys at once, with numpy instead of a Python loop.

A large world has millions of addresses; `chainsleuth.core.address.encode_address` does one in
tens of microseconds, which would dominate generation time. This module does the same base58check
and bech32/bech32m arithmetic column by column over arrays of keys. The simulator's truth writer
(`chainsleuth.simulate.truth`) is the caller; `tests/simulate/test_encode.py` checks every kind
against `encode_address`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from chainsleuth.core.network import Network
from chainsleuth.core.script_types import ScriptType

__all__ = ["encode_keys"]

_B58 = np.frombuffer(b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", np.uint8)
_B32 = np.frombuffer(b"qpzry9x8gf2tvdw0s3jn54khce6mua7l", np.uint8)
_GEN = np.array([0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3], np.uint32)
_BECH32M = 0x2BC830A3


def _strings(chars: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
    """Rows of ASCII codes (optionally only the `keep` cells of each row) as an Arrow string array."""
    if keep is None:
        lengths = np.full(chars.shape[0], chars.shape[1], np.int64)
        data = np.ascontiguousarray(chars).ravel()
    else:
        lengths = keep.sum(axis=1).astype(np.int64)
        data = chars[keep]
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())
    )


def _base58check(version: int, hashes: np.ndarray) -> pa.Array:
    """`hashes` is (n, 20) uint8; returns base58check(version || hash) for each row."""
    n = hashes.shape[0]
    raw = np.empty((n, 25), np.uint8)
    raw[:, 0] = version
    raw[:, 1:21] = hashes
    sha = hashlib.sha256
    body = raw[:, :21].tobytes()
    checks = b"".join(
        sha(sha(body[i : i + 21]).digest()).digest()[:4] for i in range(0, 21 * n, 21)
    )
    raw[:, 21:] = np.frombuffer(checks, np.uint8).reshape(n, 4)
    # 25 bytes as seven 32-bit limbs (the first holds one byte), most significant first
    padded = np.zeros((n, 28), np.uint8)
    padded[:, 3:] = raw
    quads = padded.reshape(n, 7, 4).astype(np.uint64)
    limbs = (quads[:, :, 0] << 24) | (quads[:, :, 1] << 16) | (quads[:, :, 2] << 8) | quads[:, :, 3]
    # peel 5 base58 digits at a time: 58**5 < 2**30, so remainder * 2**32 + limb fits in 64 bits
    big = np.uint64(58**5)
    digits = np.zeros((n, 35), np.uint8)
    for group in range(7):
        rem: np.ndarray = np.zeros(n, np.uint64)
        for j in range(7):
            cur = (rem << np.uint64(32)) | limbs[:, j]
            limbs[:, j] = cur // big
            rem = cur % big
        for k in range(5):
            digits[:, 34 - 5 * group - k] = (rem % np.uint64(58)).astype(np.uint8)
            rem //= np.uint64(58)
    # keep digits from the first non-zero one, plus one '1' per leading zero byte
    nonzero = digits != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), 35)
    zero_bytes = np.where((raw != 0).any(axis=1), (raw != 0).argmax(axis=1), 25)
    start = first - zero_bytes
    keep = np.arange(35)[None, :] >= start[:, None]
    return _strings(_B58[digits], keep)


def _bech32(hrp: str, version: int, programs: np.ndarray) -> pa.Array:
    """`programs` is (n, L) uint8; returns the segwit addresses (bech32 for v0, else bech32m)."""
    n, length = programs.shape
    bits = np.unpackbits(programs, axis=1)
    n_words = -(-bits.shape[1] // 5)
    padded = np.zeros((n, n_words * 5), np.uint8)
    padded[:, : bits.shape[1]] = bits
    words = (padded.reshape(n, n_words, 5) * np.array([16, 8, 4, 2, 1], np.uint8)).sum(
        axis=2, dtype=np.uint8
    )
    data = np.empty((n, n_words + 1), np.uint8)
    data[:, 0] = version
    data[:, 1:] = words
    # the hrp contributes the same prefix to every checksum: run it once on a scalar
    chk = 1
    for v in [ord(ch) >> 5 for ch in hrp] + [0] + [ord(ch) & 31 for ch in hrp]:
        high = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (high >> i) & 1:
                chk ^= int(_GEN[i])
    c = np.full(n, chk, np.uint32)
    zeros = np.zeros(n, np.uint32)
    columns = [data[:, j].astype(np.uint32) for j in range(data.shape[1])] + [zeros] * 6
    for col in columns:
        top = c >> np.uint32(25)
        c = ((c & np.uint32(0x1FFFFFF)) << np.uint32(5)) ^ col
        for i in range(5):
            c ^= np.where((top >> np.uint32(i)) & np.uint32(1), _GEN[i], np.uint32(0))
    c ^= np.uint32(1 if version == 0 else _BECH32M)
    checksum = np.stack(
        [((c >> np.uint32(5 * (5 - i))) & np.uint32(31)).astype(np.uint8) for i in range(6)], axis=1
    )
    prefix = np.frombuffer((hrp + "1").encode(), np.uint8)
    chars = np.empty((n, len(prefix) + data.shape[1] + 6), np.uint8)
    chars[:, : len(prefix)] = prefix
    chars[:, len(prefix) :] = _B32[np.concatenate([data, checksum], axis=1)]
    return _strings(chars)


def encode_keys(stypes: np.ndarray, payloads: np.ndarray, network: Network) -> pa.Array:
    """Address strings, in input order, of keys `(stypes[i], payloads[i, :20 or 32])`.

    `stypes` holds ScriptType codes (P2PKH, P2SH, P2WPKH, P2WSH, P2TR); `payloads` is (n, 32)
    uint8 with 20-byte hashes left-aligned. Equal to `encode_address` row by row.
    """
    n = len(stypes)
    parts: list[pa.Array] = []
    positions: list[np.ndarray] = []
    kinds = (
        (ScriptType.P2PKH, lambda p: _base58check(network.p2pkh_version, p[:, :20])),
        (ScriptType.P2SH, lambda p: _base58check(network.p2sh_version, p[:, :20])),
        (ScriptType.P2WPKH, lambda p: _bech32(network.hrp, 0, p[:, :20])),
        (ScriptType.P2WSH, lambda p: _bech32(network.hrp, 0, p)),
        (ScriptType.P2TR, lambda p: _bech32(network.hrp, 1, p)),
    )
    known = np.zeros(n, bool)
    for kind, encoder in kinds:
        where = np.flatnonzero(stypes == int(kind))
        known[where] = True
        if len(where):
            parts.append(encoder(np.ascontiguousarray(payloads[where])))
            positions.append(where)
    if not known.all():
        bad = int(stypes[np.flatnonzero(~known)[0]])
        raise ValueError(f"no address encoding for script type {ScriptType(bad)}")
    if not parts:
        return pa.array([], pa.string())
    joined = pa.concat_arrays(parts)
    order = np.empty(n, np.int64)
    order[np.concatenate(positions)] = np.arange(n)
    return joined.take(pa.array(order))
