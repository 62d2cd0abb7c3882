"""The one scalar address reference and the one batch codec, against each other and the vectors.

`chainsleuth.core.address` (pure Python, one address at a time) and
`chainsleuth.parse.address_kernels` (numba, whole batches) are the package's only address codecs.
Random keys and strings come from the shared strategies in `tests.strategies`; the fixed cases are
Bitcoin Core's key_io and BIP341 vectors from `../shared/data/address-vectors`, whose keys are read
here straight from the vectors' output scripts, not through either codec.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core.address import KEY_PAYLOAD_WIDTH, AddressError, decode_address
from chainsleuth.core.network import NETWORKS, Network
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.address_kernels import decode_addresses, encode_key_rows, network_mask
from tests.conftest import SHARED_DATA
from tests.strategies import address_keys, addresses, networks

VECTORS = SHARED_DATA / "address-vectors" / "bitcoin-core"
#: the kinds the batch decoder takes itself; it hands the rarer ones to `decode_address`
FAST_KINDS = {
    ScriptType.P2PKH,
    ScriptType.P2SH,
    ScriptType.P2WPKH,
    ScriptType.P2WSH,
    ScriptType.P2TR,
}


def _rows(keys: list[tuple[int, bytes]]) -> np.ndarray:
    """Keys as the store's `address_key` rows: kind, payload length, payload."""
    rows = np.zeros((len(keys), 2 + KEY_PAYLOAD_WIDTH), np.uint8)
    for i, (kind, payload) in enumerate(keys):
        rows[i, 0], rows[i, 1] = kind, len(payload)
        rows[i, 2 : 2 + len(payload)] = np.frombuffer(payload, np.uint8)
    return rows


def _key_of_script(spk: bytes) -> tuple[ScriptType, bytes]:
    """The address key of an output script, read from its opcodes (the test's own oracle)."""
    if len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return ScriptType.P2PKH, spk[3:23]
    if len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22:] == b"\x87":
        return ScriptType.P2SH, spk[2:22]
    version_op, push, program = spk[0], spk[1], spk[2:]
    assert push == len(program) and (version_op == 0 or 0x51 <= version_op <= 0x60), spk.hex()
    if version_op == 0:
        return (ScriptType.P2WPKH if push == 20 else ScriptType.P2WSH), program
    version = version_op - 0x50
    if version == 1 and push == 32:
        return ScriptType.P2TR, program
    if version == 1 and program == b"\x4e\x73":
        return ScriptType.P2A, program
    return ScriptType.WITNESS_UNKNOWN, bytes([version]) + program


def decoders_agree(strings: list[str]) -> tuple[int, int]:
    """Both decoders on every string: the batch never accepts an invalid string, agrees on kind,
    payload and networks, and declines only the rare forms (and upper-case bech32).
    Returns (accepted by the batch, valid per the scalar reference)."""
    kinds, payloads, nets = decode_addresses(strings)
    accepted = valid = 0
    for s, kind, payload, net in zip(strings, kinds, payloads, nets, strict=True):
        try:
            want_kind, want_payload, names = decode_address(s)
        except AddressError:
            assert kind == -1, f"batch accepted invalid {s!r}"
            continue
        valid += 1
        lowercase_or_base58 = want_kind in (ScriptType.P2PKH, ScriptType.P2SH) or s == s.lower()
        if want_kind in FAST_KINDS and lowercase_or_base58:
            assert (kind, payload, net) == (int(want_kind), want_payload, network_mask(names)), s
            accepted += 1
        else:
            assert kind == -1, s
    return accepted, valid


@settings(max_examples=200, deadline=None)
@given(strings=st.lists(addresses(), min_size=1, max_size=30))
def test_batch_decoder_agrees_with_the_scalar_reference(strings: list[str]) -> None:
    decoders_agree(strings)


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(address_keys(), min_size=1, max_size=30), network=networks)
def test_batch_encode_then_either_decoder_gives_the_key_back(
    keys: list[tuple[int, bytes]], network: Network
) -> None:
    strings = encode_key_rows(_rows(keys), network.code).to_pylist()
    kinds, payloads, nets = decode_addresses(strings)
    for i, (kind, payload) in enumerate(keys):
        got_kind, got_payload, names = decode_address(strings[i])
        assert (got_kind, got_payload) == (kind, payload)
        assert network.name in names
        if kind in FAST_KINDS:
            assert (kinds[i], payloads[i]) == (kind, payload)
            assert nets[i] & (1 << network.code)
        else:
            assert kinds[i] == -1


KEY_IO = [
    e for e in json.loads((VECTORS / "key_io_valid.json").read_text()) if not e[2]["isPrivkey"]
]
BIP341 = [
    e["expected"]
    for e in json.loads((VECTORS / "bip341_wallet_vectors.json").read_text())["scriptPubKey"]
]


def test_the_vectors_hold_every_addressable_kind() -> None:
    kinds = {_key_of_script(bytes.fromhex(e[1]))[0] for e in KEY_IO}
    assert len(KEY_IO) == 54 and len(BIP341) == 7
    assert kinds >= FAST_KINDS | {ScriptType.WITNESS_UNKNOWN}


@pytest.mark.parametrize("chain", sorted({e[2]["chain"] for e in KEY_IO}))
def test_batch_codec_gives_the_key_io_addresses_of_their_scripts(chain: str) -> None:
    entries = [e for e in KEY_IO if e[2]["chain"] == chain]
    keys = [_key_of_script(bytes.fromhex(e[1])) for e in entries]
    encoded = encode_key_rows(_rows(keys), NETWORKS[chain].code).to_pylist()
    # a bech32 vector may be written in upper case; the encoder writes the canonical lower case
    base58 = (ScriptType.P2PKH, ScriptType.P2SH)
    assert encoded == [
        e[0] if kind in base58 else e[0].lower() for e, (kind, _) in zip(entries, keys, strict=True)
    ]
    kinds, payloads, nets = decode_addresses([e[0] for e in entries])
    for i, (kind, payload) in enumerate(keys):
        if kinds[i] == -1:  # declined: a rare form, or upper case, for `decode_address`
            assert kind not in FAST_KINDS or entries[i][0] != entries[i][0].lower()
            continue
        assert (kinds[i], payloads[i]) == (kind, payload)
        assert nets[i] & (1 << NETWORKS[chain].code)
    assert decoders_agree([e[0] for e in entries])[1] == len(entries)


def test_batch_codec_gives_the_bip341_taproot_addresses() -> None:
    keys = [_key_of_script(bytes.fromhex(e["scriptPubKey"])) for e in BIP341]
    assert {k for k, _ in keys} == {ScriptType.P2TR}
    encoded = encode_key_rows(_rows(keys), NETWORKS["main"].code).to_pylist()
    assert encoded == [e["bip350Address"] for e in BIP341]
    kinds, payloads, _ = decode_addresses(encoded)
    assert [(int(k), p) for k, p in zip(kinds, payloads, strict=True)] == [
        (int(k), p) for k, p in keys
    ]


def test_encode_key_rows_refuses_rows_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="key rows"):
        encode_key_rows(np.zeros((1, 41), np.uint8), 0)
