"""Build small regtest chains from hand-written transactions, as Bitcoin Core blk files.

Tests of later stages (clustering, tracing) need exact shapes — a Whirlpool round, a payment
with change — that real data does not label. This writes them with the project's serializer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block, BlockHeader, Tx, TxIn, TxOut, merkle_root, mine
from chainsleuth.simulate.chain import regtest_genesis


def p2wpkh(name: str) -> bytes:
    """A P2WPKH script for a named test key."""
    return b"\x00\x14" + hashlib.new("ripemd160", name.encode()).digest()


def p2pkh(name: str) -> bytes:
    return b"\x76\xa9\x14" + hashlib.new("ripemd160", name.encode()).digest() + b"\x88\xac"


@dataclass
class ChainBuilder:
    """Append blocks of transactions; every block gets a coinbase paying `miner`."""

    blocks: list[Block] = field(default_factory=lambda: [regtest_genesis()])
    time: int = 1_546_300_800  # 2019-01-01

    def coinbase(self, height: int, script: bytes, value: int = 50 * 10**8) -> Tx:
        height_push = bytes([1, height]) if height < 128 else b"\x02" + height.to_bytes(2, "little")
        return Tx(2, (TxIn(bytes(32), 0xFFFFFFFF, height_push + b"\x00"),), (TxOut(value, script),))

    def add_block(self, txs: list[Tx] | None = None, miner: bytes | None = None) -> Block:
        height = len(self.blocks)
        cb = self.coinbase(height, miner or p2wpkh(f"miner{height}"))
        body = (cb, *(txs or []))
        self.time += 600
        header = BlockHeader(
            0x20000000,
            self.blocks[-1].header.hash(),
            merkle_root([t.txid() for t in body]),
            self.time,
            0x207FFFFF,
            0,
        )
        block = Block(mine(header), body)
        self.blocks.append(block)
        return block

    def write(self, blocks_dir: Path, blocks: list[Block] | None = None) -> Path:
        blocks_dir.mkdir(parents=True, exist_ok=True)
        with open(blocks_dir / "blk00000.dat", "wb") as f:
            for block in blocks if blocks is not None else self.blocks:
                raw = block.serialize()
                f.write(REGTEST.magic + len(raw).to_bytes(4, "little") + raw)
        return blocks_dir


def spend(prevs: list[tuple[Tx, int]], outputs: list[tuple[int, bytes]]) -> Tx:
    """A tx spending (tx, vout) pairs, with P2WPKH-shaped dummy witnesses."""
    inputs = tuple(
        TxIn(tx.txid(), vout, b"", 0xFFFFFFFD, (bytes(71), bytes(33))) for tx, vout in prevs
    )
    return Tx(2, inputs, tuple(TxOut(v, s) for v, s in outputs))
