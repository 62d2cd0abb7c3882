"""The numba batch decoder accepts exactly what `decode_address` accepts, with the same key.

It may decline a valid address (rare forms go to `decode_address`), but must never accept an
invalid one or disagree on kind, payload or networks."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.conftest import SHARED_DATA
from tests.parse.test_address_codecs import decoders_agree
from tests.tags.conftest import TAGPACKS

VECTORS = SHARED_DATA / "address-vectors"


def _check(strings: list[str]) -> tuple[int, int]:
    """Compare both decoders on every string; (accepted by the batch, valid per decode_address)."""
    return decoders_agree(strings)


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
