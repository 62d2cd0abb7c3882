"""The batch address codec (numba): address keys to an Arrow string column, and back.

This is the one batch codec of the package; `chainsleuth.core.address` is the one scalar
reference, and every other module calls one of the two. The alphabets, generators and checksum
constants are taken from `core.address`, so the two cannot drift apart on them.

Encoding: ingest classifies every output into an address key `(kind, payload)` (see
`chainsleuth.core.address`) held in flat numpy arrays; `encode_address_keys` renders a whole batch
of keys as address strings for one network without creating a Python object per output. One
kernel sizes and writes all strings into a single byte buffer with int32 offsets, and the result
is wrapped as a `pyarrow.StringArray` zero-copy. `encode_key_rows` does the same for the store's
`address_key` rows, and the simulator's `encode_keys` for its key arrays. The strings must equal
`chainsleuth.core.address.encode_address` exactly.

Decoding: `decode_addresses` decodes the common forms of a whole batch of address strings (half a
million tags: `decode_address` one by one took about five seconds, half of a tag import). It only
ever *accepts*: every string it does not accept (an error, an uppercase bech32 string, a witness
version 2-16 or pay-to-anchor program) goes to `decode_address`, which gives the verdict and the
message.

`tests/parse/test_address_kernels.py` and `tests/parse/test_address_codecs.py` check both
directions against `core.address` on random keys (hypothesis, shared strategies in
`tests/strategies.py`) and on the shared address vectors.

SHA-256 (for base58check checksums), base58 and the bech32/bech32m checksum are written here by
hand in numba. The 32-bit SHA-256 words are carried in int64 and masked to 32 bits: numba widens
uint32 arithmetic to uint64, and mixing uint64 with plain integers silently gives float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from numba import njit

from chainsleuth.core.address import (
    B58_ALPHABET,
    BECH32_CHARSET,
    BECH32_GENERATORS,
    KEY_PAYLOAD_WIDTH,
    P2A_PROGRAM,
    AddressError,
    Bech32Spec,
)
from chainsleuth.core.network import BY_CODE, NETWORKS
from chainsleuth.core.script_types import ScriptType

__all__ = [
    "decode_addresses",
    "encode_address_keys",
    "encode_key_rows",
    "network_mask",
    "sha256_digest",
]

# ---------------------------------------------------------------------------------------------
# SHA-256 (FIPS 180-4)

_K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.int64,
)  # fmt: skip
_H0 = np.array(
    [
        0x6A09E667,
        0xBB67AE85,
        0x3C6EF372,
        0xA54FF53A,
        0x510E527F,
        0x9B05688C,
        0x1F83D9AB,
        0x5BE0CD19,
    ],
    dtype=np.int64,
)
_M32 = 0xFFFFFFFF


@njit(cache=True, inline="always")
def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M32


@njit(cache=True, nogil=True)
def _sha256_compress(state: np.ndarray, block: np.ndarray, w: np.ndarray) -> None:
    """One 64-byte block into the 8-word state (int64 carriers of 32-bit words)."""
    for t in range(16):
        j = 4 * t
        w[t] = (
            (int(block[j]) << 24)
            | (int(block[j + 1]) << 16)
            | (int(block[j + 2]) << 8)
            | int(block[j + 3])
        )
    for t in range(16, 64):
        x = w[t - 15]
        y = w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & _M32
    a = state[0]
    b = state[1]
    c = state[2]
    d = state[3]
    e = state[4]
    f = state[5]
    g = state[6]
    h = state[7]
    for t in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ ((e ^ _M32) & g)
        t1 = (h + s1 + ch + _K[t] + w[t]) & _M32
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = s0 + maj
        h = g
        g = f
        f = e
        e = (d + t1) & _M32
        d = c
        c = b
        b = a
        a = (t1 + t2) & _M32
    state[0] = (state[0] + a) & _M32
    state[1] = (state[1] + b) & _M32
    state[2] = (state[2] + c) & _M32
    state[3] = (state[3] + d) & _M32
    state[4] = (state[4] + e) & _M32
    state[5] = (state[5] + f) & _M32
    state[6] = (state[6] + g) & _M32
    state[7] = (state[7] + h) & _M32


@njit(cache=True, nogil=True)
def _sha256_into(
    msg: np.ndarray, out: np.ndarray, block: np.ndarray, w: np.ndarray, state: np.ndarray
) -> None:
    """SHA-256 of `msg` (uint8) into `out[:32]`, using caller-owned scratch (no allocation)."""
    for i in range(8):
        state[i] = _H0[i]
    n = msg.shape[0]
    full = n // 64
    for b in range(full):
        _sha256_compress(state, msg[64 * b : 64 * b + 64], w)
    r = n - 64 * full
    for i in range(r):
        block[i] = msg[64 * full + i]
    block[r] = 0x80
    for i in range(r + 1, 64):
        block[i] = 0
    if r + 1 > 56:
        _sha256_compress(state, block, w)
        for i in range(64):
            block[i] = 0
    bits = n * 8
    for i in range(8):
        block[63 - i] = (bits >> (8 * i)) & 0xFF
    _sha256_compress(state, block, w)
    for i in range(8):
        v = state[i]
        out[4 * i] = (v >> 24) & 0xFF
        out[4 * i + 1] = (v >> 16) & 0xFF
        out[4 * i + 2] = (v >> 8) & 0xFF
        out[4 * i + 3] = v & 0xFF


@njit(cache=True, nogil=True)
def sha256_digest(msg: np.ndarray) -> np.ndarray:
    """SHA-256 of a uint8 array: `bytes(sha256_digest(np.zeros(0, np.uint8)))[:2] == b"\\xe3\\xb0"`."""
    out = np.empty(32, dtype=np.uint8)
    _sha256_into(
        msg,
        out,
        np.empty(64, dtype=np.uint8),
        np.empty(64, dtype=np.int64),
        np.empty(8, dtype=np.int64),
    )
    return out


# ---------------------------------------------------------------------------------------------
# base58 and bech32

_B58_ALPHABET = np.frombuffer(B58_ALPHABET.encode("ascii"), dtype=np.uint8).copy()
_B58_POW5 = 58**5  # 656356768 < 2**30: long division by it keeps (rem << 32) | limb below 2**62
_BECH32_CHARSET = np.frombuffer(BECH32_CHARSET.encode("ascii"), dtype=np.uint8).copy()
_BECH32_CONST = int(Bech32Spec.BECH32)
_BECH32M_CONST = int(Bech32Spec.BECH32M)
_NOT_A_DIGIT = 255
#: base58 digit of each byte value, 255 for bytes outside the alphabet
_B58_DIGIT = np.full(256, _NOT_A_DIGIT, np.uint8)
_B58_DIGIT[_B58_ALPHABET] = np.arange(58, dtype=np.uint8)
#: bech32 word of each lowercase charset byte, 255 for every other byte (uppercase included:
#: the decoder leaves uppercase strings to `decode_address`)
_BECH32_WORD = np.full(256, _NOT_A_DIGIT, np.uint8)
_BECH32_WORD[_BECH32_CHARSET] = np.arange(32, dtype=np.uint8)
_P2A_0, _P2A_1 = P2A_PROGRAM[0], P2A_PROGRAM[1]


def _generator_table() -> np.ndarray:
    table = np.zeros(32, dtype=np.int64)
    for top in range(32):
        for i in range(5):
            if (top >> i) & 1:
                table[top] ^= BECH32_GENERATORS[i]
    return table


#: xor of the BIP173 generators selected by the 5 bits shifted out of the checksum, per value
_POLYMOD_TABLE = _generator_table()


@njit(cache=True, nogil=True)
def _base58_write(src: np.ndarray, out: np.ndarray, pos: int, limbs: np.ndarray) -> int:
    """Base58 of `src` written at `out[pos]`; returns the new end. `limbs` is int64 scratch.

    Divides a base-2**32 number by 58**5 per pass (a fifth of the passes of byte-wise long
    division), then splits each base-58**5 group into five base58 digits.
    """
    n = src.shape[0]
    zeros = 0
    while zeros < n and src[zeros] == 0:
        zeros += 1
    nlimbs = (n + 3) // 4
    head = n - 4 * (nlimbs - 1)  # bytes in the most significant limb, 1..4
    k = 0
    for li in range(nlimbs):
        take = head if li == 0 else 4
        v = 0
        for _ in range(take):
            v = (v << 8) | int(src[k])
            k += 1
        limbs[li] = v
    # groups of five base58 digits, least significant first, stored after the limbs
    groups_at = nlimbs
    ngroups = 0
    start = 0
    while start < nlimbs and limbs[start] == 0:
        start += 1
    while start < nlimbs:
        rem = 0
        for li in range(start, nlimbs):
            cur = (rem << 32) | limbs[li]
            limbs[li] = cur // _B58_POW5
            rem = cur - limbs[li] * _B58_POW5
        limbs[groups_at + ngroups] = rem
        ngroups += 1
        while start < nlimbs and limbs[start] == 0:
            start += 1
    # count digits without leading zeros, then write most significant first
    ndigits = 5 * ngroups
    if ngroups > 0:
        top = limbs[groups_at + ngroups - 1]
        lead = 5
        while top > 0:
            top //= 58
            lead -= 1
        ndigits -= lead
    for _ in range(zeros):
        out[pos] = 49  # "1"
        pos += 1
    end = pos + ndigits
    p = end - 1
    for gi in range(ngroups):
        g = limbs[groups_at + gi]
        for _ in range(5):
            if p < pos:
                break
            out[p] = _B58_ALPHABET[g % 58]
            g //= 58
            p -= 1
    return end


@njit(cache=True, inline="always")
def _polymod_step(chk: int, value: int) -> int:
    return (((chk & 0x1FFFFFF) << 5) ^ value) ^ _POLYMOD_TABLE[chk >> 25]


@njit(cache=True, nogil=True)
def _hrp_state(hrp: np.ndarray) -> int:
    """Checksum state after the expanded human-readable part, shared by every row of a batch."""
    chk = 1
    for c in hrp:
        chk = _polymod_step(chk, int(c) >> 5)
    chk = _polymod_step(chk, 0)
    for c in hrp:
        chk = _polymod_step(chk, int(c) & 31)
    return chk


@njit(cache=True, nogil=True)
def _segwit_write(
    hrp: np.ndarray,
    hrp_chk: int,
    version: int,
    program: np.ndarray,
    out: np.ndarray,
    pos: int,
    words: np.ndarray,
) -> int:
    """Bech32 (v0) or bech32m (v1+) address at `out[pos]`; returns the new end."""
    nwords = 1
    words[0] = version
    acc = 0
    bits = 0
    for i in range(program.shape[0]):
        acc = ((acc << 8) | int(program[i])) & 0xFFF
        bits += 8
        while bits >= 5:
            bits -= 5
            words[nwords] = (acc >> bits) & 31
            nwords += 1
    if bits > 0:
        words[nwords] = (acc << (5 - bits)) & 31
        nwords += 1
    chk = hrp_chk
    for i in range(nwords):
        chk = _polymod_step(chk, words[i])
    for _ in range(6):
        chk = _polymod_step(chk, 0)
    chk ^= _BECH32_CONST if version == 0 else _BECH32M_CONST
    for c in hrp:
        out[pos] = c
        pos += 1
    out[pos] = 49  # "1"
    pos += 1
    for i in range(nwords):
        out[pos] = _BECH32_CHARSET[words[i]]
        pos += 1
    for i in range(6):
        out[pos] = _BECH32_CHARSET[(chk >> (5 * (5 - i))) & 31]
        pos += 1
    return pos


# ---------------------------------------------------------------------------------------------
# the batch kernel

_P2PKH = int(ScriptType.P2PKH)
_P2SH = int(ScriptType.P2SH)
_P2WPKH = int(ScriptType.P2WPKH)
_P2WSH = int(ScriptType.P2WSH)
_P2TR = int(ScriptType.P2TR)
_P2A = int(ScriptType.P2A)
_WITNESS_UNKNOWN = int(ScriptType.WITNESS_UNKNOWN)
_MAX_BASE58_ADDRESS = 35  # 25 bytes need at most ceil(25 * log(256) / log(58)) = 35 digits
_INT32_MAX = 2**31 - 1


@njit(cache=True, nogil=True)
def _witness_unknown_program_len(payload: np.ndarray, plen: int) -> int:
    """Program length of a witness_unknown key, -1 unless it is version 1..16 with a 2..40-byte
    program that is neither p2tr (v1, 32 bytes) nor p2a (v1, 4e73)."""
    if plen < 3 or plen > 41:
        return -1
    version = payload[0]
    if version < 1 or version > 16:
        return -1
    if version == 1 and plen == 33:
        return -1
    if version == 1 and plen == 3 and payload[1] == _P2A_0 and payload[2] == _P2A_1:
        return -1
    return plen - 1


@njit(cache=True, nogil=True)
def _row_size(kind: int, payload: np.ndarray, plen: int, hrp_len: int) -> int:
    """Upper bound of the address length (exact for segwit), 0 if the row has no address,
    -1 if the payload is not a valid key of an addressable kind."""
    if kind in (_P2PKH, _P2SH):
        return _MAX_BASE58_ADDRESS if plen == 20 else -1
    if kind == _P2WPKH:
        prog = 20 if plen == 20 else -1
    elif kind in (_P2WSH, _P2TR):
        prog = 32 if plen == 32 else -1
    elif kind == _P2A:
        prog = 2 if plen == 2 and payload[0] == _P2A_0 and payload[1] == _P2A_1 else -1
    elif kind == _WITNESS_UNKNOWN:
        prog = _witness_unknown_program_len(payload, plen)
    else:
        return 0
    if prog < 0:
        return -1
    return hrp_len + 1 + 1 + (8 * prog + 4) // 5 + 6


@njit(cache=True, nogil=True)
def _encode_kernel(
    kinds: np.ndarray,
    payloads: np.ndarray,
    lens: np.ndarray,
    p2pkh_version: int,
    p2sh_version: int,
    hrp: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(offsets, data, valid, first_bad_row): first_bad_row is -1, a row index, or -2 when the
    text exceeds int32 offsets."""
    n = kinds.shape[0]
    hrp_len = hrp.shape[0]
    offsets = np.empty(n + 1, dtype=np.int32)
    valid = np.zeros(n, dtype=np.bool_)
    total = 0
    for i in range(n):
        size = _row_size(int(kinds[i]), payloads[i], int(lens[i]), hrp_len)
        if size < 0:
            return offsets, np.empty(0, dtype=np.uint8), valid, i
        total += size
    if total > _INT32_MAX:
        return offsets, np.empty(0, dtype=np.uint8), valid, -2
    data = np.empty(total, dtype=np.uint8)
    hrp_chk = _hrp_state(hrp)
    b58_src = np.empty(25, dtype=np.uint8)
    digest = np.empty(32, dtype=np.uint8)
    block = np.empty(64, dtype=np.uint8)
    w = np.empty(64, dtype=np.int64)
    state = np.empty(8, dtype=np.int64)
    scratch = np.empty(64, dtype=np.int64)
    words = np.empty(72, dtype=np.int64)
    pos = 0
    offsets[0] = 0
    for i in range(n):
        kind = int(kinds[i])
        row = payloads[i]
        if kind in (_P2PKH, _P2SH):
            b58_src[0] = p2pkh_version if kind == _P2PKH else p2sh_version
            for j in range(20):
                b58_src[1 + j] = row[j]
            _sha256_into(b58_src[:21], digest, block, w, state)
            _sha256_into(digest, digest, block, w, state)
            for j in range(4):
                b58_src[21 + j] = digest[j]
            pos = _base58_write(b58_src, data, pos, scratch)
            valid[i] = True
        elif kind in (_P2WPKH, _P2WSH):
            pos = _segwit_write(hrp, hrp_chk, 0, row[: lens[i]], data, pos, words)
            valid[i] = True
        elif kind in (_P2TR, _P2A):
            pos = _segwit_write(hrp, hrp_chk, 1, row[: lens[i]], data, pos, words)
            valid[i] = True
        elif kind == _WITNESS_UNKNOWN:
            pos = _segwit_write(hrp, hrp_chk, int(row[0]), row[1 : lens[i]], data, pos, words)
            valid[i] = True
        offsets[i + 1] = pos
    return offsets, data[:pos], valid, -1


def encode_address_keys(
    kinds: np.ndarray, payloads: np.ndarray, payload_lens: np.ndarray, network_code: int
) -> pa.StringArray:
    """Address strings of n keys, null where the kind has no address.

    `kinds` (n,) uint8 ScriptType codes, `payloads` (n, 41) uint8 left-aligned key payloads,
    `payload_lens` (n,) uint8 payload lengths; `network_code` is `Network.code`. Callers pass the
    P2PKH key of a P2PK output; P2PK, nonstandard, multisig and OP_RETURN rows become nulls.
    Raises AddressError if a row of an addressable kind holds an invalid payload.

    >>> k = np.array([7], np.uint8); p = np.zeros((1, 41), np.uint8); p[0, :2] = [0x4E, 0x73]
    >>> encode_address_keys(k, p, np.array([2], np.uint8), 0).to_pylist()
    ['bc1pfeessrawgf']
    """
    network = BY_CODE.get(network_code)
    if network is None:
        raise ValueError(f"unknown network code {network_code}; expected one of {sorted(BY_CODE)}")
    kinds = np.ascontiguousarray(kinds, dtype=np.uint8)
    payloads = np.ascontiguousarray(payloads, dtype=np.uint8)
    payload_lens = np.ascontiguousarray(payload_lens, dtype=np.uint8)
    n = kinds.shape[0]
    if kinds.ndim != 1 or payloads.shape != (n, KEY_PAYLOAD_WIDTH) or payload_lens.shape != (n,):
        raise ValueError(
            f"expected kinds (n,), payloads (n, {KEY_PAYLOAD_WIDTH}), payload_lens (n,); got "
            f"{kinds.shape}, {payloads.shape}, {payload_lens.shape}"
        )
    hrp = np.frombuffer(network.hrp.encode("ascii"), dtype=np.uint8)
    offsets, data, valid, bad = _encode_kernel(
        kinds, payloads, payload_lens, network.p2pkh_version, network.p2sh_version, hrp
    )
    if bad == -2:
        raise ValueError("address text of this batch exceeds 2 GiB; encode it in smaller batches")
    if bad >= 0:
        raise AddressError(
            f"row {bad}: {ScriptType(int(kinds[bad]))} key with payload "
            f"{bytes(payloads[bad, : payload_lens[bad]]).hex()!r} ({payload_lens[bad]} bytes) "
            "is not a valid address key"
        )
    null_count = int(n - np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, null_count
    )


def encode_key_rows(rows: np.ndarray, network_code: int) -> pa.StringArray:
    """Address strings of the store's `address_key` rows (kind, payload length, 41-byte payload),
    null where the kind has no address.

    >>> r = np.zeros((1, 43), np.uint8); r[0, :4] = [7, 2, 0x4E, 0x73]
    >>> encode_key_rows(r, 0).to_pylist()
    ['bc1pfeessrawgf']
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] != 2 + KEY_PAYLOAD_WIDTH:
        raise ValueError(f"expected key rows (n, {2 + KEY_PAYLOAD_WIDTH}), got {rows.shape}")
    return encode_address_keys(
        np.ascontiguousarray(rows[:, 0]),
        np.ascontiguousarray(rows[:, 2:]),
        np.ascontiguousarray(rows[:, 1]),
        network_code,
    )


# ---------------------------------------------------------------------------------------------
# batch decoding


def network_mask(names: Sequence[str]) -> int:
    """Bit mask of networks by their `Network.code`: `network_mask(["main"]) == 1`."""
    mask = 0
    for name in names:
        mask |= 1 << NETWORKS[name].code
    return mask


# which networks a version byte / human-readable part belongs to, as bit masks
_P2PKH_MASK = np.zeros(256, np.int64)
_P2SH_MASK = np.zeros(256, np.int64)
_HRP_MASK: dict[str, int] = {}
for _net in NETWORKS.values():
    _P2PKH_MASK[_net.p2pkh_version] |= 1 << _net.code
    _P2SH_MASK[_net.p2sh_version] |= 1 << _net.code
    _HRP_MASK[_net.hrp] = _HRP_MASK.get(_net.hrp, 0) | (1 << _net.code)
# the kernel recognises these three prefixes by hand
assert set(_HRP_MASK) == {"bc", "tb", "bcrt"}, _HRP_MASK
_BC, _TB, _BCRT = _HRP_MASK["bc"], _HRP_MASK["tb"], _HRP_MASK["bcrt"]
_ONE = ord("1")  # base58's zero digit, and bech32's separator


@njit(cache=True, nogil=True)
def _base58_read(
    data: np.ndarray,
    s: int,
    e: int,
    payload: np.ndarray,
    scratch: np.ndarray,
    digest: np.ndarray,
    block: np.ndarray,
    w: np.ndarray,
    state: np.ndarray,
) -> tuple[int, int]:
    """(kind, networks) of a base58check P2PKH/P2SH address in data[s:e], or (-1, 0)."""
    n = e - s
    if n < 25 or n > 40:
        return -1, 0
    zeros = 0
    while zeros < n and data[s + zeros] == _ONE:
        zeros += 1
    size = 0  # little-endian bytes of the number in scratch[:size]
    for j in range(s, e):
        d = _B58_DIGIT[data[j]]
        if d == _NOT_A_DIGIT:
            return -1, 0
        carry = np.int64(d)
        for k in range(size):
            carry += np.int64(scratch[k]) * 58
            scratch[k] = carry & 0xFF
            carry >>= 8
        while carry:
            scratch[size] = carry & 0xFF
            size += 1
            carry >>= 8
    if zeros + size != 25:
        return -1, 0
    raw = scratch[32:57]
    raw[:] = 0
    for k in range(size):
        raw[24 - k] = scratch[k]
    _sha256_into(raw[:21], digest, block, w, state)
    _sha256_into(digest, digest, block, w, state)
    for k in range(4):
        if digest[k] != raw[21 + k]:
            return -1, 0
    version = raw[0]
    if _P2PKH_MASK[version]:
        kind, nets = _P2PKH, _P2PKH_MASK[version]
    elif _P2SH_MASK[version]:
        kind, nets = _P2SH, _P2SH_MASK[version]
    else:
        return -1, 0
    for k in range(20):
        payload[k] = raw[1 + k]
    return kind, nets


@njit(cache=True, nogil=True)
def _bech32_read(
    data: np.ndarray, s: int, e: int, sep: int, payload: np.ndarray, words: np.ndarray
) -> tuple[int, int, int]:
    """(kind, networks, payload length) of a lowercase segwit v0/v1 address, or (-1, 0, 0)."""
    hrp_len = sep - s
    nets = 0
    if hrp_len == 2 and data[s] == 98 and data[s + 1] == 99:  # bc
        nets = _BC
    elif hrp_len == 2 and data[s] == 116 and data[s + 1] == 98:  # tb
        nets = _TB
    elif (
        hrp_len == 4
        and data[s] == 98
        and data[s + 1] == 99
        and data[s + 2] == 114
        and data[s + 3] == 116
    ):  # bcrt
        nets = _BCRT
    else:
        return -1, 0, 0
    n_data = e - sep - 1
    if n_data < 7 or e - s > 90:
        return -1, 0, 0
    chk = 1
    for j in range(s, sep):
        chk = _polymod_step(chk, int(data[j]) >> 5)
    chk = _polymod_step(chk, 0)
    for j in range(s, sep):
        chk = _polymod_step(chk, int(data[j]) & 31)
    for j in range(n_data):
        word = _BECH32_WORD[data[sep + 1 + j]]
        if word == _NOT_A_DIGIT:  # not a lowercase bech32 character: let the exact decoder judge
            return -1, 0, 0
        words[j] = word
        chk = _polymod_step(chk, int(word))
    n_words = n_data - 6
    version = words[0]
    # 5-bit words to bytes, no padding allowed beyond 4 zero bits
    acc = 0
    bits = 0
    length = 0
    for j in range(1, n_words):
        acc = ((acc << 5) | int(words[j])) & 0xFFFFFFFF
        bits += 5
        while bits >= 8:
            bits -= 8
            if length >= 40:
                return -1, 0, 0
            payload[length] = (acc >> bits) & 0xFF
            length += 1
    if bits >= 5 or ((acc << (8 - bits)) & 0xFF) != 0:
        return -1, 0, 0
    if version == 0 and chk == _BECH32_CONST:
        if length == 20:
            return _P2WPKH, nets, 20
        if length == 32:
            return _P2WSH, nets, 32
    elif version == 1 and chk == _BECH32M_CONST and length == 32:
        return _P2TR, nets, 32
    return -1, 0, 0


@njit(cache=True, nogil=True)
def _segwit_prefix(data: np.ndarray, s: int, sep: int) -> bool:
    """True when data[s:sep] is bc, tb or bcrt in any case (a segwit address prefix)."""
    n = sep - s
    if n != 2 and n != 4:
        return False
    a, b = data[s] | 32, data[s + 1] | 32
    if n == 2:
        return (a == 98 and b == 99) or (a == 116 and b == 98)
    return a == 98 and b == 99 and (data[s + 2] | 32) == 114 and (data[s + 3] | 32) == 116


@njit(cache=True, nogil=True)
def _decode_kernel(
    data: np.ndarray,
    offsets: np.ndarray,
    kinds: np.ndarray,
    nets: np.ndarray,
    payloads: np.ndarray,
    lengths: np.ndarray,
) -> None:
    scratch = np.zeros(64, np.uint8)
    words = np.zeros(96, np.uint8)
    digest = np.empty(32, np.uint8)
    block = np.empty(64, np.uint8)
    w = np.empty(64, np.int64)
    state = np.empty(8, np.int64)
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        kinds[i] = -1
        sep = -1
        for j in range(e - 1, s - 1, -1):
            if data[j] == _ONE:
                sep = j
                break
        if sep > s and _segwit_prefix(data, s, sep):
            # decode_address reads a known prefix as bech32 only, never as base58
            kind, net, length = _bech32_read(data, s, e, sep, payloads[i], words)
            if kind >= 0:
                kinds[i], nets[i], lengths[i] = kind, net, length
            continue
        kind, net = _base58_read(data, s, e, payloads[i], scratch, digest, block, w, state)
        if kind >= 0:
            kinds[i], nets[i], lengths[i] = kind, net, 20


def decode_addresses(
    addresses: Sequence[str] | pa.Array,
) -> tuple[np.ndarray, list[bytes], np.ndarray]:
    """Decode addresses: (kind codes, payloads, network masks); kind -1 = not accepted here.

    A kind of -1 means "ask `decode_address`": the string is invalid or of a rarer form. The
    network masks are `network_mask` of the networks `decode_address` names.

    >>> kinds, payloads, nets = decode_addresses(["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"])
    >>> int(kinds[0]), payloads[0].hex()[:8], int(nets[0]) == network_mask(["main"])
    (4, '751e76e8', True)
    """
    array = addresses if isinstance(addresses, pa.Array) else pa.array(addresses, pa.string())
    array = array.cast(pa.string())
    n = len(array)
    kinds = np.full(n, -1, np.int64)
    nets = np.zeros(n, np.int64)
    payloads = np.zeros((n, 40), np.uint8)
    lengths = np.zeros(n, np.int64)
    if n:
        buffers = array.buffers()
        offsets = np.frombuffer(buffers[1], np.int32, n + 1, array.offset * 4).astype(np.int64)
        data = (
            np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
        )
        _decode_kernel(data, offsets, kinds, nets, payloads, lengths)
        if array.null_count:
            kinds[np.asarray(array.is_null())] = -1
    raw = payloads.tobytes()
    out = [raw[40 * i : 40 * i + lengths[i]] if kinds[i] >= 0 else b"" for i in range(n)]
    return kinds, out, nets
