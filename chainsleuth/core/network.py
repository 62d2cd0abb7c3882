"""Bitcoin networks: block-file magic, address prefixes and genesis hashes.

Addresses are encoded for the network of the chain being ingested; a store holds one network.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    """Constants that differ between Bitcoin networks."""

    name: str
    magic: bytes  # the 4 bytes that open every record in blk*.dat
    p2pkh_version: int  # base58check version byte of P2PKH addresses
    p2sh_version: int  # base58check version byte of P2SH addresses
    hrp: str  # bech32 human-readable part of segwit addresses
    genesis_hash: str  # display (big-endian) hex
    code: int  # small integer passed to numba kernels


MAIN = Network(
    "main",
    bytes.fromhex("f9beb4d9"),
    0x00,
    0x05,
    "bc",
    "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    0,
)
TEST = Network(
    "test",
    bytes.fromhex("0b110907"),
    0x6F,
    0xC4,
    "tb",
    "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    1,
)
TESTNET4 = Network(
    "testnet4",
    bytes.fromhex("1c163f28"),
    0x6F,
    0xC4,
    "tb",
    "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    2,
)
SIGNET = Network(
    "signet",
    bytes.fromhex("0a03cf40"),
    0x6F,
    0xC4,
    "tb",
    "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    3,
)
REGTEST = Network(
    "regtest",
    bytes.fromhex("fabfb5da"),
    0x6F,
    0xC4,
    "bcrt",
    "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    4,
)

NETWORKS: dict[str, Network] = {n.name: n for n in (MAIN, TEST, TESTNET4, SIGNET, REGTEST)}
BY_MAGIC: dict[bytes, Network] = {n.magic: n for n in NETWORKS.values()}
BY_CODE: dict[int, Network] = {n.code: n for n in NETWORKS.values()}


def network_by_name(name: str) -> Network:
    """`network_by_name("main").hrp == "bc"`; also accepts Core's chain names ("testnet")."""
    aliases = {"mainnet": "main", "bitcoin": "main", "testnet": "test", "testnet3": "test"}
    key = aliases.get(name, name)
    if key not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; expected one of {', '.join(NETWORKS)}")
    return NETWORKS[key]
