"""The numba address encoder must give exactly the strings of the pure-Python `encode_address`."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core.address import (
    ADDRESSABLE_KINDS,
    KEY_PAYLOAD_WIDTH,
    P2A_PROGRAM,
    AddressError,
    encode_address,
    hash160,
)
from chainsleuth.core.network import MAIN, Network
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.address_kernels import encode_address_keys, sha256_digest
from tests.strategies import NETWORK_LIST, address_keys

NOT_ADDRESSABLE = sorted(set(ScriptType) - ADDRESSABLE_KINDS)


def _arrays(keys: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kinds = np.array([k for k, _ in keys], dtype=np.uint8)
    payloads = np.zeros((len(keys), KEY_PAYLOAD_WIDTH), dtype=np.uint8)
    lens = np.zeros(len(keys), dtype=np.uint8)
    for i, (_, payload) in enumerate(keys):
        payloads[i, : len(payload)] = np.frombuffer(payload, dtype=np.uint8)
        lens[i] = len(payload)
    return kinds, payloads, lens


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(address_keys(), min_size=1, max_size=40),
    network=st.sampled_from(NETWORK_LIST),
)
def test_kernel_encodes_random_keys_exactly_like_encode_address(
    keys: list[tuple[int, bytes]], network: Network
) -> None:
    got = encode_address_keys(*_arrays(keys), network.code)
    assert got.to_pylist() == [encode_address(ScriptType(k), p, network) for k, p in keys]


@settings(max_examples=100, deadline=None)
@given(
    digests=st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=20),
    leading_zeros=st.integers(0, 20),
    network=st.sampled_from(NETWORK_LIST),
)
def test_kernel_base58_matches_for_hashes_with_leading_zero_bytes(
    digests: list[bytes], leading_zeros: int, network: Network
) -> None:
    # mainnet P2PKH has a zero version byte, so leading zero hash bytes add leading "1"s
    keys = [(int(ScriptType.P2PKH), bytes(leading_zeros) + d[leading_zeros:]) for d in digests]
    keys += [(int(ScriptType.P2SH), p) for _, p in keys]
    got = encode_address_keys(*_arrays(keys), network.code)
    assert got.to_pylist() == [encode_address(ScriptType(k), p, network) for k, p in keys]


def test_kernel_encodes_the_all_zero_and_all_ff_hashes() -> None:
    keys = [
        (int(k), bytes([b]) * 20) for k in (ScriptType.P2PKH, ScriptType.P2SH) for b in (0, 255)
    ]
    for network in NETWORK_LIST:
        got = encode_address_keys(*_arrays(keys), network.code).to_pylist()
        assert got == [encode_address(ScriptType(k), p, network) for k, p in keys]


@pytest.mark.parametrize("kind", NOT_ADDRESSABLE, ids=str)
def test_kernel_gives_null_for_a_kind_without_an_address(kind: ScriptType) -> None:
    keys = [(int(ScriptType.P2WPKH), bytes(20)), (int(kind), bytes(20)), (int(kind), b"")]
    got = encode_address_keys(*_arrays(keys), MAIN.code)
    assert got.to_pylist() == [encode_address(ScriptType.P2WPKH, bytes(20), MAIN), None, None]
    assert got.null_count == 2


def test_kernel_returns_a_valid_string_array_without_nulls() -> None:
    got = encode_address_keys(*_arrays([(int(ScriptType.P2A), P2A_PROGRAM)] * 3), MAIN.code)
    assert isinstance(got, pa.StringArray)
    assert got.null_count == 0
    got.validate(full=True)


def test_kernel_gives_an_empty_array_for_no_keys() -> None:
    got = encode_address_keys(*_arrays([]), MAIN.code)
    assert isinstance(got, pa.StringArray) and len(got) == 0


def test_kernel_encodes_the_p2pkh_key_of_the_genesis_p2pk_output() -> None:
    genesis_pubkey = bytes.fromhex(
        "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb6"
        "49f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f"
    )
    got = encode_address_keys(*_arrays([(int(ScriptType.P2PKH), hash160(genesis_pubkey))]), 0)
    assert got.to_pylist() == ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (ScriptType.P2PKH, bytes(32)),
        (ScriptType.P2WSH, bytes(20)),
        (ScriptType.P2A, b"\x4e\x74"),
        (ScriptType.WITNESS_UNKNOWN, b"\x01" + bytes(32)),
        (ScriptType.WITNESS_UNKNOWN, b"\x00" + bytes(20)),
    ],
    ids=lambda v: v.hex()[:12] if isinstance(v, bytes) else str(v),
)
def test_kernel_refuses_a_payload_that_does_not_fit_its_kind(
    kind: ScriptType, payload: bytes
) -> None:
    keys = [(int(ScriptType.P2WPKH), bytes(20)), (int(kind), payload)]
    with pytest.raises(AddressError, match="row 1"):
        encode_address_keys(*_arrays(keys), MAIN.code)


def test_kernel_refuses_an_unknown_network_code() -> None:
    with pytest.raises(ValueError, match="network code"):
        encode_address_keys(*_arrays([]), 99)


def test_numba_sha256_equals_hashlib_for_every_length_up_to_200() -> None:
    rng = np.random.default_rng(20240501)
    for length in range(201):
        for _ in range(3):
            msg = rng.integers(0, 256, length, dtype=np.uint8)
            assert bytes(sha256_digest(msg)) == hashlib.sha256(msg.tobytes()).digest(), length


@settings(max_examples=200, deadline=None)
@given(msg=st.binary(max_size=300))
def test_numba_sha256_equals_hashlib_on_random_messages(msg: bytes) -> None:
    assert bytes(sha256_digest(np.frombuffer(msg, dtype=np.uint8))) == hashlib.sha256(msg).digest()
