"""Build small regtest chains from hand-written transactions, as Bitcoin Core blk files.

Tests of later stages (clustering, tracing) need exact shapes — a Whirlpool round, a payment
with change — that real data does not label. Blocks are mined with `tests.conftest.mine_block`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block, Tx, TxIn, TxOut
from tests.conftest import blk_records, mine_block, regtest_genesis


def p2wpkh(name: str) -> bytes:
    """A P2WPKH script for a named test key."""
    return b"\x00\x14" + hashlib.new("ripemd160", name.encode()).digest()


def p2pkh(name: str) -> bytes:
    """A P2PKH script for a named test key."""
    return b"\x76\xa9\x14" + hashlib.new("ripemd160", name.encode()).digest() + b"\x88\xac"


def p2sh(name: str) -> bytes:
    """A P2SH script for a named test key."""
    return b"\xa9\x14" + hashlib.new("ripemd160", name.encode()).digest() + b"\x87"


def p2tr(name: str) -> bytes:
    """A P2TR script for a named test key."""
    return b"\x51\x20" + hashlib.sha256(name.encode()).digest()


@dataclass
class ChainBuilder:
    """Append blocks of transactions; each block's coinbase pays `miner` (or a fresh key)."""

    blocks: list[Block] = field(default_factory=lambda: [regtest_genesis()])

    def add_block(self, txs: list[Tx] | None = None, miner: bytes | None = None) -> Block:
        height = len(self.blocks)
        block = mine_block(
            self.blocks[-1],
            height,
            txs or [],
            b"cb",
            miner_script=miner or p2wpkh(f"miner{height}"),
        )
        self.blocks.append(block)
        return block

    def write(self, blocks_dir: Path) -> Path:
        blocks_dir.mkdir(parents=True, exist_ok=True)
        raw = [b.serialize() for b in self.blocks]
        (blocks_dir / "blk00000.dat").write_bytes(blk_records(raw, REGTEST.magic))
        return blocks_dir


def spend(prevs: list[tuple[Tx, int]], outputs: list[tuple[int, bytes]]) -> Tx:
    """A tx spending (tx, vout) pairs, with P2WPKH-shaped dummy witnesses."""
    inputs = tuple(
        TxIn(tx.txid(), vout, b"", 0xFFFFFFFD, (bytes(71), bytes(33))) for tx, vout in prevs
    )
    return Tx(2, inputs, tuple(TxOut(v, s) for v, s in outputs))
