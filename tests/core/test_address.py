"""Address keys, base58check and bech32/bech32m against the published vectors in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from chainsleuth.core.address import (
    P2A_PROGRAM,
    AddressError,
    Bech32Spec,
    base58_decode,
    base58_encode,
    base58check_decode,
    base58check_encode,
    bech32_decode,
    bech32_encode,
    decode_address,
    decode_segwit,
    encode_address,
    encode_segwit,
    hash160,
    script_pubkey,
    words_to_bytes,
)
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.network import MAIN, NETWORKS, REGTEST, TEST, Network
from chainsleuth.core.script_types import ScriptType
from tests.strategies import address_keys, networks

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VECTORS = DATA / "address-vectors"


def _load(relative: str) -> Any:
    path = VECTORS / relative
    assert path.is_file(), f"test vectors missing: {path} (shared data lives in ../shared/data)"
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# Bitcoin Core key_io vectors

KEY_IO_VALID: list[list[Any]] = _load("bitcoin-core/key_io_valid.json")
KEY_IO_ADDRESSES = [e for e in KEY_IO_VALID if not e[2]["isPrivkey"]]
KEY_IO_PRIVKEYS = [e for e in KEY_IO_VALID if e[2]["isPrivkey"]]
KEY_IO_INVALID: list[str] = [e[0] for e in _load("bitcoin-core/key_io_invalid.json")]


def test_key_io_valid_holds_54_addresses_and_16_wif_keys() -> None:
    # the 16 isPrivkey entries are WIF secrets, not addresses, so they are not decoded here
    assert len(KEY_IO_VALID) == 70
    assert len(KEY_IO_PRIVKEYS) == 16
    assert len(KEY_IO_ADDRESSES) == 54


def test_every_key_io_address_entry_is_checked() -> None:
    checked = 0
    for address, spk_hex, meta in KEY_IO_ADDRESSES:
        kind, payload, networks = decode_address(address)
        assert script_pubkey(kind, payload).hex() == spk_hex
        assert meta["chain"] in networks
        assert encode_address(kind, payload, NETWORKS[meta["chain"]]) == address
        checked += 1
    assert checked == len(KEY_IO_VALID) - len(KEY_IO_PRIVKEYS)


@pytest.mark.parametrize("entry", KEY_IO_ADDRESSES, ids=lambda e: e[0])
def test_key_io_address_decodes_to_its_script_pubkey(entry: list[Any]) -> None:
    address, spk_hex, meta = entry
    kind, payload, networks = decode_address(address)
    assert script_pubkey(kind, payload).hex() == spk_hex
    assert meta["chain"] in networks


@pytest.mark.parametrize("entry", KEY_IO_ADDRESSES, ids=lambda e: e[0])
def test_key_io_address_encodes_back_exactly(entry: list[Any]) -> None:
    address, _, meta = entry
    kind, payload, _ = decode_address(address)
    assert encode_address(kind, payload, NETWORKS[meta["chain"]]) == address


@pytest.mark.parametrize(
    "entry", [e for e in KEY_IO_ADDRESSES if e[2].get("tryCaseFlip")], ids=lambda e: e[0]
)
def test_key_io_address_with_case_flipped_decodes_to_the_same_key(entry: list[Any]) -> None:
    address = entry[0]
    assert decode_address(address.swapcase()) == decode_address(address)


@pytest.mark.parametrize("entry", KEY_IO_PRIVKEYS, ids=lambda e: e[0])
def test_key_io_wif_private_key_is_not_an_address(entry: list[Any]) -> None:
    with pytest.raises(AddressError):
        decode_address(entry[0])


@pytest.mark.parametrize("text", KEY_IO_INVALID, ids=repr)
def test_key_io_invalid_string_is_rejected(text: str) -> None:
    with pytest.raises(AddressError):
        decode_address(text)


def test_key_io_invalid_base58check_strings_fail_on_length_or_version() -> None:
    # 21 of the invalid strings are well-formed base58check (WIF-sized or foreign version bytes);
    # they must fail on what they hold, not on the checksum
    well_formed = []
    for text in KEY_IO_INVALID:
        try:
            raw = base58check_decode(text)
        except AddressError:
            continue
        well_formed.append(text)
        known = {n.p2pkh_version for n in NETWORKS.values()} | {
            n.p2sh_version for n in NETWORKS.values()
        }
        assert len(raw) != 21 or raw[0] not in known
        with pytest.raises(AddressError):
            decode_address(text)
    assert len(well_formed) == 21


# ---------------------------------------------------------------------------------------------
# base58 and BIP341

BASE58_PAIRS: list[list[str]] = _load("bitcoin-core/base58_encode_decode.json")


@pytest.mark.parametrize("pair", BASE58_PAIRS, ids=lambda p: p[1][:20] or "empty")
def test_base58_vector_encodes_to_its_string(pair: list[str]) -> None:
    assert base58_encode(bytes.fromhex(pair[0])) == pair[1]


@pytest.mark.parametrize("pair", BASE58_PAIRS, ids=lambda p: p[1][:20] or "empty")
def test_base58_vector_decodes_to_its_bytes(pair: list[str]) -> None:
    assert base58_decode(pair[1]) == bytes.fromhex(pair[0])


@pytest.mark.parametrize("text", ["0", "O", "I", "l", "3SEo3LWLoPntC\x00", " 3SEo3"])
def test_base58_rejects_characters_outside_the_alphabet(text: str) -> None:
    with pytest.raises(AddressError):
        base58_decode(text)


def test_base58check_rejects_a_flipped_checksum_character() -> None:
    good = base58check_encode(b"\x00" + bytes(range(20)))
    bad = good[:-1] + ("2" if good[-1] != "2" else "3")
    with pytest.raises(AddressError, match="checksum"):
        base58check_decode(bad)


BIP341_OUTPUTS = [
    e["expected"] for e in _load("bitcoin-core/bip341_wallet_vectors.json")["scriptPubKey"]
]


@pytest.mark.parametrize("expected", BIP341_OUTPUTS, ids=lambda e: e["bip350Address"])
def test_bip341_script_pubkey_gives_its_bip350_address(expected: dict[str, str]) -> None:
    spk = bytes.fromhex(expected["scriptPubKey"])
    assert spk[:2] == b"\x51\x20"
    assert encode_address(ScriptType.P2TR, spk[2:], MAIN) == expected["bip350Address"]
    assert decode_address(expected["bip350Address"]) == (ScriptType.P2TR, spk[2:], ("main",))


# ---------------------------------------------------------------------------------------------
# bitcoinjs bech32 fixtures (BIP173 / BIP350 string vectors)

BECH32_FIXTURES: dict[str, Any] = _load("bitcoinjs-bech32/fixtures.json")
SPECS = {"bech32": Bech32Spec.BECH32, "bech32m": Bech32Spec.BECH32M}
BECH32_VALID = [(name, e) for name in SPECS for e in BECH32_FIXTURES[name]["valid"]]
BECH32_INVALID_STRINGS = [
    (name, e) for name in SPECS for e in BECH32_FIXTURES[name]["invalid"] if "prefix" not in e
]
BECH32_INVALID_ENCODES = [
    (name, e) for name in SPECS for e in BECH32_FIXTURES[name]["invalid"] if "prefix" in e
]


def _fixture_string(entry: dict[str, Any]) -> str:
    if "stringHex" in entry:
        return bytes.fromhex(entry["stringHex"]).decode("latin-1")
    return str(entry["string"])


@pytest.mark.parametrize("case", BECH32_VALID, ids=lambda c: f"{c[0]}:{c[1]['string'][:24]}")
def test_bech32_valid_fixture_decodes_to_its_prefix_and_words(case: tuple[str, Any]) -> None:
    name, e = case
    hrp, words, spec = bech32_decode(e["string"], limit=e.get("limit", 90))
    assert (hrp, words, spec) == (e["prefix"].lower(), e["words"], SPECS[name])
    if "hex" in e:
        assert words_to_bytes(words).hex() == e["hex"]


@pytest.mark.parametrize("case", BECH32_VALID, ids=lambda c: f"{c[0]}:{c[1]['string'][:24]}")
def test_bech32_valid_fixture_encodes_back_to_its_lowercase_string(case: tuple[str, Any]) -> None:
    name, e = case
    encoded = bech32_encode(e["prefix"], e["words"], SPECS[name], limit=e.get("limit", 90))
    assert encoded == e["string"].lower()


@pytest.mark.parametrize(
    "case", BECH32_INVALID_STRINGS, ids=lambda c: f"{c[0]}:{c[1]['exception'][:30]}"
)
def test_bech32_invalid_fixture_string_is_rejected(case: tuple[str, Any]) -> None:
    # none of these is valid under the other checksum either, so decoding must raise outright
    _, e = case
    with pytest.raises(AddressError):
        bech32_decode(_fixture_string(e), limit=e.get("limit", 90))


@pytest.mark.parametrize(
    "case", BECH32_INVALID_ENCODES, ids=lambda c: f"{c[0]}:{c[1]['exception'][:30]}"
)
def test_bech32_invalid_fixture_encode_is_refused(case: tuple[str, Any]) -> None:
    name, e = case
    with pytest.raises(AddressError):
        bech32_encode(e["prefix"], e["words"], SPECS[name], limit=e.get("limit", 90))


@pytest.mark.parametrize(
    "entry", BECH32_FIXTURES["fromWords"]["invalid"], ids=lambda e: e["exception"]
)
def test_bech32_words_with_bad_padding_do_not_convert_to_bytes(entry: dict[str, Any]) -> None:
    with pytest.raises(AddressError, match="padding"):
        words_to_bytes(entry["words"])


# ---------------------------------------------------------------------------------------------
# bitcoinjs-lib address and payment fixtures

JS_NETWORKS = {"bitcoin": MAIN, "testnet": TEST, "regtest": REGTEST}
OPCODES = {
    "OP_0": 0x00,
    "OP_DUP": 0x76,
    "OP_HASH160": 0xA9,
    "OP_EQUAL": 0x87,
    "OP_EQUALVERIFY": 0x88,
    "OP_CHECKSIG": 0xAC,
    **{f"OP_{v}": 0x50 + v for v in range(1, 17)},
}


def _asm_to_script(asm: str) -> bytes:
    """bitcoinjs ASM (opcodes and hex pushes under 76 bytes) to script bytes."""
    out = bytearray()
    for token in asm.split():
        if token in OPCODES:
            out.append(OPCODES[token])
        else:
            push = bytes.fromhex(token)
            assert len(push) < 76
            out += bytes([len(push)]) + push
    return bytes(out)


ADDRESS_JSON: dict[str, Any] = _load("bitcoinjs-lib/address.json")
JS_STANDARD = [e for e in ADDRESS_JSON["standard"] if e["network"] in JS_NETWORKS]
JS_FOREIGN = [e for e in ADDRESS_JSON["standard"] if e["network"] not in JS_NETWORKS]


def _js_address(entry: dict[str, Any]) -> str:
    return str(entry.get("base58check") or entry["bech32"])


@pytest.mark.parametrize("entry", JS_STANDARD, ids=_js_address)
def test_bitcoinjs_standard_address_decodes_to_its_script(entry: dict[str, Any]) -> None:
    kind, payload, networks = decode_address(_js_address(entry))
    assert script_pubkey(kind, payload) == _asm_to_script(entry["script"])
    assert JS_NETWORKS[entry["network"]].name in networks


@pytest.mark.parametrize("entry", JS_STANDARD, ids=_js_address)
def test_bitcoinjs_standard_address_encodes_back(entry: dict[str, Any]) -> None:
    address = _js_address(entry)
    kind, payload, _ = decode_address(address)
    expected = address if "base58check" in entry else address.lower()
    assert encode_address(kind, payload, JS_NETWORKS[entry["network"]]) == expected


@pytest.mark.parametrize("entry", JS_FOREIGN, ids=_js_address)
def test_litecoin_address_is_not_a_bitcoin_address(entry: dict[str, Any]) -> None:
    with pytest.raises(AddressError, match="version byte"):
        decode_address(_js_address(entry))


@pytest.mark.parametrize(
    "address",
    [e["address"] for e in ADDRESS_JSON["invalid"]["bech32"]]
    + [e["address"] for e in ADDRESS_JSON["invalid"]["fromBase58Check"]],
)
def test_bitcoinjs_invalid_address_is_rejected(address: str) -> None:
    with pytest.raises(AddressError):
        decode_address(address)


# toOutputScript entries that are invalid on every network; two are left out on purpose:
# "BC1SW50QGDZ25J" is only invalid for a made-up network with prefix "foo" (it is a valid mainnet
# v16 address, checked above), and "bc1pllll...shsdfvw2y" is a well-formed taproot address whose
# program is not a valid x coordinate, which bitcoinjs refuses but Bitcoin Core (and we) accept.
JS_TO_SCRIPT_INVALID = [
    e["address"]
    for e in ADDRESS_JSON["invalid"]["toOutputScript"]
    if "exception" in e and e.get("network", {}).get("bech32") in (None, "tb")
]


def test_bitcoinjs_to_output_script_selection_leaves_out_exactly_two() -> None:
    assert len(ADDRESS_JSON["invalid"]["toOutputScript"]) - len(JS_TO_SCRIPT_INVALID) == 2


@pytest.mark.parametrize("address", JS_TO_SCRIPT_INVALID)
def test_bitcoinjs_address_without_a_script_is_rejected(address: str) -> None:
    with pytest.raises(AddressError):
        decode_address(address)


def test_taproot_address_with_an_off_curve_program_is_still_an_address() -> None:
    (entry,) = [e for e in ADDRESS_JSON["invalid"]["toOutputScript"] if "paymentException" in e]
    kind, payload, _ = decode_address(entry["address"])
    assert kind == ScriptType.P2TR and len(payload) == 32


def _payment_pairs() -> list[tuple[str, str, str, str]]:
    pairs = set()
    for name in ("p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"):
        for e in _load(f"bitcoinjs-lib/{name}.json")["valid"]:
            args, expected = e.get("arguments", {}), e.get("expected", {})
            address = expected.get("address") or args.get("address")
            output = expected.get("output") or args.get("output")
            network = expected.get("network") or args.get("network") or "bitcoin"
            if isinstance(address, str) and isinstance(output, str):
                pairs.add((name, address, output, network))
    return sorted(pairs)


PAYMENT_PAIRS = _payment_pairs()


def test_bitcoinjs_payment_fixtures_give_pairs_for_every_template() -> None:
    assert {p[0] for p in PAYMENT_PAIRS} == {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"}


@pytest.mark.parametrize("pair", PAYMENT_PAIRS, ids=lambda p: f"{p[0]}:{p[1]}")
def test_bitcoinjs_payment_address_pays_to_its_output_script(
    pair: tuple[str, str, str, str],
) -> None:
    name, address, output, network = pair
    kind, payload, networks = decode_address(address)
    assert kind == ScriptType.from_name(name)
    assert script_pubkey(kind, payload) == _asm_to_script(output)
    assert JS_NETWORKS[network].name in networks
    assert encode_address(kind, payload, JS_NETWORKS[network]) == address


# ---------------------------------------------------------------------------------------------
# conventions and rules of the address key


def _etl_outputs() -> list[dict[str, Any]]:
    outputs = []
    for path in sorted((DATA / "bitcoin-etl-fixtures").glob("*/expected_transactions.json")):
        for line in path.read_text().splitlines():
            if line.strip():
                outputs.extend(json.loads(line)["outputs"])
    return outputs


ETL_OUTPUTS = _etl_outputs()


def test_bitcoin_etl_fixtures_hold_p2pk_and_p2pkh_outputs() -> None:
    types = {o["type"] for o in ETL_OUTPUTS}
    assert types == {"pubkey", "pubkeyhash"}


@pytest.mark.parametrize("output", ETL_OUTPUTS, ids=lambda o: o["script_hex"][:16])
def test_p2pk_and_p2pkh_outputs_get_the_explorer_address(output: dict[str, Any]) -> None:
    script = bytes.fromhex(output["script_hex"])
    if output["type"] == "pubkey":  # <push pubkey> OP_CHECKSIG, keyed as P2PKH of hash160(pubkey)
        assert script[0] == len(script) - 2 and script[-1] == 0xAC
        digest = hash160(script[1:-1])
    else:
        digest = script[3:23]
    assert [encode_address(ScriptType.P2PKH, digest, MAIN)] == output["addresses"]


def test_pay_to_anchor_has_the_bip433_mainnet_address() -> None:
    assert encode_address(ScriptType.P2A, P2A_PROGRAM, MAIN) == "bc1pfeessrawgf"
    assert decode_address("bc1pfeessrawgf") == (ScriptType.P2A, P2A_PROGRAM, ("main",))
    assert script_pubkey(ScriptType.P2A, P2A_PROGRAM).hex() == "51024e73"


def test_testnet_bech32_prefix_is_valid_on_test_testnet4_and_signet() -> None:
    address = encode_address(ScriptType.P2WPKH, bytes(20), TEST)
    assert decode_address(address)[2] == ("test", "testnet4", "signet")


def test_testnet_base58_version_is_valid_on_every_test_network_and_regtest() -> None:
    address = encode_address(ScriptType.P2PKH, bytes(20), REGTEST)
    assert decode_address(address)[2] == ("test", "testnet4", "signet", "regtest")


def test_regtest_bech32_prefix_is_valid_on_regtest_only() -> None:
    address = encode_address(ScriptType.P2TR, bytes(32), REGTEST)
    assert address.startswith("bcrt1p")
    assert decode_address(address)[2] == ("regtest",)


@pytest.mark.parametrize(
    "kind", [ScriptType.NONSTANDARD, ScriptType.P2PK, ScriptType.MULTISIG, ScriptType.OP_RETURN]
)
def test_kind_without_an_address_cannot_be_encoded(kind: ScriptType) -> None:
    with pytest.raises(AddressError):
        encode_address(kind, bytes(20), MAIN)


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (ScriptType.P2PKH, bytes(21)),
        (ScriptType.P2SH, bytes(19)),
        (ScriptType.P2WPKH, bytes(32)),
        (ScriptType.P2WSH, bytes(20)),
        (ScriptType.P2TR, bytes(20)),
        (ScriptType.P2A, b"\x4e\x74"),
        (ScriptType.WITNESS_UNKNOWN, b"\x00" + bytes(20)),
        (ScriptType.WITNESS_UNKNOWN, b"\x11" + bytes(20)),
        (ScriptType.WITNESS_UNKNOWN, b"\x02" + bytes(1)),
        (ScriptType.WITNESS_UNKNOWN, b"\x02" + bytes(41)),
        (ScriptType.WITNESS_UNKNOWN, b"\x01" + bytes(32)),
        (ScriptType.WITNESS_UNKNOWN, b"\x01" + P2A_PROGRAM),
        (ScriptType.WITNESS_UNKNOWN, b""),
    ],
    ids=lambda v: v.hex()[:12] if isinstance(v, bytes) else str(v),
)
def test_key_with_a_payload_that_does_not_fit_its_kind_is_refused(
    kind: ScriptType, payload: bytes
) -> None:
    with pytest.raises(AddressError):
        encode_address(kind, payload, MAIN)
    with pytest.raises(AddressError):
        script_pubkey(kind, payload)


def test_address_error_is_a_chainsleuth_error() -> None:
    assert issubclass(AddressError, ChainsleuthError)


def test_segwit_address_for_another_prefix_is_refused_by_decode_segwit() -> None:
    with pytest.raises(AddressError, match="prefix"):
        decode_segwit("bc", encode_segwit("tb", 0, bytes(20)))


def test_bech32_string_longer_than_90_characters_is_rejected() -> None:
    at_limit = bech32_encode("bc", [16] + [0] * 80, Bech32Spec.BECH32M)
    past_limit = bech32_encode("bc", [16] + [0] * 81, Bech32Spec.BECH32M, limit=91)
    assert (len(at_limit), len(past_limit)) == (90, 91)
    assert bech32_decode(at_limit)[2] == Bech32Spec.BECH32M
    with pytest.raises(AddressError, match="limit"):
        bech32_decode(past_limit)


def test_address_text_that_is_neither_format_names_both() -> None:
    with pytest.raises(AddressError, match="bech32.*base58check"):
        decode_address("tc1qnotanaddress")


# ---------------------------------------------------------------------------------------------
# round trips on random keys


@given(key=address_keys(), network=networks)
def test_random_key_round_trips_through_its_address(
    key: tuple[ScriptType, bytes], network: Network
) -> None:
    kind, payload = key
    address = encode_address(kind, payload, network)
    got_kind, got_payload, networks = decode_address(address)
    assert (got_kind, got_payload) == (kind, payload)
    assert network.name in networks
    assert len(address) <= 90
