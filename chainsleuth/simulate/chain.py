"""Blocks of the simulated chain: regtest genesis, coinbases, mining, stale forks, storage order.

A chain that ingests cleanly is not enough to test an ingest: Bitcoin Core stores blocks in the
order they arrived, so a block can sit in a file before its parent, and blocks that lost a race
(stale blocks) stay in the files forever. This module builds the main chain from the world's
transactions (coinbase with the BIP34 height and the BIP141 witness commitment, merkle root,
proof of work at regtest difficulty), adds stale forks whose blocks re-confirm some of the same
transactions, and writes everything through `BlockFileWriter` in a realistic arrival order.
Used by `chainsleuth.simulate.run`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from chainsleuth.parse.serialize import (
    REGTEST_BITS,
    Block,
    BlockHeader,
    Tx,
    TxIn,
    TxOut,
    merkle_root,
    mine,
    witness_commitment_script,
)
from chainsleuth.simulate.blockfiles import BlockFileWriter
from chainsleuth.simulate.economy.model import subsidy

__all__ = ["BlockRecord", "ChainBuilder", "bip34_push", "mine_block", "regtest_genesis"]

BLOCK_VERSION = 0x20000000  # BIP9 top bits, no deployment signalled
GENESIS_TIME = 1296688602  # regtest genesis, Core's chainparams

_GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e"
    "206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
_GENESIS_SPK = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504"
    "e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac"
)


def regtest_genesis() -> Block:
    """Bitcoin Core's regtest genesis block (hash 0f9188f1...2206), built from chainparams."""
    cb = Tx(
        1, (TxIn(bytes(32), 0xFFFFFFFF, _GENESIS_SCRIPT_SIG),), (TxOut(50 * 10**8, _GENESIS_SPK),)
    )
    header = BlockHeader(1, bytes(32), merkle_root([cb.txid()]), GENESIS_TIME, REGTEST_BITS, 2)
    return Block(header, (cb,))


def bip34_push(height: int) -> bytes:
    """`CScript() << height` as Core's miner writes it: OP_0/OP_1..OP_16, else a minimal number."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes((0x50 + height,))
    n = height.to_bytes((height.bit_length() + 7) // 8, "little")
    if n[-1] & 0x80:
        n += b"\x00"
    return bytes((len(n),)) + n


def mine_block(
    prev: Block, height: int, txs: Sequence[Tx], payee: bytes, coinbase_tag: bytes, value: int
) -> Block:
    """A hand-built block on `prev` at `height`: a coinbase paying `value` to `payee`, then `txs`.

    For the small chains that tests and benches write by hand (the simulator's own blocks come
    from `ChainBuilder`). The coinbase's script is the BIP34 height then `coinbase_tag`; when a
    tx carries a witness it also commits to the wtxids (BIP141). The time is the regtest
    genesis's plus 600 s per height, so a chain built from genesis is the same bytes every run;
    the header is mined at regtest difficulty (about two hashes)."""
    segwit = any(t.has_witness for t in txs)
    outputs = [TxOut(value, payee)]
    if segwit:
        outputs.append(TxOut(0, witness_commitment_script([t.wtxid() for t in txs])))
    witness = (bytes(32),) if segwit else ()
    script_sig = bip34_push(height) + coinbase_tag
    coinbase = Tx(
        2, (TxIn(bytes(32), 0xFFFFFFFF, script_sig, 0xFFFFFFFF, witness),), tuple(outputs)
    )
    all_txs = (coinbase, *txs)
    time = GENESIS_TIME + 600 * height
    header = BlockHeader(BLOCK_VERSION, prev.header.hash(), merkle_root([t.txid() for t in all_txs]),
                         time, REGTEST_BITS, 0)  # fmt: skip
    return Block(mine(header), all_txs)


def _push(data: bytes) -> bytes:
    return bytes((len(data),)) + data


@dataclass
class BlockRecord:
    """Where one stored block is and what it holds (truth/blocks.csv)."""

    hash: str
    height: int
    prev_hash: str
    time: int
    n_txs: int
    main: bool
    file: int = -1
    offset: int = -1
    order: int = -1  # position in storage order


class ChainBuilder:
    """Builds main-chain blocks one height at a time, plus the planned stale forks, and stores them.

    `stale` maps a fork's first height to (length, stored_before_the_main_blocks);
    `swaps` are heights whose block is stored only after its child.
    """

    def __init__(
        self,
        writer: BlockFileWriter,
        seed: int,
        stale: dict[int, tuple[int, bool]],
        swaps: Sequence[int],
    ) -> None:
        self.writer = writer
        self.rng = random.Random(seed * 31 + 5)
        self.stale = dict(stale)
        self.swaps = set(swaps)
        self.records: list[BlockRecord] = []
        self.main_hashes: list[bytes] = []
        self.main_times: list[int] = []
        self.kept: dict[int, list[tuple[Tx, int, int]]] = {}  # txs of heights a fork may reuse
        self._buffer: list[tuple[float, int, bytes]] = []  # (storage key, record index, bytes)
        self._stored = 0
        self.n_main_txs = 0
        genesis = regtest_genesis()
        self._store(0.0, genesis, 0, True)
        self.main_hashes.append(genesis.header.hash())
        self.main_times.append(genesis.header.time)
        self.n_main_txs += 1

    # -----------------------------------------------------------------------------------------

    def coinbase(
        self, height: int, value: int, payout_spk: bytes, wtxids: list[bytes], tag: bytes
    ) -> Tx:
        """Coinbase paying `value` to `payout_spk`, committing to the block's other wtxids."""
        extranonce = self.rng.getrandbits(32).to_bytes(4, "little")
        script_sig = bip34_push(height) + _push(extranonce) + _push(tag)
        return Tx(
            2,
            (TxIn(bytes(32), 0xFFFFFFFF, script_sig, 0xFFFFFFFF, (bytes(32),)),),
            (TxOut(value, payout_spk), TxOut(0, witness_commitment_script(wtxids))),
            0,
        )

    def _block(self, prev: bytes, time: int, cb: Tx, txs: list[Tx]) -> Block:
        all_txs = (cb, *txs)
        header = BlockHeader(BLOCK_VERSION, prev, merkle_root([t.txid() for t in all_txs]), time,
                             REGTEST_BITS, 0)  # fmt: skip
        return Block(mine(header), all_txs)

    def add(
        self,
        height: int,
        time: int,
        txs: list[tuple[Tx, int, int]],
        fees: int,
        payout_spk: bytes,
        tag: bytes,
        stale_payouts: Sequence[tuple[bytes, bytes]] = (),
    ) -> Tx:
        """Build, mine and queue for storage the main block at `height`; returns its coinbase.

        `stale_payouts` are (script, tag) of other pools, for stale blocks built now.
        """
        plain = [t for t, _, _ in txs]
        cb = self.coinbase(
            height, subsidy(height) + fees, payout_spk, [t.wtxid() for t in plain], tag
        )
        block = self._block(self.main_hashes[-1], time, cb, plain)
        key = float(height) + (1.5 if height in self.swaps else 0.0)
        self._store(key, block, height, True)
        self.main_hashes.append(block.header.hash())
        self.main_times.append(time)
        self.n_main_txs += len(block.txs)
        if any(f <= height < f + n for f, (n, _) in self.stale.items()):
            self.kept[height] = txs
        for start, (length, before) in list(self.stale.items()):
            if start + length - 1 == height:
                self._fork(start, length, before, stale_payouts)
                del self.stale[start]
                for h in range(start, start + length):
                    self.kept.pop(h, None)
        self._flush(height)
        return cb

    def _fork(
        self, start: int, length: int, before: bool, payouts: Sequence[tuple[bytes, bytes]]
    ) -> None:
        prev = self.main_hashes[start - 1]
        for j in range(length):
            h = start + j
            # a rival miner's block: some of the same transactions, none spending newer outputs
            picked = [
                (t, fee)
                for t, maxh, fee in self.kept[h]
                if maxh < start and self.rng.random() < 0.7
            ]
            spk, tag = payouts[j % len(payouts)] if payouts else (b"\x51", b"/stale/")
            fees = sum(fee for _, fee in picked)
            plain = [t for t, _ in picked]
            cb = self.coinbase(h, subsidy(h) + fees, spk, [t.wtxid() for t in plain], tag)
            time = self.main_times[h] + self.rng.randint(-40, 40)
            time = max(time, self.main_times[h - 1] + 1)
            block = self._block(prev, time, cb, plain)
            key = (start - 0.5 + 0.01 * j) if before else (h + 0.25)
            self._store(key, block, h, False)
            prev = block.header.hash()

    # -----------------------------------------------------------------------------------------
    # storage in arrival order

    def _store(self, key: float, block: Block, height: int, main: bool) -> None:
        h = block.header
        self.records.append(
            BlockRecord(h.hash_hex(), height, h.prev_hash[::-1].hex(), h.time, len(block.txs), main)
        )
        self._buffer.append((key, len(self.records) - 1, block.serialize()))

    def _flush(self, height: int | None) -> None:
        """Write every buffered block that no later block can precede."""
        if height is None:
            limit = float("inf")
        else:
            limit = height + 0.5
            for start in self.stale:  # forks still being built are stored at start - 0.5 or later
                limit = min(limit, start - 0.5)
        self._buffer.sort(key=lambda e: (e[0], e[1]))
        keep = []
        for key, idx, data in self._buffer:
            if key < limit:
                rec = self.records[idx]
                rec.file, rec.offset = self.writer.write(data)
                rec.order = self._stored
                self._stored += 1
            else:
                keep.append((key, idx, data))
        self._buffer = keep

    def finish(self) -> None:
        """Store whatever is still buffered and close the files."""
        self._flush(None)
        self.writer.close()

    @property
    def tip_height(self) -> int:
        return len(self.main_hashes) - 1

    @property
    def tip_hash(self) -> str:
        return self.main_hashes[-1][::-1].hex()

    @property
    def stale_hashes(self) -> list[str]:
        return [r.hash for r in self.records if not r.main]
