"""Bulk address encoding gives exactly the strings `encode_address` gives, on every network."""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.core.address import encode_address
from chainsleuth.core.network import MAIN, REGTEST, TEST
from chainsleuth.core.script_types import ScriptType
from chainsleuth.simulate.encode import encode_keys

KINDS = [ScriptType.P2PKH, ScriptType.P2SH, ScriptType.P2WPKH, ScriptType.P2WSH, ScriptType.P2TR]


@pytest.mark.parametrize("network", [MAIN, TEST, REGTEST], ids=lambda n: n.name)
def test_bulk_encoding_equals_encode_address_for_every_kind(network: object) -> None:
    rng = np.random.default_rng(3)
    n = 500
    stypes = rng.choice([int(k) for k in KINDS], n).astype(np.uint8)
    payloads = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    payloads[:10] = 0  # leading zero bytes become leading '1's in base58
    payloads[10:20, :3] = 0
    got = encode_keys(stypes, payloads, network).to_pylist()  # type: ignore[arg-type]
    for i in range(n):
        kind = ScriptType(int(stypes[i]))
        width = 20 if kind in (ScriptType.P2PKH, ScriptType.P2SH, ScriptType.P2WPKH) else 32
        assert got[i] == encode_address(kind, bytes(payloads[i, :width]), network)  # type: ignore[arg-type]


def test_bulk_encoding_refuses_kinds_without_an_address() -> None:
    with pytest.raises(ValueError, match="op_return"):
        encode_keys(
            np.array([int(ScriptType.OP_RETURN)], np.uint8), np.zeros((1, 32), np.uint8), MAIN
        )


def test_bulk_encoding_of_nothing_is_empty() -> None:
    assert len(encode_keys(np.zeros(0, np.uint8), np.zeros((0, 32), np.uint8), MAIN)) == 0
