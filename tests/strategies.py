"""Hypothesis strategies shared by the tests: address keys and address strings.

The scalar address reference (`chainsleuth.core.address`) and the batch codec
(`chainsleuth.parse.address_kernels`) are checked against each other on these, so both sides of
every comparison draw from one definition of "a valid key".
"""

from __future__ import annotations

from hypothesis import strategies as st

from chainsleuth.core.address import (
    ADDRESSABLE_KINDS,
    B58_ALPHABET,
    BECH32_CHARSET,
    P2A_PROGRAM,
    encode_address,
)
from chainsleuth.core.network import BY_CODE, Network
from chainsleuth.core.script_types import ScriptType

#: every network, in `Network.code` order
NETWORK_LIST: list[Network] = [BY_CODE[c] for c in sorted(BY_CODE)]
networks = st.sampled_from(NETWORK_LIST)


@st.composite
def address_keys(draw: st.DrawFn) -> tuple[ScriptType, bytes]:
    """Random valid keys `(kind, payload)` of every addressable kind."""
    kind = draw(st.sampled_from(sorted(ADDRESSABLE_KINDS)))
    if kind in (ScriptType.P2PKH, ScriptType.P2SH, ScriptType.P2WPKH):
        return kind, draw(st.binary(min_size=20, max_size=20))
    if kind in (ScriptType.P2WSH, ScriptType.P2TR):
        return kind, draw(st.binary(min_size=32, max_size=32))
    if kind == ScriptType.P2A:
        return kind, P2A_PROGRAM
    version = draw(st.integers(1, 16))
    program = draw(
        st.binary(min_size=2, max_size=40).filter(
            lambda p: version != 1 or (len(p) != 32 and p != P2A_PROGRAM)
        )
    )
    return kind, bytes([version]) + program


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Address strings: valid ones of random keys on random networks, and near misses of them
    (one character replaced, dropped or added, or the case flipped), which may or may not be
    valid; the scalar reference decides."""
    kind, payload = draw(address_keys())
    text = encode_address(ScriptType(kind), payload, draw(networks))
    mutation = draw(st.sampled_from(["none", "none", "replace", "drop", "insert", "swapcase"]))
    if mutation == "none":
        return text
    if mutation == "swapcase":
        return text.swapcase()
    at = draw(st.integers(0, len(text) - 1))
    if mutation == "drop":
        return text[:at] + text[at + 1 :]
    char = draw(st.sampled_from(sorted(set(B58_ALPHABET + BECH32_CHARSET + "0OIl"))))
    if mutation == "replace":
        return text[:at] + char + text[at + 1 :]
    return text[:at] + char + text[at:]
