"""Parse a batch of raw blocks into flat arrays: headers, transactions, inputs, outputs.

This is the parse stage's entry point. Sources hand it raw block bytes (from blk*.dat files or
from RPC); it returns a `ParsedBatch` of numpy arrays, one row per block, tx, input and output,
with txids computed, merkle roots checked and every output script classified. The store stage
links inputs to outputs and writes the batch; nothing here knows about the store.

Example::

    batch = parse_blocks([raw_block_bytes])
    batch.txid_hex(0)  # first transaction's txid
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from chainsleuth.core.address import KEY_PAYLOAD_WIDTH
from chainsleuth.core.errors import InputError
from chainsleuth.parse import hashing, kernels

_sha256 = hashlib.sha256


@dataclass
class ParsedBatch:
    """Flat arrays describing a batch of blocks. Offsets point into `buf`.

    Per-block arrays have one row per block, per-tx one per transaction (in block order), and so
    on. `tx_first_input`/`tx_first_output` index the input/output arrays (CSR style, with the
    totals appended so that tx t owns rows [first[t], first[t+1]).
    """

    buf: np.ndarray  # uint8, the raw bytes of all blocks, concatenated
    block_start: np.ndarray  # int64 offset of each block's header in buf
    block_end: np.ndarray  # int64
    block_hash: np.ndarray  # (n_blocks, 32) uint8, internal byte order
    block_prev_hash: np.ndarray  # (n_blocks, 32) uint8
    block_merkle_root: np.ndarray  # (n_blocks, 32) uint8
    block_version: np.ndarray  # int64
    block_time: np.ndarray  # int64, unix seconds
    block_bits: np.ndarray  # int64
    block_nonce: np.ndarray  # int64
    block_first_tx: np.ndarray  # int64, n_blocks + 1
    tx_start: np.ndarray
    tx_end: np.ndarray
    tx_io_start: np.ndarray
    tx_witness_start: np.ndarray  # -1 when the tx has no witness
    tx_version: np.ndarray
    tx_locktime: np.ndarray
    tx_block: np.ndarray  # int32, block index within the batch
    tx_first_input: np.ndarray  # int64, n_tx + 1
    tx_first_output: np.ndarray  # int64, n_tx + 1
    tx_size: np.ndarray  # int64 bytes with witness
    tx_base_size: np.ndarray  # int64 bytes without witness (stripped)
    tx_weight: np.ndarray
    tx_vsize: np.ndarray
    txid: np.ndarray  # (n_tx, 32) uint8 internal order
    in_prev_offset: np.ndarray  # offset of the 32-byte prev txid in buf
    in_prev_vout: np.ndarray  # int64
    in_script_offset: np.ndarray
    in_script_len: np.ndarray
    in_sequence: np.ndarray  # int64
    in_witness_offset: np.ndarray  # -1 when none
    in_witness_len: np.ndarray
    in_is_coinbase: np.ndarray  # bool
    out_value: np.ndarray  # int64 satoshis
    out_script_offset: np.ndarray
    out_script_len: np.ndarray
    out_script_type: np.ndarray  # uint8 ScriptType codes
    out_key_kind: np.ndarray  # uint8 ScriptType code of the address key (P2PK -> P2PKH)
    out_key_len: np.ndarray  # uint8, 0 when the output has no address
    out_key_payload: np.ndarray  # (n_out, 41) uint8
    out_multisig_m: np.ndarray  # uint8, 0 unless bare multisig
    out_multisig_n: np.ndarray
    block_bip34_height: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: (n_blocks, 2) int64: blk file number and byte offset of each block's header in it, set by
    #: the source that read the blocks from blk files; empty when they came from elsewhere (RPC)
    block_file_offset: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    _in_prev_txid: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_blocks(self) -> int:
        return int(self.block_start.shape[0])

    @property
    def n_tx(self) -> int:
        return int(self.tx_start.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.in_prev_offset.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.out_value.shape[0])

    def txid_hex(self, t: int) -> str:
        """Display-order hex of transaction t's txid."""
        return bytes(self.txid[t][::-1]).hex()

    def block_hash_hex(self, b: int) -> str:
        return bytes(self.block_hash[b][::-1]).hex()

    def in_prev_txid(self) -> np.ndarray:
        """(n_inputs, 32) uint8 previous txids, internal order (gathered once, then kept)."""
        if self._in_prev_txid is None:
            self._in_prev_txid = _gather_rows(self.buf, self.in_prev_offset, 32)
        return self._in_prev_txid

    def tx_bytes(self, t: int) -> bytes:
        return bytes(self.buf[self.tx_start[t] : self.tx_end[t]])

    def script_pubkey(self, o: int) -> bytes:
        s = self.out_script_offset[o]
        return bytes(self.buf[s : s + self.out_script_len[o]])

    def script_sig(self, i: int) -> bytes:
        s = self.in_script_offset[i]
        return bytes(self.buf[s : s + self.in_script_len[i]])

    def wtxid(self, t: int) -> bytes:
        """wtxid (internal order); equals the txid for transactions without witness."""
        if self.tx_witness_start[t] < 0:
            return bytes(self.txid[t])
        return _sha256(_sha256(self.tx_bytes(t)).digest()).digest()


@njit(cache=True, nogil=True)
def _gather_kernel(buf, offsets, width, out):
    for i in range(offsets.shape[0]):
        out[i, :] = buf[offsets[i] : offsets[i] + width]


def _gather_rows(buf: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Rows of `width` bytes starting at each offset."""
    out = np.empty((offsets.shape[0], width), np.uint8)
    _gather_kernel(buf, offsets, width, out)
    return out


def double_sha256(data: bytes | memoryview) -> bytes:
    """Bitcoin's hash: `double_sha256(b"")[::-1].hex()` is the familiar 5df6e0e2... value."""
    return _sha256(_sha256(data).digest()).digest()


def merkle_root(txids: np.ndarray) -> bytes:
    """Bitcoin's merkle root of (n, 32) internal-order hashes (last odd node duplicated)."""
    n = int(txids.shape[0])
    if n == 0:
        return bytes(32)
    sha = _sha256
    level = np.ascontiguousarray(txids).tobytes()
    while n > 1:
        if n % 2:
            level += level[-32:]
            n += 1
        mv = memoryview(level)
        level = b"".join([sha(sha(mv[i : i + 64]).digest()).digest() for i in range(0, 32 * n, 64)])
        n //= 2
    return level


def _u32_le(rows: np.ndarray) -> np.ndarray:
    """(n, 4) uint8 -> int64 values."""
    return np.ascontiguousarray(rows).view("<u4").reshape(-1).astype(np.int64)


def bip34_height(script_sig: bytes) -> int | None:
    """The block height a coinbase scriptSig starts with (BIP34), or None if it has none.

    Heights 1-16 are OP_1..OP_16 (as `CScript() << height` writes them), 0 is OP_0, otherwise a
    1-8 byte little-endian push.
    """
    if not script_sig:
        return None
    first = script_sig[0]
    if first == 0x00:
        return 0
    if 0x51 <= first <= 0x60:
        return first - 0x50
    if 1 <= first <= 8 and len(script_sig) > first:
        return int.from_bytes(script_sig[1 : 1 + first], "little", signed=True)
    return None


_COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")


def _check_witness_commitments(
    buf: np.ndarray,
    block_first_tx: np.ndarray,
    tx_start: np.ndarray,
    tx_end: np.ndarray,
    tx_wit: np.ndarray,
    tx_first_in: np.ndarray,
    tx_first_out: np.ndarray,
    in_wit_off: np.ndarray,
    in_wit_len: np.ndarray,
    out_script_off: np.ndarray,
    out_script_len: np.ndarray,
    txid: np.ndarray,
    fail: Callable[[int, int, str, str], InputError],
    starts: np.ndarray,
) -> None:
    """BIP141: a block with witness data commits to it in its coinbase; check that commitment.

    The merkle root covers only txids, so without this a flipped witness byte would go unseen.
    """
    segwit = tx_wit >= 0
    blocks = np.flatnonzero(np.add.reduceat(segwit.astype(np.int64), block_first_tx[:-1]) > 0)
    if segwit.shape[0] == 0 or blocks.shape[0] == 0:
        return
    wtxid = txid.copy()
    ws = np.flatnonzero(segwit)
    hashed = np.empty((ws.shape[0], 32), np.uint8)
    hashing.hash_ranges(buf, tx_start[ws], tx_end[ws], hashed)
    wtxid[ws] = hashed
    wtxid[block_first_tx[:-1][block_first_tx[:-1] < block_first_tx[1:]]] = 0  # coinbases count as 0
    roots = np.empty((block_first_tx.shape[0] - 1, 32), np.uint8)
    hashing.merkle_roots(wtxid, block_first_tx, roots)
    for b in blocks.tolist():
        first = int(block_first_tx[b])
        commitment = None
        for o in range(int(tx_first_out[first]), int(tx_first_out[first + 1])):
            s = int(out_script_off[o])
            script = bytes(buf[s : s + int(out_script_len[o])])
            if len(script) >= 38 and script[:6] == _COMMITMENT_HEADER:
                commitment = (script[6:38], s)  # the last one counts
        if commitment is None:
            raise fail(
                b,
                int(starts[b]) + 80,
                "block has witness data but no witness commitment",
                "coinbase witness commitment",
            )
        # The coinbase's witness: one 32-byte item, the witness reserved value.
        i = int(tx_first_in[first])
        w, wl = int(in_wit_off[i]), int(in_wit_len[i])
        witness = bytes(buf[w : w + wl]) if w >= 0 else b""
        reserved = witness[2:34] if len(witness) == 34 and witness[:2] == b"\x01\x20" else None
        if reserved is None:
            raise fail(
                b,
                max(w, 0),
                "coinbase witness is not one 32-byte reserved value",
                "coinbase witness",
            )
        expected = double_sha256(bytes(roots[b]) + reserved)
        if expected != commitment[0]:
            raise fail(
                b,
                commitment[1] + 6,
                "witness commitment does not match the block's witness data",
                "coinbase witness commitment",
            )


def parse_blocks(
    blocks: Sequence[bytes | bytearray | memoryview] | np.ndarray,
    *,
    offsets: np.ndarray | None = None,
    where: Sequence[str] | None = None,
    check_merkle: bool = True,
) -> ParsedBatch:
    """Parse raw blocks (a list of byte strings, or one buffer plus (start, end) `offsets`).

    `where` names each block's origin (e.g. "blk00003.dat @ 1234") for error messages: a malformed
    block raises `InputError` naming its origin, the byte offset inside the block and the field.
    """
    if offsets is None:
        parts = [np.frombuffer(b, dtype=np.uint8) for b in blocks]  # type: ignore[arg-type]
        lengths = np.array([p.shape[0] for p in parts], dtype=np.int64)
        buf = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        starts = np.zeros(len(parts), dtype=np.int64)
        if len(parts) > 1:
            starts[1:] = np.cumsum(lengths)[:-1]
        ends = starts + lengths
    else:
        buf = np.asarray(blocks, dtype=np.uint8)
        starts = np.ascontiguousarray(offsets[:, 0], dtype=np.int64)
        ends = np.ascontiguousarray(offsets[:, 1], dtype=np.int64)
    n_blocks = starts.shape[0]

    def fail(block: int, offset: int, message: str, field_name: str) -> InputError:
        origin = where[block] if where is not None else f"block #{block} of the batch"
        return InputError(
            message, path=origin, offset=int(offset - starts[block]), field=field_name
        )

    counts = np.zeros(3, np.int64)
    error = np.zeros(4, np.int64)
    empty = np.zeros(0, np.int64)
    empty32 = np.zeros(0, np.int32)
    rc = kernels.walk_blocks(
        buf, starts, ends, False, counts, error, *([empty] * 6), empty32, *([empty] * 12)
    )
    if rc:
        raise fail(
            int(error[2]),
            int(error[1]),
            kernels.ERROR_NAMES[error[0]],
            kernels.FIELD_NAMES[error[3]],
        )
    n_tx, n_in, n_out = (int(c) for c in counts)

    def ints(n: int) -> np.ndarray:
        return np.empty(n, np.int64)

    tx_start, tx_end, tx_io, tx_wit = ints(n_tx), ints(n_tx), ints(n_tx), ints(n_tx)
    tx_version, tx_locktime = ints(n_tx), ints(n_tx)
    tx_block = np.empty(n_tx, np.int32)
    tx_first_in, tx_first_out = ints(n_tx + 1), ints(n_tx + 1)
    in_prev_off, in_prev_vout, in_script_off, in_script_len = (
        ints(n_in),
        ints(n_in),
        ints(n_in),
        ints(n_in),
    )
    in_seq, in_wit_off, in_wit_len = ints(n_in), ints(n_in), ints(n_in)
    out_value, out_script_off, out_script_len = ints(n_out), ints(n_out), ints(n_out)
    kernels.walk_blocks(
        buf,
        starts,
        ends,
        True,
        counts,
        error,
        tx_start,
        tx_end,
        tx_io,
        tx_wit,
        tx_version,
        tx_locktime,
        tx_block,
        tx_first_in,
        tx_first_out,
        in_prev_off,
        in_prev_vout,
        in_script_off,
        in_script_len,
        in_seq,
        in_wit_off,
        in_wit_len,
        out_value,
        out_script_off,
        out_script_len,
    )
    tx_first_in[n_tx] = n_in
    tx_first_out[n_tx] = n_out

    # Headers.
    hdr_idx = starts[:, None] + np.arange(80)[None, :]
    headers = buf[hdr_idx] if n_blocks else np.zeros((0, 80), np.uint8)
    block_hash = np.empty((n_blocks, 32), np.uint8)
    hashing.hash_ranges(buf, starts, starts + 80, block_hash)
    block_version = _u32_le(headers[:, 0:4]).astype(np.int64)
    block_version = np.where(block_version >= 2**31, block_version - 2**32, block_version)

    # Txids: the stripped serialization for segwit txs, the whole tx otherwise.
    segwit = tx_wit >= 0
    base_size = np.where(segwit, 8 + (tx_wit - tx_io), tx_end - tx_start)
    size = tx_end - tx_start
    weight = base_size * 3 + size
    vsize = (weight + 3) // 4
    strip_lens = base_size[segwit]
    strip_off = np.zeros(strip_lens.shape[0] + 1, np.int64)
    np.cumsum(strip_lens, out=strip_off[1:])
    stripped = np.empty(int(strip_off[-1]), np.uint8)
    kernels.build_stripped(buf, tx_start, tx_io, tx_wit, tx_end, strip_off, stripped)
    # (hashing.py: batched kernels with the GIL released, so parse threads run side by side)
    legacy = np.flatnonzero(~segwit)
    witness = np.flatnonzero(segwit)
    txid = np.empty((n_tx, 32), np.uint8)
    hashed = np.empty((legacy.shape[0], 32), np.uint8)
    hashing.hash_ranges(buf, tx_start[legacy], tx_end[legacy], hashed)
    txid[legacy] = hashed
    hashed = np.empty((witness.shape[0], 32), np.uint8)
    hashing.hash_ranges(stripped, strip_off[:-1], strip_off[1:], hashed)
    txid[witness] = hashed

    block_first_tx = np.searchsorted(tx_block, np.arange(n_blocks + 1), side="left").astype(
        np.int64
    )
    merkle = headers[:, 36:68] if n_blocks else np.zeros((0, 32), np.uint8)
    if check_merkle:
        roots = np.empty((n_blocks, 32), np.uint8)
        hashing.merkle_roots(txid, block_first_tx, roots)
        wrong = np.flatnonzero((roots != merkle).any(axis=1))
        if wrong.shape[0]:
            b = int(wrong[0])
            raise fail(
                b,
                starts[b] + 36,
                f"merkle root {bytes(merkle[b][::-1]).hex()} does not match the root "
                f"{bytes(roots[b][::-1]).hex()} computed from the block's transactions",
                "merkle root",
            )

    if check_merkle:
        _check_witness_commitments(
            buf,
            block_first_tx,
            tx_start,
            tx_end,
            tx_wit,
            tx_first_in,
            tx_first_out,
            in_wit_off,
            in_wit_len,
            out_script_off,
            out_script_len,
            txid,
            fail,
            starts,
        )

    # Coinbase inputs: the first input of each block's first tx, with a null prevout.
    in_is_coinbase = np.zeros(n_in, np.bool_)
    first_txs = block_first_tx[:-1][block_first_tx[:-1] < block_first_tx[1:]]
    cb_inputs = tx_first_in[first_txs]
    if cb_inputs.shape[0]:
        prev = buf[in_prev_off[cb_inputs][:, None] + np.arange(32)[None, :]]
        null = (prev == 0).all(axis=1) & (in_prev_vout[cb_inputs] == 0xFFFFFFFF)
        in_is_coinbase[cb_inputs[null]] = True

    # BIP34 heights: only version-2+ blocks promise one (earlier coinbases push arbitrary data).
    block_version_raw = _u32_le(headers[:, 0:4]) if n_blocks else np.zeros(0, np.int64)
    bip34 = np.full(n_blocks, -1, np.int64)
    for b in range(n_blocks):
        t = block_first_tx[b]
        if block_version_raw[b] < 2:
            continue
        if t < block_first_tx[b + 1] and in_is_coinbase[tx_first_in[t]]:
            i = tx_first_in[t]
            s = int(in_script_off[i])
            h = bip34_height(bytes(buf[s : s + min(int(in_script_len[i]), 9)]))
            if h is not None:
                bip34[b] = h

    # Output scripts.
    out_type = np.empty(n_out, np.uint8)
    key_kind = np.empty(n_out, np.uint8)
    key_len = np.empty(n_out, np.uint8)
    key_payload = np.zeros((n_out, KEY_PAYLOAD_WIDTH), np.uint8)
    ms_m = np.empty(n_out, np.uint8)
    ms_n = np.empty(n_out, np.uint8)
    kernels.classify_scripts(
        buf, out_script_off, out_script_len, out_type, key_kind, key_len, key_payload, ms_m, ms_n
    )
    # P2PK: index under hash160(pubkey), the P2PKH address explorers show (RIPEMD-160 is not
    # available in numba; P2PK outputs are rare after 2010, so a Python loop is fine).
    for o in np.flatnonzero(out_type == kernels.ST_P2PK).tolist():
        s = int(out_script_off[o])
        pubkey = bytes(buf[s + 1 : s + int(out_script_len[o]) - 1])
        h160 = hashlib.new("ripemd160", _sha256(pubkey).digest()).digest()
        key_payload[o, :20] = np.frombuffer(h160, np.uint8)

    return ParsedBatch(
        buf=buf,
        block_start=starts,
        block_end=ends,
        block_hash=block_hash,
        block_prev_hash=np.ascontiguousarray(headers[:, 4:36]),
        block_merkle_root=np.ascontiguousarray(merkle),
        block_version=block_version,
        block_time=_u32_le(headers[:, 68:72]),
        block_bits=_u32_le(headers[:, 72:76]),
        block_nonce=_u32_le(headers[:, 76:80]),
        block_first_tx=block_first_tx,
        tx_start=tx_start,
        tx_end=tx_end,
        tx_io_start=tx_io,
        tx_witness_start=tx_wit,
        tx_version=tx_version,
        tx_locktime=tx_locktime,
        tx_block=tx_block,
        tx_first_input=tx_first_in,
        tx_first_output=tx_first_out,
        tx_size=size,
        tx_base_size=base_size,
        tx_weight=weight,
        tx_vsize=vsize,
        txid=txid,
        in_prev_offset=in_prev_off,
        in_prev_vout=in_prev_vout,
        in_script_offset=in_script_off,
        in_script_len=in_script_len,
        in_sequence=in_seq,
        in_witness_offset=in_wit_off,
        in_witness_len=in_wit_len,
        in_is_coinbase=in_is_coinbase,
        out_value=out_value,
        out_script_offset=out_script_off,
        out_script_len=out_script_len,
        out_script_type=out_type,
        out_key_kind=key_kind,
        out_key_len=key_len,
        out_key_payload=key_payload,
        out_multisig_m=ms_m,
        out_multisig_n=ms_n,
        block_bip34_height=bip34,
    )


def classify_script_list(
    scripts: Sequence[bytes],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ingest's own classifier on a few loose scripts (bench and test readers of single
    txs): (script type, key kind, key length, key payload), one row per script."""
    lens = np.array([len(s) for s in scripts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    buf = np.frombuffer(b"".join(scripts), np.uint8) if scripts else np.zeros(0, np.uint8)
    n = len(scripts)
    out_type, kind, klen = np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.uint8)
    payload = np.zeros((n, KEY_PAYLOAD_WIDTH), np.uint8)
    ms_m, ms_n = np.empty(n, np.uint8), np.empty(n, np.uint8)
    kernels.classify_scripts(buf, offsets, lens, out_type, kind, klen, payload, ms_m, ms_n)
    return out_type, kind, klen, payload
