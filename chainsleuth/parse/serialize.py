"""Bitcoin transaction and block serialization: the bytes a node writes, built from small objects.

The simulator (`chainsleuth.simulate`) writes every transaction, header and block of its worlds
with this module, and the tests round-trip those bytes through the parsers, so what the ingest
reads is exactly what Bitcoin Core would have stored. It is plain Python on purpose: the fast,
array-based parser lives elsewhere in `chainsleuth.parse`; the tiny `parse_tx`/`parse_block` here
exist only to check this serializer against itself and against real blocks.

Byte order follows Bitcoin Core: hashes are kept in *internal* (little-endian) order, the order
they appear inside serialized data; `txid_hex()`/`hash_hex()` give the reversed *display* order
that explorers and RPC show.

    >>> tx = Tx(2, (TxIn(bytes(32), 0, b"\\x51"),), (TxOut(1000, b"\\x51"),))
    >>> parse_tx(tx.serialize())[0] == tx
    True
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "REGTEST_BITS",
    "WITNESS_COMMITMENT_HEADER",
    "Block",
    "BlockHeader",
    "Tx",
    "TxIn",
    "TxOut",
    "bits_to_target",
    "compact_size",
    "mine",
    "merkle_root",
    "parse_block",
    "parse_tx",
    "sha256d",
    "tx_weight",
    "witness_commitment_script",
]

#: regtest's (and every test chain's) minimum difficulty: about one hash in two is valid
REGTEST_BITS = 0x207FFFFF
#: BIP141: a coinbase output `OP_RETURN <0xaa21a9ed || commitment>` commits to the wtxids
WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")

_sha256 = hashlib.sha256
_pack_u32 = struct.Struct("<I").pack
_pack_i32 = struct.Struct("<i").pack
_pack_u64 = struct.Struct("<Q").pack
_HEADER = struct.Struct("<i32s32sIII")
# compact sizes below 0xfd are one byte; precomputed because nearly every length is one
_SMALL = tuple(bytes((i,)) for i in range(0xFD))


def sha256d(data: bytes) -> bytes:
    """Double SHA-256, the hash of txids, block hashes and merkle nodes."""
    return _sha256(_sha256(data).digest()).digest()


def compact_size(n: int) -> bytes:
    """Bitcoin's variable-length integer: `compact_size(300) == b"\\xfd\\x2c\\x01"`."""
    if n < 0xFD:
        return _SMALL[n]
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _pack_u32(n)
    return b"\xff" + _pack_u64(n)


def _cs_len(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9


@dataclass(frozen=True, slots=True)
class TxIn:
    """A spent outpoint (`prev_txid` in internal byte order) with its unlocking data."""

    prev_txid: bytes
    prev_vout: int
    script_sig: bytes
    sequence: int = 0xFFFFFFFF
    witness: tuple[bytes, ...] = ()

    def serialize(self) -> bytes:
        """The input as it appears in the non-witness part of a transaction."""
        ss = self.script_sig
        n = len(ss)
        return b"".join(
            (
                self.prev_txid,
                _pack_u32(self.prev_vout),
                _SMALL[n] if n < 0xFD else compact_size(n),
                ss,
                _pack_u32(self.sequence),
            )
        )

    def serialize_witness(self) -> bytes:
        """The input's witness stack (item count, then length-prefixed items)."""
        parts = [compact_size(len(self.witness))]
        for item in self.witness:
            parts.append(compact_size(len(item)))
            parts.append(item)
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class TxOut:
    """An output: `value` in satoshis and the locking script."""

    value: int
    script_pubkey: bytes

    def serialize(self) -> bytes:
        """Value (8 bytes) and length-prefixed script."""
        spk = self.script_pubkey
        n = len(spk)
        return _pack_u64(self.value) + (_SMALL[n] if n < 0xFD else compact_size(n)) + spk


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction; both serializations and the txid are computed once, on construction
    (the simulator builds millions, and needs every one's bytes and txid).

    `Tx(2, (TxIn(bytes(32), 0, b""),), (TxOut(546, b"\\x51"),)).vsize() == 60`
    """

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int = 0
    #: True when some input carries witness data (then BIP144's marker and flag are used)
    has_witness: bool = field(init=False, repr=False, compare=False)
    _stripped: bytes = field(init=False, repr=False, compare=False)
    _full: bytes = field(init=False, repr=False, compare=False)
    _txid: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ins = self.inputs
        outs = self.outputs
        n_in = len(ins)
        n_out = len(outs)
        body = b"".join(
            (
                _SMALL[n_in] if n_in < 0xFD else compact_size(n_in),
                *[i.serialize() for i in ins],
                _SMALL[n_out] if n_out < 0xFD else compact_size(n_out),
                *[o.serialize() for o in outs],
            )
        )
        version = _pack_i32(self.version)
        locktime = _pack_u32(self.locktime)
        stripped = version + body + locktime
        witness = any(i.witness for i in ins)
        if witness:
            wit = b"".join([i.serialize_witness() for i in ins])
            full = b"".join((version, b"\x00\x01", body, wit, locktime))
        else:
            full = stripped
        setattr_ = object.__setattr__
        setattr_(self, "has_witness", witness)
        setattr_(self, "_stripped", stripped)
        setattr_(self, "_full", full)
        setattr_(self, "_txid", _sha256(_sha256(stripped).digest()).digest())

    def serialize(self, include_witness: bool = True) -> bytes:
        """Wire/disk bytes; BIP144 marker and flag only when some input has a witness."""
        return self._full if include_witness else self._stripped

    def txid(self) -> bytes:
        """Hash of the serialization without witness, internal byte order."""
        return self._txid

    def wtxid(self) -> bytes:
        """Hash of the full serialization (equal to the txid when there is no witness)."""
        return sha256d(self._full) if self.has_witness else self._txid

    def txid_hex(self) -> str:
        """The txid in display order, as explorers and Bitcoin Core's RPC print it."""
        return self._txid[::-1].hex()

    def size(self) -> int:
        """Total serialized size in bytes, witness included."""
        return len(self._full)

    def weight(self) -> int:
        """BIP141 weight: 3 × stripped size + total size."""
        return 3 * len(self._stripped) + len(self._full)

    def vsize(self) -> int:
        """Virtual size: weight / 4, rounded up; fee rates are quoted per vbyte."""
        return (self.weight() + 3) // 4

    def is_coinbase(self) -> bool:
        """One input spending the null outpoint."""
        return (
            len(self.inputs) == 1
            and self.inputs[0].prev_vout == 0xFFFFFFFF
            and self.inputs[0].prev_txid == bytes(32)
        )


def tx_weight(inputs: Sequence[TxIn], outputs: Sequence[TxOut]) -> int:
    """Weight of a version/locktime-carrying transaction with these inputs and outputs, without
    serializing it: the simulator sizes fees before it knows the change value.

    Equal to `Tx(v, tuple(inputs), tuple(outputs), lt).weight()` for any version and locktime.
    """
    base = 8 + _cs_len(len(inputs)) + _cs_len(len(outputs))
    wit = 0
    any_witness = False
    for i in inputs:
        n = len(i.script_sig)
        base += 40 + _cs_len(n) + n
        w = i.witness
        wit += _cs_len(len(w))
        if w:
            any_witness = True
            for item in w:
                m = len(item)
                wit += _cs_len(m) + m
    for o in outputs:
        n = len(o.script_pubkey)
        base += 8 + _cs_len(n) + n
    if not any_witness:
        return 4 * base
    return 4 * base + 2 + wit


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The 80-byte block header; hashes in internal byte order."""

    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def serialize(self) -> bytes:
        """The 80 header bytes that are hashed for proof of work."""
        return _HEADER.pack(
            self.version, self.prev_hash, self.merkle_root, self.time, self.bits, self.nonce
        )

    def hash(self) -> bytes:
        """Block hash, internal byte order."""
        return sha256d(self.serialize())

    def hash_hex(self) -> str:
        """Block hash in display order."""
        return self.hash()[::-1].hex()


@dataclass(frozen=True)
class Block:
    """A header and its transactions (the first one the coinbase)."""

    header: BlockHeader
    txs: tuple[Tx, ...]

    def serialize(self) -> bytes:
        """Header, transaction count and transactions, as stored in blk*.dat records."""
        return b"".join(
            (
                self.header.serialize(),
                compact_size(len(self.txs)),
                *[t.serialize() for t in self.txs],
            )
        )


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """Bitcoin's merkle root: pairwise sha256d, the last node doubled on odd levels.

    `merkle_root([h]) == h` for a one-transaction block.
    """
    if not hashes:
        raise ValueError("merkle root of no hashes")
    level = list(hashes)
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def witness_commitment_script(wtxids: Sequence[bytes], reserved: bytes = bytes(32)) -> bytes:
    """BIP141 coinbase commitment output script for a block whose *non-coinbase* transactions
    have these wtxids (the coinbase's own wtxid counts as 32 zero bytes and is prepended here).

    `witness_commitment_script([]).hex()[:12] == "6a24aa21a9ed"`
    """
    root = merkle_root([bytes(32), *wtxids])
    return b"\x6a\x24" + WITNESS_COMMITMENT_HEADER + sha256d(root + reserved)


def bits_to_target(bits: int) -> int:
    """Expand the compact difficulty encoding: `bits_to_target(0x1d00ffff) == 0xffff << 208`."""
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def mine(header: BlockHeader) -> BlockHeader:
    """The header with the first nonce, counting up from `header.nonce`, whose hash meets the
    target. At regtest difficulty this takes two tries on average.
    """
    target = bits_to_target(header.bits)
    prefix = _sha256(header.serialize()[:76])
    nonce = header.nonce
    while True:
        h = prefix.copy()
        h.update(_pack_u32(nonce))
        if int.from_bytes(_sha256(h.digest()).digest(), "little") <= target:
            return replace(header, nonce=nonce)
        nonce = (nonce + 1) & 0xFFFFFFFF
        if nonce == header.nonce:
            raise ValueError("no nonce meets the target; change the time or the coinbase")


# ---------------------------------------------------------------------------------------------
# a minimal parser, for round-trip tests only


def _read_cs(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    if first == 0xFD:
        return struct.unpack_from("<H", data, pos + 1)[0], pos + 3
    if first == 0xFE:
        return struct.unpack_from("<I", data, pos + 1)[0], pos + 5
    return struct.unpack_from("<Q", data, pos + 1)[0], pos + 9


def parse_tx(data: bytes, offset: int = 0) -> tuple[Tx, int]:
    """Decode one transaction at `offset`; returns it and the offset just past it.

    Pure Python and slow; the ingest uses the array parser. Raises ValueError on truncation.
    """
    try:
        pos = offset
        (version,) = struct.unpack_from("<i", data, pos)
        pos += 4
        segwit = data[pos] == 0 and data[pos + 1] == 1
        if segwit:
            pos += 2
        n_in, pos = _read_cs(data, pos)
        raw_ins = []
        for _ in range(n_in):
            prev = bytes(data[pos : pos + 32])
            (vout,) = struct.unpack_from("<I", data, pos + 32)
            n, pos = _read_cs(data, pos + 36)
            script = bytes(data[pos : pos + n])
            pos += n
            (seq,) = struct.unpack_from("<I", data, pos)
            pos += 4
            raw_ins.append((prev, vout, script, seq))
        n_out, pos = _read_cs(data, pos)
        outs = []
        for _ in range(n_out):
            (value,) = struct.unpack_from("<Q", data, pos)
            n, pos = _read_cs(data, pos + 8)
            outs.append(TxOut(value, bytes(data[pos : pos + n])))
            pos += n
        witnesses: list[tuple[bytes, ...]] = [()] * n_in
        if segwit:
            for k in range(n_in):
                n_items, pos = _read_cs(data, pos)
                items = []
                for _ in range(n_items):
                    m, pos = _read_cs(data, pos)
                    items.append(bytes(data[pos : pos + m]))
                    pos += m
                witnesses[k] = tuple(items)
        (locktime,) = struct.unpack_from("<I", data, pos)
        pos += 4
    except (IndexError, struct.error) as exc:
        raise ValueError(f"truncated transaction at offset {offset}") from exc
    if pos > len(data):
        raise ValueError(f"truncated transaction at offset {offset}")
    ins = tuple(TxIn(p, v, s, q, w) for (p, v, s, q), w in zip(raw_ins, witnesses, strict=True))
    return Tx(version, ins, tuple(outs), locktime), pos


def parse_block(data: bytes, offset: int = 0) -> tuple[Block, int]:
    """Decode one block (header, count, transactions) at `offset`; returns it and the end offset."""
    if offset + 80 > len(data):
        raise ValueError(f"truncated block header at offset {offset}")
    header = BlockHeader(*_HEADER.unpack_from(data, offset))
    n, pos = _read_cs(data, offset + 80)
    txs = []
    for _ in range(n):
        tx, pos = parse_tx(data, pos)
        txs.append(tx)
    return Block(header, tuple(txs)), pos


def script_pushes(script: bytes, *, strict: bool = True) -> list[bytes]:
    """The data pushes of a push-only script such as a scriptSig (OP_0 pushes b""). Another
    opcode raises ValueError when `strict`, else stands as its own one-byte item."""
    items: list[bytes] = []
    pos = 0
    while pos < len(script):
        op = script[pos]
        pos += 1
        if op == 0:
            items.append(b"")
            continue
        if op <= 0x4B:
            n = op
        elif op == 0x4C:
            n, pos = script[pos], pos + 1
        elif op == 0x4D:
            n, pos = int.from_bytes(script[pos : pos + 2], "little"), pos + 2
        elif strict:
            raise ValueError(f"not a push-only script: opcode {op:#x} at byte {pos - 1}")
        else:
            items.append(bytes([op]))
            continue
        items.append(script[pos : pos + n])
        pos += n
    return items
