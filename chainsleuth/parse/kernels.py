"""Numba kernels that walk serialized blocks and classify output scripts, in batches.

Why numba: ingesting ~1.1 billion transactions cannot afford one Python object per transaction,
input or output. These kernels walk a whole batch of raw blocks (one contiguous uint8 buffer)
and fill flat arrays of byte offsets and integers; `chainsleuth.parse.blocks` turns them into a
`ParsedBatch`. Called only by `chainsleuth.parse.blocks`.

Every walk is bounds-checked: a truncated or garbled block yields an error record
(code, byte offset, block index, field) instead of reading past the buffer.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from chainsleuth.core.script_types import ScriptType

# Field codes reported on malformed input; names in FIELD_NAMES (indexed by code).
F_HEADER = 1
F_TX_COUNT = 2
F_TX_VERSION = 3
F_SEGWIT_FLAG = 4
F_INPUT_COUNT = 5
F_PREVOUT = 6
F_SCRIPT_SIG_LEN = 7
F_SCRIPT_SIG = 8
F_SEQUENCE = 9
F_OUTPUT_COUNT = 10
F_VALUE = 11
F_SCRIPT_PUBKEY_LEN = 12
F_SCRIPT_PUBKEY = 13
F_WITNESS_COUNT = 14
F_WITNESS_ITEM = 15
F_LOCKTIME = 16
F_BLOCK_END = 17

FIELD_NAMES = (
    "",
    "block header",
    "transaction count",
    "transaction version",
    "segwit marker/flag",
    "input count",
    "input prevout",
    "scriptSig length",
    "scriptSig",
    "input sequence",
    "output count",
    "output value",
    "scriptPubKey length",
    "scriptPubKey",
    "witness item count",
    "witness item",
    "locktime",
    "block length (bytes left over after the last transaction)",
)

E_TRUNCATED = 1
E_NONCANONICAL = 2
E_TOO_LARGE = 3
E_BAD_VALUE = 4
E_TRAILING = 5
E_BAD_FLAG = 6

ERROR_NAMES = (
    "",
    "truncated: the data ends inside this field",
    "non-canonical CompactSize encoding",
    "size over Bitcoin's 32 MiB limit",
    "value out of range (negative or above 21 million BTC)",
    "bytes left over after the block's last transaction",
    "segwit flag is not 0x01, or a segwit transaction has no witness data",
)

MAX_SIZE = 0x02000000  # Bitcoin Core's MAX_SIZE for CompactSize values
MAX_MONEY = 21_000_000 * 100_000_000


@njit(cache=True, nogil=True)
def _read_u32(buf, pos):
    return (
        np.int64(buf[pos])
        | (np.int64(buf[pos + 1]) << 8)
        | (np.int64(buf[pos + 2]) << 16)
        | (np.int64(buf[pos + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def _read_i64(buf, pos):
    value = np.int64(0)
    for k in range(8):
        value |= np.int64(buf[pos + k]) << (8 * k)
    return value


@njit(cache=True, nogil=True)
def _read_compact(buf, pos, end):
    """Return (value, new_pos, error_code); error_code 0 means ok."""
    if pos >= end:
        return 0, pos, E_TRUNCATED
    first = buf[pos]
    if first < 0xFD:
        return np.int64(first), pos + 1, 0
    if first == 0xFD:
        if pos + 3 > end:
            return 0, pos, E_TRUNCATED
        value = np.int64(buf[pos + 1]) | (np.int64(buf[pos + 2]) << 8)
        if value < 0xFD:
            return 0, pos, E_NONCANONICAL
        return value, pos + 3, 0
    if first == 0xFE:
        if pos + 5 > end:
            return 0, pos, E_TRUNCATED
        value = _read_u32(buf, pos + 1)
        if value < 0x10000:
            return 0, pos, E_NONCANONICAL
        if value > MAX_SIZE:
            return 0, pos, E_TOO_LARGE
        return value, pos + 5, 0
    if pos + 9 > end:
        return 0, pos, E_TRUNCATED
    return 0, pos, E_TOO_LARGE  # 0xFF: 8-byte sizes are always above MAX_SIZE


@njit(cache=True, nogil=True)
def walk_blocks(
    buf,
    block_starts,
    block_ends,
    fill,
    counts,
    error,
    tx_start,
    tx_end,
    tx_io_start,
    tx_witness_start,
    tx_version,
    tx_locktime,
    tx_block,
    tx_first_input,
    tx_first_output,
    in_prev_offset,
    in_prev_vout,
    in_script_offset,
    in_script_len,
    in_sequence,
    in_witness_offset,
    in_witness_len,
    out_value,
    out_script_offset,
    out_script_len,
):
    """Walk every block of a batch.

    With fill=False only `counts` (n_tx, n_inputs, n_outputs totals) is written; with fill=True
    the per-tx/input/output arrays, sized from a previous counting walk, are filled too.
    Returns 0, or 1 with `error` = [error code, byte offset, block index, field code].
    """
    n_tx = 0
    n_in = 0
    n_out = 0
    for b in range(block_starts.shape[0]):
        pos = block_starts[b]
        end = block_ends[b]
        if pos + 80 > end:
            error[0] = E_TRUNCATED
            error[1] = pos
            error[2] = b
            error[3] = F_HEADER
            return 1
        pos += 80
        count, pos, err = _read_compact(buf, pos, end)
        if err != 0:
            error[0] = err
            error[1] = pos
            error[2] = b
            error[3] = F_TX_COUNT
            return 1
        for _t in range(count):
            start = pos
            if pos + 4 > end:
                error[0] = E_TRUNCATED
                error[1] = pos
                error[2] = b
                error[3] = F_TX_VERSION
                return 1
            version = _read_u32(buf, pos)
            if version >= 0x80000000:
                version -= 0x100000000  # nVersion is a signed int32
            pos += 4
            segwit = False
            if pos + 2 <= end and buf[pos] == 0 and buf[pos + 1] != 0:
                if buf[pos + 1] != 1:
                    error[0] = E_BAD_FLAG
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SEGWIT_FLAG
                    return 1
                segwit = True
                pos += 2
            io_start = pos
            n_inputs, pos, err = _read_compact(buf, pos, end)
            if err != 0:
                error[0] = err
                error[1] = pos
                error[2] = b
                error[3] = F_INPUT_COUNT
                return 1
            first_in = n_in
            for _i in range(n_inputs):
                if pos + 36 > end:
                    error[0] = E_TRUNCATED
                    error[1] = pos
                    error[2] = b
                    error[3] = F_PREVOUT
                    return 1
                if fill:
                    in_prev_offset[n_in] = pos
                    in_prev_vout[n_in] = _read_u32(buf, pos + 32)
                pos += 36
                script_len, pos, err = _read_compact(buf, pos, end)
                if err != 0:
                    error[0] = err
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SCRIPT_SIG_LEN
                    return 1
                if pos + script_len > end:
                    error[0] = E_TRUNCATED
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SCRIPT_SIG
                    return 1
                if fill:
                    in_script_offset[n_in] = pos
                    in_script_len[n_in] = script_len
                pos += script_len
                if pos + 4 > end:
                    error[0] = E_TRUNCATED
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SEQUENCE
                    return 1
                if fill:
                    in_sequence[n_in] = _read_u32(buf, pos)
                    in_witness_offset[n_in] = -1
                    in_witness_len[n_in] = 0
                pos += 4
                n_in += 1
            n_outputs, pos, err = _read_compact(buf, pos, end)
            if err != 0:
                error[0] = err
                error[1] = pos
                error[2] = b
                error[3] = F_OUTPUT_COUNT
                return 1
            first_out = n_out
            for _o in range(n_outputs):
                if pos + 8 > end:
                    error[0] = E_TRUNCATED
                    error[1] = pos
                    error[2] = b
                    error[3] = F_VALUE
                    return 1
                value = _read_i64(buf, pos)
                if value < 0 or value > MAX_MONEY:
                    error[0] = E_BAD_VALUE
                    error[1] = pos
                    error[2] = b
                    error[3] = F_VALUE
                    return 1
                if fill:
                    out_value[n_out] = value
                pos += 8
                script_len, pos, err = _read_compact(buf, pos, end)
                if err != 0:
                    error[0] = err
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SCRIPT_PUBKEY_LEN
                    return 1
                if pos + script_len > end:
                    error[0] = E_TRUNCATED
                    error[1] = pos
                    error[2] = b
                    error[3] = F_SCRIPT_PUBKEY
                    return 1
                if fill:
                    out_script_offset[n_out] = pos
                    out_script_len[n_out] = script_len
                pos += script_len
                n_out += 1
            witness_start = pos
            if segwit:
                any_witness = False
                for i in range(n_inputs):
                    wit_begin = pos
                    n_items, pos, err = _read_compact(buf, pos, end)
                    if err != 0:
                        error[0] = err
                        error[1] = pos
                        error[2] = b
                        error[3] = F_WITNESS_COUNT
                        return 1
                    for _w in range(n_items):
                        item_len, pos, err = _read_compact(buf, pos, end)
                        if err != 0:
                            error[0] = err
                            error[1] = pos
                            error[2] = b
                            error[3] = F_WITNESS_ITEM
                            return 1
                        if pos + item_len > end:
                            error[0] = E_TRUNCATED
                            error[1] = pos
                            error[2] = b
                            error[3] = F_WITNESS_ITEM
                            return 1
                        pos += item_len
                    if n_items > 0:
                        any_witness = True
                    if fill:
                        in_witness_offset[first_in + i] = wit_begin
                        in_witness_len[first_in + i] = pos - wit_begin
                if not any_witness:
                    # BIP144: a transaction with the segwit flag must carry witness data.
                    error[0] = E_BAD_FLAG
                    error[1] = witness_start
                    error[2] = b
                    error[3] = F_SEGWIT_FLAG
                    return 1
            if pos + 4 > end:
                error[0] = E_TRUNCATED
                error[1] = pos
                error[2] = b
                error[3] = F_LOCKTIME
                return 1
            if fill:
                tx_start[n_tx] = start
                tx_io_start[n_tx] = io_start
                tx_witness_start[n_tx] = witness_start if segwit else -1
                tx_version[n_tx] = version
                tx_locktime[n_tx] = _read_u32(buf, pos)
                tx_end[n_tx] = pos + 4
                tx_block[n_tx] = b
                tx_first_input[n_tx] = first_in
                tx_first_output[n_tx] = first_out
            pos += 4
            n_tx += 1
        if pos != end:
            error[0] = E_TRAILING
            error[1] = pos
            error[2] = b
            error[3] = F_BLOCK_END
            return 1
    counts[0] = n_tx
    counts[1] = n_in
    counts[2] = n_out
    return 0


@njit(cache=True, nogil=True)
def build_stripped(buf, tx_start, tx_io_start, tx_witness_start, tx_end, offsets, out):
    """Copy each segwit tx without marker, flag and witness (the bytes its txid hashes).

    `offsets[k]` is where the k-th segwit tx (in tx order) starts in `out`.
    """
    k = 0
    for t in range(tx_start.shape[0]):
        if tx_witness_start[t] < 0:
            continue
        dst = offsets[k]
        s = tx_start[t]
        for j in range(4):
            out[dst + j] = buf[s + j]
        dst += 4
        body = tx_witness_start[t] - tx_io_start[t]
        out[dst : dst + body] = buf[tx_io_start[t] : tx_witness_start[t]]
        dst += body
        e = tx_end[t] - 4
        for j in range(4):
            out[dst + j] = buf[e + j]
        k += 1


# Script type codes as plain ints, derived from ScriptType (numba compiles module-level ints in
# as constants; an IntEnum member it would not take).
ST_NONSTANDARD = int(ScriptType.NONSTANDARD)
ST_P2PK = int(ScriptType.P2PK)
ST_P2PKH = int(ScriptType.P2PKH)
ST_P2SH = int(ScriptType.P2SH)
ST_P2WPKH = int(ScriptType.P2WPKH)
ST_P2WSH = int(ScriptType.P2WSH)
ST_P2TR = int(ScriptType.P2TR)
ST_P2A = int(ScriptType.P2A)
ST_MULTISIG = int(ScriptType.MULTISIG)
ST_OP_RETURN = int(ScriptType.OP_RETURN)
ST_WITNESS_UNKNOWN = int(ScriptType.WITNESS_UNKNOWN)


@njit(cache=True, nogil=True)
def _pubkey_len(first_byte):
    """Bitcoin Core's CPubKey::GetLen: the size a pubkey must have given its first byte."""
    if first_byte == 2 or first_byte == 3:
        return 33
    if first_byte == 4 or first_byte == 6 or first_byte == 7:
        return 65
    return 0


@njit(cache=True, nogil=True)
def _copy_payload(buf, src, length, key_payload, row, dst_offset):
    for j in range(length):
        key_payload[row, dst_offset + j] = buf[src + j]


@njit(cache=True, nogil=True)
def classify_scripts(
    buf,
    script_offset,
    script_len,
    script_type,
    key_kind,
    key_len,
    key_payload,
    multisig_m,
    multisig_n,
):
    """Classify each output script as Bitcoin Core's Solver does and extract its address key.

    One deliberate difference: any script starting with OP_RETURN is `op_return` (provably
    unspendable), also when the rest is not push-only (Core calls those nonstandard).

    The address key (kind, payload) is what the store indexes: hash160 for P2PKH/P2SH/P2WPKH,
    the program for P2WSH/P2TR/P2A, version byte + program for other witness versions. P2PK
    outputs get kind P2PKH with an empty payload: the caller fills in hash160(pubkey), which
    needs RIPEMD-160 (not available in numba).
    """
    for i in range(script_offset.shape[0]):
        o = script_offset[i]
        n = script_len[i]
        st = ST_NONSTANDARD
        kind = ST_NONSTANDARD
        klen = 0
        multisig_m[i] = 0
        multisig_n[i] = 0
        if n >= 1 and buf[o] == 0x6A:
            # Provably unspendable. Tested first: an OP_RETURN script may end in 0xae and must not
            # be taken for multisig.
            st = ST_OP_RETURN
        elif (
            n == 25
            and buf[o] == 0x76
            and buf[o + 1] == 0xA9
            and buf[o + 2] == 0x14
            and buf[o + 23] == 0x88
            and buf[o + 24] == 0xAC
        ):
            st = ST_P2PKH
            kind = ST_P2PKH
            klen = 20
            _copy_payload(buf, o + 3, 20, key_payload, i, 0)
        elif n == 23 and buf[o] == 0xA9 and buf[o + 1] == 0x14 and buf[o + 22] == 0x87:
            st = ST_P2SH
            kind = ST_P2SH
            klen = 20
            _copy_payload(buf, o + 2, 20, key_payload, i, 0)
        elif (
            n >= 4
            and n <= 42
            and (buf[o] == 0 or (buf[o] >= 0x51 and buf[o] <= 0x60))
            and np.int64(buf[o + 1]) + 2 == n
        ):
            # Witness program (Core's IsWitnessProgram): OP_n and one push filling the script.
            # Other short scripts starting with OP_1..OP_16 (a 37-byte 1-of-1 bare multisig with
            # a compressed key) must not enter this branch: they fall through to the checks below.
            plen = np.int64(buf[o + 1])
            if plen + 2 == n and plen >= 2 and plen <= 40:
                version = 0 if buf[o] == 0 else buf[o] - 0x50
                if version == 0 and plen == 20:
                    st = ST_P2WPKH
                    kind = ST_P2WPKH
                    klen = 20
                    _copy_payload(buf, o + 2, 20, key_payload, i, 0)
                elif version == 0 and plen == 32:
                    st = ST_P2WSH
                    kind = ST_P2WSH
                    klen = 32
                    _copy_payload(buf, o + 2, 32, key_payload, i, 0)
                elif version == 1 and plen == 32:
                    st = ST_P2TR
                    kind = ST_P2TR
                    klen = 32
                    _copy_payload(buf, o + 2, 32, key_payload, i, 0)
                elif version == 1 and plen == 2 and buf[o + 2] == 0x4E and buf[o + 3] == 0x73:
                    st = ST_P2A
                    kind = ST_P2A
                    klen = 2
                    _copy_payload(buf, o + 2, 2, key_payload, i, 0)
                elif version != 0:
                    st = ST_WITNESS_UNKNOWN
                    kind = ST_WITNESS_UNKNOWN
                    klen = plen + 1
                    key_payload[i, 0] = version
                    _copy_payload(buf, o + 2, plen, key_payload, i, 1)
        elif (n == 35 or n == 67) and buf[o] == n - 2 and buf[o + n - 1] == 0xAC:
            if _pubkey_len(buf[o + 1]) == n - 2:
                st = ST_P2PK
                kind = ST_P2PKH  # indexed under the P2PKH address of its key (derived)
                klen = 20
        elif n >= 3 and buf[o + n - 1] == 0xAE:
            # Bare multisig: OP_m <pubkey>... OP_n OP_CHECKMULTISIG, 1 <= m <= n <= 16
            first = buf[o]
            last = buf[o + n - 2]
            if first >= 0x51 and first <= 0x60 and last >= 0x51 and last <= 0x60:
                m = first - 0x50
                keys = last - 0x50
                p = o + 1
                stop = o + n - 2
                found = 0
                ok = True
                while p < stop:
                    size = np.int64(buf[p])
                    if (size != 33 and size != 65) or p + 1 + size > stop:
                        ok = False
                        break
                    if _pubkey_len(buf[p + 1]) != size:
                        ok = False
                        break
                    p += 1 + size
                    found += 1
                if ok and found == keys and m <= keys:
                    st = ST_MULTISIG
                    multisig_m[i] = m
                    multisig_n[i] = keys
        script_type[i] = st
        key_kind[i] = kind
        key_len[i] = klen
