"""Address strings for millions of simulated keys at once, through the one batch codec.

A large world has millions of addresses; `chainsleuth.core.address.encode_address` does one in
tens of microseconds, which would dominate generation time. The simulator's address book holds
keys as (n, 32) payloads with 20-byte hashes left-aligned; this module only lays them out the way
the batch codec (`chainsleuth.parse.address_kernels.encode_address_keys`, numba) takes them. The
truth writer (`chainsleuth.simulate.truth`) is the caller; `tests/simulate/test_encode.py` checks
every kind against `encode_address`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from chainsleuth.core.address import KEY_PAYLOAD_WIDTH
from chainsleuth.core.network import Network
from chainsleuth.core.script_types import ScriptType
from chainsleuth.parse.address_kernels import encode_address_keys

__all__ = ["encode_keys"]

#: payload bytes of each kind the simulator gives addresses to
_WIDTH = {
    ScriptType.P2PKH: 20,
    ScriptType.P2SH: 20,
    ScriptType.P2WPKH: 20,
    ScriptType.P2WSH: 32,
    ScriptType.P2TR: 32,
}
_WIDTH_OF_CODE = np.zeros(256, np.uint8)
for _kind, _width in _WIDTH.items():
    _WIDTH_OF_CODE[int(_kind)] = _width


def encode_keys(stypes: np.ndarray, payloads: np.ndarray, network: Network) -> pa.Array:
    """Address strings, in input order, of keys `(stypes[i], payloads[i, :20 or 32])`.

    `stypes` holds ScriptType codes (P2PKH, P2SH, P2WPKH, P2WSH, P2TR); `payloads` is (n, 32)
    uint8 with 20-byte hashes left-aligned. Equal to `encode_address` row by row.
    """
    stypes = np.ascontiguousarray(stypes, np.uint8)
    lens = _WIDTH_OF_CODE[stypes]
    unknown = np.flatnonzero(lens == 0)
    if unknown.shape[0]:
        bad = int(stypes[unknown[0]])
        raise ValueError(f"no address encoding for script type {ScriptType(bad)}")
    n = stypes.shape[0]
    wide = np.zeros((n, KEY_PAYLOAD_WIDTH), np.uint8)
    wide[:, :32] = payloads
    # the codec reads the first lens[i] bytes of a row; the rest of a 20-byte key's row is unused
    return encode_address_keys(stypes, wide, lens, network.code)
