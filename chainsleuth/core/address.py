"""Bitcoin addresses: base58check, bech32/bech32m, and the address key the store indexes.

An address is only a rendering of an output script for one network. What the store indexes is the
*address key* `(kind, payload)`: the script type plus the bytes that identify the output script
(a hash or witness program), which is the same on every network. This module converts between
keys, address strings and output scripts one at a time, for lookups, the CLI and tests. It is the
scalar reference; the one batch codec is `chainsleuth.parse.address_kernels` (numba: ingest
encodes millions of keys per batch, tag imports decode half a million strings), which takes its
alphabets and constants from here and must give exactly the strings and keys this module gives.

Written by hand from BIP173 (bech32), BIP350 (bech32m) and Bitcoin Core's `key_io.cpp`/`base58.cpp`
so that ingest depends on no third-party address library; only hashlib is used.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.network import NETWORKS, Network
from chainsleuth.core.script_types import ScriptType

__all__ = [
    "ADDRESSABLE_KINDS",
    "B58_ALPHABET",
    "BECH32_CHARSET",
    "BECH32_GENERATORS",
    "KEY_PAYLOAD_WIDTH",
    "P2A_PROGRAM",
    "AddressError",
    "Bech32Spec",
    "base58_decode",
    "base58_encode",
    "base58check_decode",
    "base58check_encode",
    "bech32_decode",
    "bech32_encode",
    "bytes_to_words",
    "decode_address",
    "decode_segwit",
    "encode_address",
    "encode_segwit",
    "hash160",
    "script_pubkey",
    "sha256d",
    "validate_key",
    "words_to_bytes",
]


class AddressError(ChainsleuthError):
    """An address string, or an address key, that is not valid."""


#: widest key payload: one witness version byte plus a 40-byte witness program
KEY_PAYLOAD_WIDTH = 41

#: the witness program of pay-to-anchor outputs (`OP_1 <0x4e73>`, BIP 433)
P2A_PROGRAM = b"\x4e\x73"

#: kinds that have an address; P2PK outputs are indexed under their P2PKH key
ADDRESSABLE_KINDS: frozenset[ScriptType] = frozenset(
    {
        ScriptType.P2PKH,
        ScriptType.P2SH,
        ScriptType.P2WPKH,
        ScriptType.P2WSH,
        ScriptType.P2TR,
        ScriptType.P2A,
        ScriptType.WITNESS_UNKNOWN,
    }
)

# ---------------------------------------------------------------------------------------------
# hashes


def sha256d(data: bytes) -> bytes:
    """Double SHA-256: `sha256d(b"").hex()[:8] == "5df6e0e2"`."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: `hash160(b"").hex() == "b472a266d0bd89c13706a4132ccfb16f7c3b9fcb"`."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


# ---------------------------------------------------------------------------------------------
# base58 (Bitcoin's alphabet: no 0, O, I, l)

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


def base58_encode(data: bytes) -> str:
    """Base58 without checksum: `base58_encode(b"\\x00\\x61") == "12g"`."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(B58_ALPHABET[r])
    return "1" * zeros + "".join(reversed(digits))


def base58_decode(s: str) -> bytes:
    """Inverse of `base58_encode`: `base58_decode("12g") == b"\\x00\\x61"`."""
    n = 0
    for pos, c in enumerate(s):
        digit = _B58_INDEX.get(c)
        if digit is None:
            raise AddressError(f"invalid base58 character {c!r} at position {pos} of {s!r}")
        n = n * 58 + digit
    zeros = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def base58check_encode(payload: bytes) -> str:
    """Base58 with a 4-byte double-SHA-256 checksum: `base58check_encode(b"\\x00" * 21)[:5] == "11111"`."""
    return base58_encode(payload + sha256d(payload)[:4])


def base58check_decode(s: str) -> bytes:
    """Checks and strips the checksum: `base58check_decode(base58check_encode(b"ab")) == b"ab"`."""
    raw = base58_decode(s)
    if len(raw) < 4:
        raise AddressError(f"base58check string {s!r} is too short to hold a checksum")
    payload, checksum = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != checksum:
        raise AddressError(f"base58check checksum mismatch in {s!r}")
    return payload


# ---------------------------------------------------------------------------------------------
# bech32 / bech32m (BIP173, BIP350)

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
BECH32_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
#: BIP173 caps segwit addresses at 90 characters; generic bech32 strings may pass a larger limit
BECH32_MAX_LENGTH = 90


class Bech32Spec(IntEnum):
    """The checksum variant; its value is the constant the polymod must equal."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= BECH32_GENERATORS[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _check_hrp(hrp: str) -> None:
    if not hrp:
        raise AddressError("bech32 human-readable part is empty")
    for c in hrp:
        if not 33 <= ord(c) <= 126:
            raise AddressError(f"invalid character {c!r} in bech32 human-readable part {hrp!r}")


def bech32_encode(
    hrp: str, data: list[int], spec: Bech32Spec, limit: int = BECH32_MAX_LENGTH
) -> str:
    """5-bit words to a checksummed string: `bech32_encode("a", [], Bech32Spec.BECH32) == "a12uel5l"`."""
    _check_hrp(hrp)
    if hrp != hrp.lower() and hrp != hrp.upper():
        raise AddressError(f"mixed-case bech32 human-readable part {hrp!r}")
    hrp = hrp.lower()
    for w in data:
        if not 0 <= w < 32:
            raise AddressError(f"bech32 word {w} is not a 5-bit value")
    if len(hrp) + 1 + len(data) + 6 > limit:
        raise AddressError(f"bech32 string would exceed the length limit of {limit}")
    values = _hrp_expand(hrp) + list(data)
    mod = _polymod(values + [0] * 6) ^ spec
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[w] for w in list(data) + checksum)


def bech32_decode(s: str, limit: int = BECH32_MAX_LENGTH) -> tuple[str, list[int], Bech32Spec]:
    """Checks a bech32/bech32m string: `bech32_decode("A12UEL5L") == ("a", [], Bech32Spec.BECH32)`."""
    if len(s) > limit:
        raise AddressError(f"bech32 string of {len(s)} characters exceeds the limit of {limit}")
    for c in s:
        if not 33 <= ord(c) <= 126:
            raise AddressError(f"invalid character {c!r} in bech32 string {s!r}")
    if s.lower() != s and s.upper() != s:
        raise AddressError(f"mixed-case bech32 string {s!r}")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 0:
        raise AddressError(f"no separator '1' in bech32 string {s!r}")
    if pos == 0:
        raise AddressError(f"empty human-readable part in bech32 string {s!r}")
    if pos + 7 > len(s):
        raise AddressError(f"bech32 string {s!r} is too short to hold a checksum")
    data = []
    for c in s[pos + 1 :]:
        w = _BECH32_INDEX.get(c)
        if w is None:
            raise AddressError(f"invalid bech32 data character {c!r} in {s!r}")
        data.append(w)
    hrp = s[:pos]
    const = _polymod(_hrp_expand(hrp) + data)
    if const == Bech32Spec.BECH32:
        spec = Bech32Spec.BECH32
    elif const == Bech32Spec.BECH32M:
        spec = Bech32Spec.BECH32M
    else:
        raise AddressError(f"bech32 checksum mismatch in {s!r}")
    return hrp, data[:-6], spec


def _convert_bits(data: list[int] | bytes, frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise AddressError(f"value {value} does not fit in {frombits} bits")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits:
        raise AddressError("excess padding in bech32 data")
    elif (acc << (tobits - bits)) & maxv:
        raise AddressError("non-zero padding in bech32 data")
    return out


def bytes_to_words(data: bytes) -> list[int]:
    """8-bit bytes to 5-bit words, zero-padded: `bytes_to_words(b"\\xff") == [31, 28]`."""
    return _convert_bits(data, 8, 5, pad=True)


def words_to_bytes(words: list[int]) -> bytes:
    """5-bit words to bytes; padding must be under 5 zero bits: `words_to_bytes([31, 28]) == b"\\xff"`."""
    return bytes(_convert_bits(words, 5, 8, pad=False))


def _check_witness_program(version: int, program: bytes) -> None:
    if not 0 <= version <= 16:
        raise AddressError(f"witness version {version} is outside 0..16")
    if not 2 <= len(program) <= 40:
        raise AddressError(f"witness program of {len(program)} bytes is outside 2..40")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(f"witness v0 program must be 20 or 32 bytes, not {len(program)}")


def encode_segwit(hrp: str, version: int, program: bytes) -> str:
    """Segwit address: `encode_segwit("bc", 1, bytes.fromhex("4e73")) == "bc1pfeessrawgf"`."""
    _check_witness_program(version, program)
    spec = Bech32Spec.BECH32 if version == 0 else Bech32Spec.BECH32M
    return bech32_encode(hrp, [version, *bytes_to_words(program)], spec)


def decode_segwit(hrp: str, addr: str) -> tuple[int, bytes]:
    """Segwit address to (version, program): `decode_segwit("bc", "bc1pfeessrawgf")[0] == 1`."""
    got_hrp, data, spec = bech32_decode(addr)
    if got_hrp != hrp.lower():
        raise AddressError(f"address {addr!r} has prefix {got_hrp!r}, expected {hrp.lower()!r}")
    if not data:
        raise AddressError(f"segwit address {addr!r} has no witness version")
    version = data[0]
    if version > 16:
        raise AddressError(f"segwit address {addr!r} has witness version {version} > 16")
    program = words_to_bytes(data[1:])
    _check_witness_program(version, program)
    expected = Bech32Spec.BECH32 if version == 0 else Bech32Spec.BECH32M
    if spec != expected:
        raise AddressError(
            f"witness v{version} address {addr!r} uses {spec.name.lower()}, "
            f"must use {expected.name.lower()}"
        )
    return version, program


# ---------------------------------------------------------------------------------------------
# address keys


def validate_key(kind: ScriptType, payload: bytes) -> None:
    """Raises AddressError unless (kind, payload) is an address key: `validate_key(ScriptType.P2A, b"Ns")`."""
    if kind in (ScriptType.P2PKH, ScriptType.P2SH, ScriptType.P2WPKH):
        if len(payload) != 20:
            raise AddressError(f"{kind} key needs a 20-byte hash, got {len(payload)} bytes")
    elif kind in (ScriptType.P2WSH, ScriptType.P2TR):
        if len(payload) != 32:
            raise AddressError(f"{kind} key needs a 32-byte program, got {len(payload)} bytes")
    elif kind == ScriptType.P2A:
        if payload != P2A_PROGRAM:
            raise AddressError(f"p2a key payload must be 4e73, got {payload.hex()!r}")
    elif kind == ScriptType.WITNESS_UNKNOWN:
        if not payload:
            raise AddressError("witness_unknown key payload is empty")
        version, program = payload[0], payload[1:]
        if not 1 <= version <= 16:
            raise AddressError(f"witness_unknown key has witness version {version}, not 1..16")
        if not 2 <= len(program) <= 40:
            raise AddressError(f"witness_unknown program of {len(program)} bytes is outside 2..40")
        if version == 1 and len(program) == 32:
            raise AddressError("witness v1 with a 32-byte program is p2tr, not witness_unknown")
        if version == 1 and program == P2A_PROGRAM:
            raise AddressError("witness v1 program 4e73 is p2a, not witness_unknown")
    elif kind == ScriptType.P2PK:
        raise AddressError(
            "p2pk outputs are keyed as p2pkh of hash160(pubkey); there is no p2pk key"
        )
    else:
        raise AddressError(f"{ScriptType(kind)} outputs have no address")


def encode_address(kind: ScriptType, payload: bytes, network: Network) -> str:
    """Address of a key on a network: `encode_address(ScriptType.P2A, P2A_PROGRAM, MAIN) == "bc1pfeessrawgf"`."""
    validate_key(kind, payload)
    if kind == ScriptType.P2PKH:
        return base58check_encode(bytes([network.p2pkh_version]) + payload)
    if kind == ScriptType.P2SH:
        return base58check_encode(bytes([network.p2sh_version]) + payload)
    if kind in (ScriptType.P2WPKH, ScriptType.P2WSH):
        return encode_segwit(network.hrp, 0, payload)
    if kind in (ScriptType.P2TR, ScriptType.P2A):
        return encode_segwit(network.hrp, 1, payload)
    return encode_segwit(network.hrp, payload[0], payload[1:])  # WITNESS_UNKNOWN


_HRP_NETWORKS: dict[str, tuple[str, ...]] = {}
for _net in NETWORKS.values():
    _HRP_NETWORKS[_net.hrp] = (*_HRP_NETWORKS.get(_net.hrp, ()), _net.name)
_P2PKH_NETWORKS: dict[int, tuple[str, ...]] = {}
_P2SH_NETWORKS: dict[int, tuple[str, ...]] = {}
for _net in NETWORKS.values():
    _P2PKH_NETWORKS[_net.p2pkh_version] = (
        *_P2PKH_NETWORKS.get(_net.p2pkh_version, ()),
        _net.name,
    )
    _P2SH_NETWORKS[_net.p2sh_version] = (*_P2SH_NETWORKS.get(_net.p2sh_version, ()), _net.name)

# a base58check address is 25 bytes, at most 35 characters; refuse long strings before the
# quadratic big-integer decode
_MAX_BASE58_ADDRESS = 40


def decode_address(address: str) -> tuple[ScriptType, bytes, tuple[str, ...]]:
    """Key and the networks it is valid on: `decode_address("bc1pfeessrawgf")[2] == ("main",)`."""
    if not isinstance(address, str) or not address:
        raise AddressError("empty address")
    sep = address.rfind("1")
    hrp = address[:sep].lower() if sep > 0 else ""
    if hrp in _HRP_NETWORKS:
        version, program = decode_segwit(hrp, address)
        networks = _HRP_NETWORKS[hrp]
        if version == 0:
            kind = ScriptType.P2WPKH if len(program) == 20 else ScriptType.P2WSH
            return kind, program, networks
        if version == 1 and len(program) == 32:
            return ScriptType.P2TR, program, networks
        if version == 1 and program == P2A_PROGRAM:
            return ScriptType.P2A, program, networks
        return ScriptType.WITNESS_UNKNOWN, bytes([version]) + program, networks
    if len(address) > _MAX_BASE58_ADDRESS:
        raise AddressError(
            f"{address[:20]!r}... ({len(address)} characters) is too long for a base58 address "
            f"and has no known bech32 prefix ({', '.join(_HRP_NETWORKS)})"
        )
    try:
        raw = base58check_decode(address)
    except AddressError as exc:
        raise AddressError(
            f"{address!r} is neither a bech32 address with a known prefix "
            f"({', '.join(_HRP_NETWORKS)}) nor a valid base58check address: {exc}"
        ) from None
    if len(raw) != 21:
        raise AddressError(
            f"base58check address {address!r} holds {len(raw)} bytes, expected 21 "
            "(version byte + 20-byte hash)"
        )
    version_byte, digest = raw[0], raw[1:]
    if version_byte in _P2PKH_NETWORKS:
        return ScriptType.P2PKH, digest, _P2PKH_NETWORKS[version_byte]
    if version_byte in _P2SH_NETWORKS:
        return ScriptType.P2SH, digest, _P2SH_NETWORKS[version_byte]
    raise AddressError(
        f"base58check address {address!r} has version byte 0x{version_byte:02x}, "
        "which no known network uses"
    )


def script_pubkey(kind: ScriptType, payload: bytes) -> bytes:
    """Output script a key pays to: `script_pubkey(ScriptType.P2A, P2A_PROGRAM).hex() == "51024e73"`."""
    validate_key(kind, payload)
    if kind == ScriptType.P2PKH:
        return b"\x76\xa9\x14" + payload + b"\x88\xac"
    if kind == ScriptType.P2SH:
        return b"\xa9\x14" + payload + b"\x87"
    if kind in (ScriptType.P2WPKH, ScriptType.P2WSH):
        return bytes([0, len(payload)]) + payload
    if kind in (ScriptType.P2TR, ScriptType.P2A):
        return bytes([0x51, len(payload)]) + payload
    version, program = payload[0], payload[1:]  # WITNESS_UNKNOWN: OP_1..OP_16 are 0x51..0x60
    return bytes([0x50 + version, len(program)]) + program
