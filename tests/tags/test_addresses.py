"""The numba batch decoder accepts exactly what `decode_address` accepts, with the same key.

It may decline a valid address (rare forms go to `decode_address`), but must never accept an
invalid one or disagree on kind, payload or networks."""

from __future__ import annotations

import json
import random
from pathlib import Path

from chainsleuth.core.address import AddressError, decode_address
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.address_kernels import decode_addresses, network_mask
from tests.conftest import SHARED_DATA
from tests.tags.conftest import TAGPACKS

VECTORS = SHARED_DATA / "address-vectors"
FAST_KINDS = {
    ScriptType.P2PKH,
    ScriptType.P2SH,
    ScriptType.P2WPKH,
    ScriptType.P2WSH,
    ScriptType.P2TR,
}


def _check(strings: list[str]) -> tuple[int, int]:
    """Compare both decoders on every string; (accepted by the batch, valid per decode_address)."""
    kinds, payloads, nets = decode_addresses(strings)
    accepted = valid = 0
    for s, kind, payload, net in zip(strings, kinds, payloads, nets, strict=True):
        try:
            want_kind, want_payload, networks = decode_address(s)
        except AddressError:
            assert kind == -1, f"batch accepted invalid {s!r}"
            continue
        valid += 1
        if kind == -1:
            # declined: only rare forms (witness v2-16, pay-to-anchor) or upper-case bech32
            segwit = want_kind in (ScriptType.P2WPKH, ScriptType.P2WSH, ScriptType.P2TR)
            assert want_kind not in FAST_KINDS or (segwit and s != s.lower()), s
            continue
        accepted += 1
        assert (kind, payload, net) == (int(want_kind), want_payload, network_mask(networks)), s
    return accepted, valid


def _addresses_of(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip().lstrip("- ")
        if line.startswith("address:"):
            out.append(line.split(":", 1)[1].strip().strip("'\""))
    return out


def test_bitcoin_core_key_io_vectors_agree() -> None:
    valid = json.loads((VECTORS / "bitcoin-core" / "key_io_valid.json").read_text())
    invalid = json.loads((VECTORS / "bitcoin-core" / "key_io_invalid.json").read_text())
    strings = [e[0] for e in valid] + [e[0] for e in invalid]
    strings += [e[0].swapcase() for e in valid]
    accepted, n_valid = _check(strings)
    assert accepted >= 30 and n_valid >= 54


def test_bech32_fixture_strings_agree() -> None:
    fixtures = json.loads((VECTORS / "bitcoinjs-bech32" / "fixtures.json").read_text())
    strings = [
        case["string"]
        for spec in ("bech32", "bech32m")
        for group in ("valid", "invalid")
        for case in fixtures[spec][group]
        if "string" in case
    ]
    _check(strings)


def test_public_tagpack_addresses_agree() -> None:
    strings: list[str] = []
    for name in ("hydra.yaml", "lockbit_tattoos.yaml", "plustoken.yaml", "ofac.yaml",
                 "sextortion_excello.yaml", "service-wallets-checksig.yaml", "samourai.yaml"):  # fmt: skip
        strings += _addresses_of(TAGPACKS / "packs" / name)
    accepted, valid = _check(strings[:40_000])
    assert accepted == valid  # every real address of these packs takes the fast path


def test_mutated_addresses_agree() -> None:
    rng = random.Random(7)
    base = _addresses_of(TAGPACKS / "packs" / "exchange-wallets-binance.yaml")
    base += _addresses_of(TAGPACKS / "packs" / "service-wallets-checksig.yaml")[:50]
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyzqpzry9x8gf2tvdw0s3jn54khce6mua7l0OIl"
    mutated = []
    for s in base * 20:
        i = rng.randrange(len(s))
        op = rng.randrange(3)
        if op == 0:
            mutated.append(s[:i] + rng.choice(alphabet) + s[i + 1 :])
        elif op == 1:
            mutated.append(s[:i] + s[i + 1 :])
        else:
            mutated.append(s[:i] + rng.choice(alphabet) + s[i:])
    _check(mutated)
