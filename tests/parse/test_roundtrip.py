"""Random transactions of every output type, written by the serializer and read back by
parse_blocks: every field, hash and size round-trips and each script gets the type it was made as."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.blocks import ParsedBatch, parse_blocks
from chainsleuth.parse.serialize import (
    REGTEST_BITS,
    Block,
    BlockHeader,
    Tx,
    TxIn,
    TxOut,
    merkle_root,
    witness_commitment_script,
)

MAX_MONEY = 21_000_000 * 100_000_000


def push(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def compressed_key() -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from([2, 3]), st.binary(min_size=32, max_size=32)).map(
        lambda t: bytes([t[0]]) + t[1]
    )


def uncompressed_key() -> st.SearchStrategy[bytes]:
    # 06/07 are the hybrid encodings Core's CPubKey still accepts as 65-byte keys.
    return st.tuples(st.sampled_from([4, 6, 7]), st.binary(min_size=64, max_size=64)).map(
        lambda t: bytes([t[0]]) + t[1]
    )


def hash20() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=20, max_size=20)


def hash32() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=32, max_size=32)


@st.composite
def multisig(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 16))
    m = draw(st.integers(1, n))
    keys = draw(st.lists(st.one_of(compressed_key(), uncompressed_key()), min_size=n, max_size=n))
    return bytes([0x50 + m]) + b"".join(push(k) for k in keys) + bytes([0x50 + n, 0xAE])


@st.composite
def witness_unknown(draw: st.DrawFn) -> bytes:
    version = draw(st.integers(1, 16))
    program = draw(st.binary(min_size=2, max_size=40))
    if version == 1 and (len(program) == 32 or program == b"\x4e\x73"):
        program += b"\x00"  # that would be p2tr or p2a
    return bytes([0x50 + version, len(program)]) + program


def pushdata(data: bytes) -> bytes:
    """The shortest push of `data` (direct up to 75 bytes, then OP_PUSHDATA1)."""
    return push(data) if len(data) <= 75 else b"\x4c" + push(data)


@st.composite
def op_return(draw: st.DrawFn) -> bytes:
    """OP_RETURN followed by pushes only, as Core's Solver requires for `nulldata`."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=80), max_size=3))
    if chunks and draw(st.booleans()):
        # The last byte 0xae (OP_CHECKMULTISIG) must not make it multisig (mainnet 514485).
        chunks[-1] = chunks[-1][:-1] + b"\xae"
    return b"\x6a" + b"".join(pushdata(c) for c in chunks)


@st.composite
def nonstandard(draw: st.DrawFn) -> bytes:
    return draw(
        st.one_of(
            st.just(b""),
            st.just(b"\x51"),  # OP_TRUE, too short for a witness program
            st.binary(max_size=60).map(lambda b: b"\x75" + b),  # OP_DROP ...
            # P2PK shapes with a key of the wrong length for its first byte:
            st.binary(min_size=32, max_size=32).map(lambda b: b"\x21\x04" + b + b"\xac"),
            st.binary(min_size=64, max_size=64).map(lambda b: b"\x41\x02" + b + b"\xac"),
            # a witness program whose push length disagrees with the script length:
            hash20().map(lambda b: b"\x00\x15" + b),
            # multisig with fewer keys than n says:
            compressed_key().map(lambda k: b"\x51" + push(k) + b"\x52\xae"),
            # multisig with m > n:
            compressed_key().map(lambda k: b"\x52" + push(k) + b"\x51\xae"),
        )
    )


SCRIPTS: dict[ScriptType, st.SearchStrategy[bytes]] = {
    ScriptType.P2PK: st.one_of(
        compressed_key().map(lambda k: push(k) + b"\xac"),
        uncompressed_key().map(lambda k: push(k) + b"\xac"),
    ),
    ScriptType.P2PKH: hash20().map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
    ScriptType.P2SH: hash20().map(lambda h: b"\xa9\x14" + h + b"\x87"),
    ScriptType.P2WPKH: hash20().map(lambda h: b"\x00\x14" + h),
    ScriptType.P2WSH: hash32().map(lambda h: b"\x00\x20" + h),
    ScriptType.P2TR: hash32().map(lambda h: b"\x51\x20" + h),
    ScriptType.P2A: st.just(b"\x51\x02\x4e\x73"),
    ScriptType.MULTISIG: multisig(),
    ScriptType.OP_RETURN: op_return(),
    ScriptType.WITNESS_UNKNOWN: witness_unknown(),
    ScriptType.NONSTANDARD: nonstandard(),
}
assert set(SCRIPTS) == set(ScriptType)


@st.composite
def typed_output(draw: st.DrawFn) -> tuple[ScriptType, TxOut]:
    kind = draw(st.sampled_from(list(ScriptType)))
    return kind, TxOut(draw(st.integers(0, MAX_MONEY)), draw(SCRIPTS[kind]))


@st.composite
def transaction(draw: st.DrawFn, segwit: bool) -> tuple[Tx, list[ScriptType]]:
    n_in = draw(st.integers(1, 4))
    inputs = []
    for k in range(n_in):
        witness: tuple[bytes, ...] = ()
        if segwit:
            witness = tuple(draw(st.lists(st.binary(max_size=300), max_size=4)))
            if k == n_in - 1 and not any(i.witness for i in inputs) and not witness:
                witness = (draw(st.binary(max_size=80)),)  # BIP144: some input has a witness
        inputs.append(
            TxIn(
                draw(hash32().filter(any)),  # not the null prevout of a coinbase
                draw(st.integers(0, 0xFFFFFFFF)),
                draw(st.binary(max_size=300)),
                draw(st.integers(0, 0xFFFFFFFF)),
                witness,
            )
        )
    typed = draw(st.lists(typed_output(), max_size=6))
    tx = Tx(
        draw(st.integers(-(2**31), 2**31 - 1)),
        tuple(inputs),
        tuple(out for _, out in typed),
        draw(st.integers(0, 0xFFFFFFFF)),
    )
    return tx, [kind for kind, _ in typed]


@st.composite
def block(draw: st.DrawFn) -> tuple[Block, list[list[ScriptType]]]:
    made = draw(st.lists(st.booleans().flatmap(transaction), min_size=1, max_size=5))
    outputs = [TxOut(50 * 100_000_000, b"\x51\x20" + bytes(32))]
    witness: tuple[bytes, ...] = ()
    if any(tx.has_witness for tx, _ in made):
        # BIP141: a block with witness data commits to it in its coinbase.
        outputs.append(TxOut(0, witness_commitment_script([tx.wtxid() for tx, _ in made])))
        witness = (bytes(32),)
    coinbase = Tx(
        2,
        (TxIn(bytes(32), 0xFFFFFFFF, b"\x03\x01\x02\x03", 0xFFFFFFFF, witness),),
        tuple(outputs),
    )
    txs = (coinbase, *(tx for tx, _ in made))
    header = BlockHeader(
        draw(st.integers(-(2**31), 2**31 - 1)),
        draw(hash32()),
        merkle_root([t.txid() for t in txs]),
        draw(st.integers(0, 0xFFFFFFFF)),
        REGTEST_BITS,
        draw(st.integers(0, 0xFFFFFFFF)),
    )
    coinbase_kinds = [ScriptType.P2TR] + [ScriptType.OP_RETURN] * (len(outputs) - 1)
    return Block(header, txs), [coinbase_kinds, *(kinds for _, kinds in made)]


def witness_bytes(batch: ParsedBatch, i: int) -> bytes | None:
    start = int(batch.in_witness_offset[i])
    return None if start < 0 else bytes(batch.buf[start : start + int(batch.in_witness_len[i])])


@settings(max_examples=150, deadline=None)
@given(block())
def test_random_block_round_trips_through_parse_blocks(
    made: tuple[Block, list[list[ScriptType]]],
) -> None:
    blk, kinds = made
    data = blk.serialize()
    batch = parse_blocks([data])
    assert batch.n_blocks == 1 and batch.n_tx == len(blk.txs)
    assert bytes(batch.block_hash[0]) == blk.header.hash()
    assert bytes(batch.block_prev_hash[0]) == blk.header.prev_hash
    assert int(batch.block_version[0]) == blk.header.version
    assert int(batch.block_time[0]) == blk.header.time
    assert int(batch.block_nonce[0]) == blk.header.nonce
    assert int(batch.block_end[0] - batch.block_start[0]) == len(data)
    prev = batch.in_prev_txid()
    for t, tx in enumerate(blk.txs):
        assert batch.tx_bytes(t) == tx.serialize()
        assert bytes(batch.txid[t]) == tx.txid()
        assert batch.wtxid(t) == tx.wtxid()
        assert int(batch.tx_size[t]) == tx.size()
        assert int(batch.tx_base_size[t]) == len(tx.serialize(include_witness=False))
        assert int(batch.tx_weight[t]) == tx.weight()
        assert int(batch.tx_vsize[t]) == tx.vsize()
        assert int(batch.tx_version[t]) == tx.version
        assert int(batch.tx_locktime[t]) == tx.locktime
        assert (batch.tx_witness_start[t] >= 0) == tx.has_witness
        i0, i1 = int(batch.tx_first_input[t]), int(batch.tx_first_input[t + 1])
        assert i1 - i0 == len(tx.inputs)
        for i, txin in zip(range(i0, i1), tx.inputs, strict=True):
            assert bytes(prev[i]) == txin.prev_txid
            assert int(batch.in_prev_vout[i]) == txin.prev_vout
            assert batch.script_sig(i) == txin.script_sig
            assert int(batch.in_sequence[i]) == txin.sequence
            assert bool(batch.in_is_coinbase[i]) == (t == 0)
            want = txin.serialize_witness() if tx.has_witness else None
            assert witness_bytes(batch, i) == want
        o0, o1 = int(batch.tx_first_output[t]), int(batch.tx_first_output[t + 1])
        assert o1 - o0 == len(tx.outputs)
        for o, txout, kind in zip(range(o0, o1), tx.outputs, kinds[t], strict=True):
            assert int(batch.out_value[o]) == txout.value
            assert batch.script_pubkey(o) == txout.script_pubkey
            assert ScriptType(int(batch.out_script_type[o])) == kind, txout.script_pubkey.hex()


@settings(max_examples=150, deadline=None)
@given(typed_output())
def test_address_key_of_each_generated_output_is_its_hash_or_program(
    typed: tuple[ScriptType, TxOut],
) -> None:
    kind, out = typed
    coinbase = Tx(2, (TxIn(bytes(32), 0xFFFFFFFF, b"\x01\x01"),), (out,))
    header = BlockHeader(1, bytes(32), coinbase.txid(), 0, REGTEST_BITS, 0)
    batch = parse_blocks([Block(header, (coinbase,)).serialize()])
    script = out.script_pubkey
    key = bytes(batch.out_key_payload[0, : batch.out_key_len[0]])
    got = (ScriptType(int(batch.out_key_kind[0])), key)
    if kind == ScriptType.P2PK:
        h160 = hashlib.new("ripemd160", hashlib.sha256(script[1:-1]).digest()).digest()
        assert got == (ScriptType.P2PKH, h160)  # indexed under its key's P2PKH address
    elif kind == ScriptType.P2PKH:
        assert got == (kind, script[3:23])
    elif kind == ScriptType.P2SH:
        assert got == (kind, script[2:22])
    elif kind in (ScriptType.P2WPKH, ScriptType.P2WSH, ScriptType.P2TR, ScriptType.P2A):
        assert got == (kind, script[2:])
    elif kind == ScriptType.WITNESS_UNKNOWN:
        # the witness version (OP_1..OP_16 are 0x51..0x60), then the program
        assert got == (kind, bytes([script[0] - 0x50]) + script[2:])
    else:
        assert int(batch.out_key_len[0]) == 0  # multisig, OP_RETURN, nonstandard: no address
    if kind == ScriptType.MULTISIG:
        assert int(batch.out_multisig_m[0]) == script[0] - 0x50
        assert int(batch.out_multisig_n[0]) == script[-2] - 0x50


def test_one_of_one_bare_multisig_with_a_compressed_key_is_multisig_not_nonstandard() -> None:
    # 37 bytes starting with OP_1: short enough to look like a witness program at first glance,
    # but its push does not fill the script, so Core's Solver goes on and finds multisig.
    script = b"\x51\x21\x02" + bytes(range(32)) + b"\x51\xae"
    coinbase = Tx(2, (TxIn(bytes(32), 0xFFFFFFFF, b"\x01\x01"),), (TxOut(1, script),))
    header = BlockHeader(1, bytes(32), coinbase.txid(), 0, REGTEST_BITS, 0)
    batch = parse_blocks([Block(header, (coinbase,)).serialize()])
    assert ScriptType(int(batch.out_script_type[0])) == ScriptType.MULTISIG
    assert (int(batch.out_multisig_m[0]), int(batch.out_multisig_n[0])) == (1, 1)
