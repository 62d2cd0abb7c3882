"""parse_blocks on every real mainnet block in the shared data, checked against the manifest,
the header chain, and the Floresta prevout files (fees, and how each input spends its prevout)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainsleuth.core.address import (
    ADDRESSABLE_KINDS,
    decode_address,
    encode_address,
)
from chainsleuth.core.network import MAIN
from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES, ScriptType
from chainsleuth.parse.address_kernels import encode_address_keys
from chainsleuth.parse.blocks import ParsedBatch, classify_script_list, parse_blocks
from chainsleuth.parse.serialize import script_pushes
from tests.conftest import read_blk

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MAINNET = SHARED / "mainnet-blocks"
MANIFEST = json.loads((MAINNET / "manifest.json").read_text())

# The manifest (written by the data hunt's throwaway classifier) calls bare multisig
# `bare_multisig`; our ScriptType calls it `multisig`. It also has an `empty` bucket for empty
# scripts, which Bitcoin Core (and we) call nonstandard.
MANIFEST_TYPE_NAMES = {"bare_multisig": "multisig", "empty": "nonstandard"}

BLOCK_FILES = [f for f in MANIFEST["files"] if f["format"] in ("blk", "raw-block")]
SUBSIDY = {367891: 2_500_000_000, 866342: 312_500_000}
FEES = {367891: 14_001_930, 866342: 5_026_183}
BIP34_ACTIVATION = 227931


def manifest_blocks(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return entry["blocks"] if entry["format"] == "blk" else [entry["block"]]


@cache
def parsed(path: str) -> ParsedBatch:
    """One file's blocks, parsed once per test session."""
    entry = next(f for f in BLOCK_FILES if f["path"] == path)
    file = MAINNET / path
    raws = read_blk(file) if entry["format"] == "blk" else [file.read_bytes()]
    return parse_blocks(raws, where=[f"{file} #{k}" for k in range(len(raws))])


def block_facts(batch: ParsedBatch, b: int) -> dict[str, Any]:
    """The manifest's per-block facts, computed from our arrays."""
    t0, t1 = int(batch.block_first_tx[b]), int(batch.block_first_tx[b + 1])
    i0, i1 = int(batch.tx_first_input[t0]), int(batch.tx_first_input[t1])
    o0, o1 = int(batch.tx_first_output[t0]), int(batch.tx_first_output[t1])
    size = int(batch.block_end[b] - batch.block_start[b])
    witness_bytes = int((batch.tx_size[t0:t1] - batch.tx_base_size[t0:t1]).sum())
    stripped = size - witness_bytes
    types: dict[str, int] = {}
    for code in batch.out_script_type[o0:o1].tolist():
        name = SCRIPT_TYPE_NAMES[code]
        types[name] = types.get(name, 0) + 1
    cb_out = slice(int(batch.tx_first_output[t0]), int(batch.tx_first_output[t0 + 1]))
    return {
        "hash": batch.block_hash_hex(b),
        "prev_hash": bytes(batch.block_prev_hash[b][::-1]).hex(),
        "merkle_root": bytes(batch.block_merkle_root[b][::-1]).hex(),
        "version": int(batch.block_version[b]),
        "time": int(batch.block_time[b]),
        "bits": f"{int(batch.block_bits[b]):08x}",
        "nonce": int(batch.block_nonce[b]),
        "n_tx": t1 - t0,
        "size": size,
        "stripped_size": stripped,
        "weight": 3 * stripped + size,
        "n_inputs": i1 - i0,
        "n_outputs": o1 - o0,
        "n_segwit_tx": int((batch.tx_witness_start[t0:t1] >= 0).sum()),
        "coinbase_txid": batch.txid_hex(t0),
        "coinbase_output_sats": int(batch.out_value[cb_out].sum()),
        "output_types": types,
    }


FACT_KEYS = [
    "hash",
    "prev_hash",
    "merkle_root",
    "version",
    "time",
    "bits",
    "nonce",
    "n_tx",
    "size",
    "stripped_size",
    "weight",
    "n_inputs",
    "n_outputs",
    "n_segwit_tx",
    "coinbase_txid",
    "coinbase_output_sats",
]


@pytest.mark.parametrize("path", [f["path"] for f in BLOCK_FILES])
def test_every_block_parses_to_the_manifest_facts(path: str) -> None:
    entry = next(f for f in BLOCK_FILES if f["path"] == path)
    batch = parsed(path)
    expected = manifest_blocks(entry)
    assert batch.n_blocks == len(expected)
    for b, facts in enumerate(expected):
        got = block_facts(batch, b)
        for key in FACT_KEYS:
            assert got[key] == facts[key], f"{path} block {b} ({facts['hash']}): {key}"
        want_types = {}
        for name, count in facts["output_types"].items():
            ours = MANIFEST_TYPE_NAMES.get(name, name)
            want_types[ours] = want_types.get(ours, 0) + count
        assert got["output_types"] == want_types, f"{path} block {b}: output types"


@pytest.mark.parametrize("path", [f["path"] for f in BLOCK_FILES])
def test_block_hash_is_the_double_sha256_of_the_header_and_the_merkle_root_checks(
    path: str,
) -> None:
    batch = parsed(path)
    for b in range(batch.n_blocks):
        header = bytes(batch.buf[batch.block_start[b] : batch.block_start[b] + 80])
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        assert bytes(batch.block_hash[b]) == digest
        assert bytes(batch.block_merkle_root[b]) == header[36:68]
    # parse_blocks checks merkle roots itself (check_merkle=True); recompute one independently.
    t0, t1 = int(batch.block_first_tx[0]), int(batch.block_first_tx[1])
    level = [bytes(batch.txid[t]) for t in range(t0, t1)]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [
            hashlib.sha256(hashlib.sha256(level[i] + level[i + 1]).digest()).digest()
            for i in range(0, len(level), 2)
        ]
    assert level[0] == bytes(batch.block_merkle_root[0])


def test_nbitcoin_blk_files_link_from_genesis_to_height_599() -> None:
    hashes = np.concatenate(
        [
            parsed("blk/nbitcoin/blk00000.dat").block_hash,
            parsed("blk/nbitcoin/blk00001.dat").block_hash,
        ]
    )
    prevs = np.concatenate(
        [
            parsed("blk/nbitcoin/blk00000.dat").block_prev_hash,
            parsed("blk/nbitcoin/blk00001.dat").block_prev_hash,
        ]
    )
    assert hashes.shape[0] == 600
    assert bytes(hashes[0][::-1]).hex() == MAIN.genesis_hash
    assert not prevs[0].any()
    assert (prevs[1:] == hashes[:-1]).all()


def test_nbitcoin_headers_equal_the_mainnet_header_chain() -> None:
    chain = (MAINNET / "headers" / "mainnet-headers-0-10236.bin").read_bytes()
    for name in ("blk00000.dat", "blk00001.dat"):
        batch = parsed(f"blk/nbitcoin/{name}")
        first = 0 if name == "blk00000.dat" else 300
        for b in range(batch.n_blocks):
            header = bytes(batch.buf[batch.block_start[b] : batch.block_start[b] + 80])
            assert header == chain[80 * (first + b) : 80 * (first + b + 1)]


def spent_utxos(height: int) -> list[dict[str, Any]]:
    return json.loads((MAINNET / "raw" / f"{height:07d}.spent_utxos.json").read_text())


def prevout_values(batch: ParsedBatch, height: int) -> np.ndarray:
    """Value of every input's prevout (0 for the coinbase input), aligned with the input arrays."""
    records = spent_utxos(height)
    spending = np.flatnonzero(~batch.in_is_coinbase)
    assert spending.shape[0] == len(records)  # one record per non-coinbase input, in block order
    values = np.zeros(batch.n_inputs, np.int64)
    values[spending] = [r["txout"]["value"] for r in records]
    return values


@pytest.mark.parametrize("height", [367891, 866342])
def test_fees_from_the_spent_outputs_match_the_recorded_total_and_the_coinbase(
    height: int,
) -> None:
    batch = parsed(f"raw/{height:07d}.bin")
    values = prevout_values(batch, height)
    in_sum = np.add.reduceat(values, batch.tx_first_input[:-1])
    out_sum = np.add.reduceat(batch.out_value, batch.tx_first_output[:-1])
    fees = (in_sum - out_sum)[1:]  # the coinbase pays no fee
    assert (fees >= 0).all()
    assert int(fees.sum()) == FEES[height]
    coinbase_value = int(out_sum[0])
    assert SUBSIDY[height] + FEES[height] == coinbase_value


def test_taproot_outputs_of_866342_are_p2tr_with_bc1p_addresses() -> None:
    batch = parsed("raw/0866342.bin")
    p2tr = np.flatnonzero(batch.out_script_type == ScriptType.P2TR)
    assert p2tr.shape[0] == 2757
    addresses = encode_address_keys(
        batch.out_key_kind[p2tr], batch.out_key_payload[p2tr], batch.out_key_len[p2tr], MAIN.code
    ).to_pylist()
    for o, address in zip(p2tr.tolist(), addresses, strict=True):
        script = batch.script_pubkey(o)
        assert script[:2] == b"\x51\x20" and len(script) == 34
        assert address.startswith("bc1p")
        assert decode_address(address)[:2] == (ScriptType.P2TR, script[2:])
        assert address == encode_address(ScriptType.P2TR, script[2:], MAIN)


def read_compact(raw: bytes, pos: int) -> tuple[int, int]:
    first = raw[pos]
    if first < 0xFD:
        return first, pos + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(raw[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def witness_items(batch: ParsedBatch, i: int) -> list[bytes]:
    """Input i's witness stack, decoded here from the byte range the parser reports."""
    if batch.in_witness_offset[i] < 0:
        return []
    start = int(batch.in_witness_offset[i])
    raw = bytes(batch.buf[start : start + int(batch.in_witness_len[i])])
    count, pos = read_compact(raw, 0)
    items = []
    for _ in range(count):
        n, pos = read_compact(raw, pos)
        items.append(raw[pos : pos + n])
        pos += n
    assert pos == len(raw)
    return items


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


@pytest.mark.parametrize("height", [367891, 866342])
def test_prevout_scripts_classify_as_the_way_each_input_spends_them(height: int) -> None:
    """An independent check of our classifier on the prevouts: a P2PKH prevout is spent with
    the pubkey that hashes to it, a P2SH one with a redeem script that hashes to it, a P2WPKH one
    with a witness pubkey, a P2WSH one with a witness script, a P2TR one with a 64/65-byte
    signature (key path) or a control block (script path)."""
    batch = parsed(f"raw/{height:07d}.bin")
    records = spent_utxos(height)
    scripts = [bytes.fromhex(r["txout"]["script_pubkey"]) for r in records]
    types, kinds, lens, payloads = classify_script_list(scripts)
    spending = np.flatnonzero(~batch.in_is_coinbase).tolist()
    checked: dict[str, int] = {}
    for k, i in enumerate(spending):
        st = ScriptType(int(types[k]))
        key = bytes(payloads[k, : lens[k]])
        wit = witness_items(batch, i)
        if st in (ScriptType.P2PKH, ScriptType.P2SH):
            assert hash160(script_pushes(batch.script_sig(i))[-1]) == key
        elif st == ScriptType.P2WPKH:
            assert len(wit) == 2 and hash160(wit[1]) == key
        elif st == ScriptType.P2WSH:
            assert hashlib.sha256(wit[-1]).digest() == key
        elif st == ScriptType.P2TR:
            items = wit[:-1] if len(wit) > 1 and wit[-1][:1] == b"\x50" else wit  # annex
            if len(items) == 1:
                assert len(items[0]) in (64, 65)
            else:
                control = items[-1]
                assert control[0] & 0xFE == 0xC0 and (len(control) - 33) % 32 == 0
        elif st == ScriptType.NONSTANDARD:
            # 367891's 20,000 zero-value outputs with an empty script, spent with OP_TRUE.
            assert scripts[k] == b"" and batch.script_sig(i) == b"\x51"
        checked[str(st)] = checked.get(str(st), 0) + 1
    assert sum(checked.values()) == len(records)
    assert checked.keys() <= {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "nonstandard"}
    if height == 866342:
        assert checked["p2tr"] == 2373  # the count PROVENANCE.md gives for this block
    else:
        assert checked["nonstandard"] == 20_000
    # P2PK prevouts get their P2PKH key only in parse_blocks (hash160 needs RIPEMD-160), so
    # only scripts whose own type is addressable are compared here.
    addressable = np.isin(types, [int(k) for k in ADDRESSABLE_KINDS])
    addresses = encode_address_keys(kinds, payloads, lens, MAIN.code).to_pylist()
    for k in np.flatnonzero(addressable).tolist():
        kind, payload, networks = decode_address(addresses[k])
        assert (kind, payload) == (ScriptType(int(kinds[k])), bytes(payloads[k, : lens[k]]))
        assert "main" in networks


@pytest.mark.parametrize(
    "path",
    [
        f["path"]
        for f in BLOCK_FILES
        if f["format"] == "raw-block" and f["height"] > BIP34_ACTIVATION
    ]
    + ["blk/btcd/277647.dat"],
)
def test_bip34_height_of_blocks_after_activation_equals_the_manifest_height(path: str) -> None:
    entry = next(f for f in BLOCK_FILES if f["path"] == path)
    assert parsed(path).block_bip34_height.tolist() == [entry["height"]]
