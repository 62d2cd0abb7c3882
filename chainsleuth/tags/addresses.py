"""Decode many address strings at once (numba): the fast path of tag validation.

`chainsleuth.core.address.decode_address` checks one address in pure Python; half a million
tags take it about five seconds, half of an import. This kernel decodes the common forms of a
whole batch in one pass over an Arrow string buffer: base58check P2PKH/P2SH (checksum by the
numba SHA-256 of `chainsleuth.parse.address_kernels`) and lowercase bech32/bech32m v0 and v1
(taproot). It only ever *accepts*: every string it does not accept (an error, an uppercase
bech32 string, a witness version 2-16 or pay-to-anchor program) goes to `decode_address`, which
gives the verdict and the message. `tests/tags/test_addresses.py` checks that both agree on the
shared address vectors and every address of the public TagPacks.

Example::

    kinds, payloads, networks = decode_batch(["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"])
    kinds[0] == ScriptType.P2PKH
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from numba import njit

from chainsleuth.core.network import NETWORKS
from chainsleuth.core.script_types import ScriptType

# the allocation-free form of sha256_digest: scratch buffers are reused across addresses
from chainsleuth.parse.address_kernels import _sha256_into

__all__ = ["decode_batch", "network_mask"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_DIGIT = np.full(256, 255, np.uint8)
for _i, _c in enumerate(_B58):
    _B58_DIGIT[ord(_c)] = _i
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_WORD = np.full(256, 255, np.uint8)
for _i, _c in enumerate(_BECH32):
    _BECH32_WORD[ord(_c)] = _i


def network_mask(names: Sequence[str]) -> int:
    """Bit mask of networks by their `Network.code`."""
    mask = 0
    for name in names:
        mask |= 1 << NETWORKS[name].code
    return mask


# which networks a version byte / human-readable part belongs to, as bit masks
_P2PKH_MASK = np.zeros(256, np.int64)
_P2SH_MASK = np.zeros(256, np.int64)
for _net in NETWORKS.values():
    _P2PKH_MASK[_net.p2pkh_version] |= 1 << _net.code
    _P2SH_MASK[_net.p2sh_version] |= 1 << _net.code
_HRP_MASK: dict[str, int] = {}
for _net in NETWORKS.values():
    _HRP_MASK[_net.hrp] = _HRP_MASK.get(_net.hrp, 0) | (1 << _net.code)
# the kernel recognises these three prefixes by hand
assert set(_HRP_MASK) == {"bc", "tb", "bcrt"}, _HRP_MASK
_BC, _TB, _BCRT = _HRP_MASK["bc"], _HRP_MASK["tb"], _HRP_MASK["bcrt"]
_GEN = np.array([0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3], np.int64)

_P2PKH, _P2SH = int(ScriptType.P2PKH), int(ScriptType.P2SH)
_P2WPKH, _P2WSH, _P2TR = int(ScriptType.P2WPKH), int(ScriptType.P2WSH), int(ScriptType.P2TR)


@njit(cache=True, nogil=True)
def _polymod_step(chk, value, gen):
    top = chk >> 25
    chk = ((chk & 0x1FFFFFF) << 5) ^ value
    for i in range(5):
        if (top >> i) & 1:
            chk ^= gen[i]
    return chk


@njit(cache=True, nogil=True)
def _base58(data, s, e, digit, p2pkh_mask, p2sh_mask, payload, scratch, sha):
    """(kind, networks) of a base58check P2PKH/P2SH address in data[s:e], or (-1, 0)."""
    n = e - s
    if n < 25 or n > 40:
        return -1, 0
    zeros = 0
    while zeros < n and data[s + zeros] == 49:  # '1'
        zeros += 1
    size = 0  # little-endian bytes of the number in scratch[:size]
    for j in range(s, e):
        d = digit[data[j]]
        if d == 255:
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
    first, check, block, w, state = sha
    _sha256_into(raw[:21], first, block, w, state)
    _sha256_into(first, check, block, w, state)
    for k in range(4):
        if check[k] != raw[21 + k]:
            return -1, 0
    version = raw[0]
    if p2pkh_mask[version]:
        kind, nets = 2, p2pkh_mask[version]  # P2PKH
    elif p2sh_mask[version]:
        kind, nets = 3, p2sh_mask[version]  # P2SH
    else:
        return -1, 0
    for k in range(20):
        payload[k] = raw[1 + k]
    return kind, nets


@njit(cache=True, nogil=True)
def _bech32(data, s, e, sep, word_of, gen, bc, tb, bcrt, payload, words):
    """(kind, networks, payload length) of a lowercase segwit v0/v1 address, or (-1, 0, 0)."""
    hrp_len = sep - s
    nets = 0
    if hrp_len == 2 and data[s] == 98 and data[s + 1] == 99:  # bc
        nets = bc
    elif hrp_len == 2 and data[s] == 116 and data[s + 1] == 98:  # tb
        nets = tb
    elif (
        hrp_len == 4
        and data[s] == 98
        and data[s + 1] == 99
        and data[s + 2] == 114
        and data[s + 3] == 116
    ):  # bcrt
        nets = bcrt
    else:
        return -1, 0, 0
    n_data = e - sep - 1
    if n_data < 7 or e - s > 90:
        return -1, 0, 0
    chk = np.int64(1)
    for j in range(s, sep):
        chk = _polymod_step(chk, np.int64(data[j] >> 5), gen)
    chk = _polymod_step(chk, np.int64(0), gen)
    for j in range(s, sep):
        chk = _polymod_step(chk, np.int64(data[j] & 31), gen)
    for j in range(n_data):
        w = word_of[data[sep + 1 + j]]
        if w == 255:  # not a lowercase bech32 character: let the exact decoder judge
            return -1, 0, 0
        words[j] = w
        chk = _polymod_step(chk, np.int64(w), gen)
    n_words = n_data - 6
    version = words[0]
    # 5-bit words to bytes, no padding allowed beyond 4 zero bits
    acc = 0
    bits = 0
    length = 0
    for j in range(1, n_words):
        acc = ((acc << 5) | words[j]) & 0xFFFFFFFF
        bits += 5
        while bits >= 8:
            bits -= 8
            if length >= 40:
                return -1, 0, 0
            payload[length] = (acc >> bits) & 0xFF
            length += 1
    if bits >= 5 or ((acc << (8 - bits)) & 0xFF) != 0:
        return -1, 0, 0
    if version == 0 and chk == 1:
        if length == 20:
            return 4, nets, 20  # P2WPKH
        if length == 32:
            return 5, nets, 32  # P2WSH
    elif version == 1 and chk == 0x2BC830A3 and length == 32:
        return 6, nets, 32  # P2TR
    return -1, 0, 0


@njit(cache=True, nogil=True)
def _segwit_prefix(data, s, sep):
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
    data,
    offsets,
    digit,
    word_of,
    gen,
    p2pkh_mask,
    p2sh_mask,
    bc,
    tb,
    bcrt,
    kinds,
    nets,
    payloads,
    lengths,
):
    scratch = np.zeros(64, np.uint8)
    words = np.zeros(96, np.uint8)
    sha = (
        np.empty(32, np.uint8),
        np.empty(32, np.uint8),
        np.empty(64, np.uint8),
        np.empty(64, np.int64),
        np.empty(8, np.int64),
    )
    for i in range(offsets.shape[0] - 1):
        s, e = offsets[i], offsets[i + 1]
        kinds[i] = -1
        sep = -1
        for j in range(e - 1, s - 1, -1):
            if data[j] == 49:  # '1'
                sep = j
                break
        if sep > s and _segwit_prefix(data, s, sep):
            # decode_address reads a known prefix as bech32 only, never as base58
            kind, net, length = _bech32(
                data, s, e, sep, word_of, gen, bc, tb, bcrt, payloads[i], words
            )
            if kind >= 0:
                kinds[i], nets[i], lengths[i] = kind, net, length
            continue
        kind, net = _base58(data, s, e, digit, p2pkh_mask, p2sh_mask, payloads[i], scratch, sha)
        if kind >= 0:
            kinds[i], nets[i], lengths[i] = kind, net, 20


def decode_batch(addresses: Sequence[str] | pa.Array) -> tuple[np.ndarray, list[bytes], np.ndarray]:
    """Decode addresses: (kind codes, payloads, network masks); kind -1 = not accepted here.

    A kind of -1 means "ask `decode_address`": the string is invalid or of a rarer form.
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
        _decode_kernel(
            data,
            offsets,
            _B58_DIGIT,
            _BECH32_WORD,
            _GEN,
            _P2PKH_MASK,
            _P2SH_MASK,
            _BC,
            _TB,
            _BCRT,
            kinds,
            nets,
            payloads,
            lengths,
        )
        if array.null_count:
            kinds[np.asarray(array.is_null())] = -1
    raw = payloads.tobytes()
    out = [raw[40 * i : 40 * i + lengths[i]] if kinds[i] >= 0 else b"" for i in range(n)]
    return kinds, out, nets
