"""Output script types: one name per kind, and the frozen integer codes stored on disk.

Every stage classifies and filters outputs by these codes; the parquet `script_type` column
holds the lowercase names, the memory-mapped arrays hold the codes. The codes are append-only:
never renumber, only add at the end, because stores written by older versions keep them.
"""

from __future__ import annotations

from enum import IntEnum


class ScriptType(IntEnum):
    """Kinds of output scripts (`str(ScriptType.P2WPKH) == "p2wpkh"`)."""

    NONSTANDARD = 0
    P2PK = 1
    P2PKH = 2
    P2SH = 3
    P2WPKH = 4
    P2WSH = 5
    P2TR = 6
    P2A = 7
    MULTISIG = 8
    OP_RETURN = 9
    WITNESS_UNKNOWN = 10

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def from_name(cls, name: str) -> ScriptType:
        """`ScriptType.from_name("p2tr") is ScriptType.P2TR`."""
        return cls[name.upper()]


#: names indexed by code, for vectorised decoding of stored codes (`SCRIPT_TYPE_NAMES[codes]`)
SCRIPT_TYPE_NAMES: tuple[str, ...] = tuple(str(t) for t in ScriptType)

#: Bitcoin Core's RPC `scriptPubKey.type` names, translated once at the boundary.
CORE_RPC_NAMES: dict[str, ScriptType] = {
    "nonstandard": ScriptType.NONSTANDARD,
    "pubkey": ScriptType.P2PK,
    "pubkeyhash": ScriptType.P2PKH,
    "scripthash": ScriptType.P2SH,
    "witness_v0_keyhash": ScriptType.P2WPKH,
    "witness_v0_scripthash": ScriptType.P2WSH,
    "witness_v1_taproot": ScriptType.P2TR,
    "anchor": ScriptType.P2A,
    "multisig": ScriptType.MULTISIG,
    "nulldata": ScriptType.OP_RETURN,
    "witness_unknown": ScriptType.WITNESS_UNKNOWN,
}
