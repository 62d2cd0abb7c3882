"""The session's small world (tests/conftest.py's `small_world_dir`) and its `--xor` twin, and
their blk files read back independently.

The chain is read with the serializer's own pure-Python parser and the most-work chain is worked
out from the headers alone, so these tests check the files, not the simulator's bookkeeping.
"""

from __future__ import annotations

import csv
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block, Tx, parse_block
from chainsleuth.simulate.blockfiles import xor_bytes
from chainsleuth.simulate.run import simulate
from tests.conftest import SMALL_SEED

SEED = SMALL_SEED


@dataclass
class Stored:
    """One block record as found in a blk file."""

    file: str
    offset: int  # of the block's first byte
    raw: bytes
    block: Block
    order: int

    @property
    def hash(self) -> bytes:
        return self.block.header.hash()


@dataclass
class Chain:
    """Everything read back from a world's blocks directory."""

    stored: list[Stored]
    by_hash: dict[bytes, Stored]
    height: dict[bytes, int]
    main: list[Block]  # most-work chain, genesis first
    file_sizes: dict[str, int] = field(default_factory=dict)

    def main_txs(self) -> list[tuple[int, Tx]]:
        return [(h, tx) for h, b in enumerate(self.main) for tx in b.txs]


def read_records(blocks_dir: Path) -> list[tuple[str, int, bytes]]:
    """(file name, block offset, block bytes) of every record, de-obfuscated with xor.dat."""
    key_path = blocks_dir / "xor.dat"
    key = key_path.read_bytes() if key_path.exists() else bytes(8)
    out = []
    for path in sorted(blocks_dir.glob("blk*.dat")):
        data = xor_bytes(path.read_bytes(), key, 0)
        pos = 0
        while pos < len(data):
            magic = data[pos : pos + 4]
            if magic != REGTEST.magic:
                raise AssertionError(f"{path.name}: bad magic {magic.hex()} at {pos}")
            (size,) = struct.unpack_from("<I", data, pos + 4)
            out.append((path.name, pos + 8, data[pos + 8 : pos + 8 + size]))
            pos += 8 + size
        if pos != len(data):
            raise AssertionError(f"{path.name}: last record runs past the end of the file")
    return out


def read_chain(blocks_dir: Path) -> Chain:
    stored = []
    for i, (name, offset, raw) in enumerate(read_records(blocks_dir)):
        block, end = parse_block(raw)
        assert end == len(raw), f"{name}@{offset}: block length field disagrees with its content"
        stored.append(Stored(name, offset, raw, block, i))
    by_hash = {s.hash: s for s in stored}
    height: dict[bytes, int] = {}

    def height_of(h: bytes) -> int:
        chain = []
        while h not in height:
            s = by_hash[h]
            if s.block.header.prev_hash == bytes(32):
                height[h] = 0
                break
            chain.append(h)
            h = s.block.header.prev_hash
        base = height[h]
        for k, x in enumerate(reversed(chain), 1):
            height[x] = base + k
        return height[chain[0]] if chain else base

    for s in stored:
        height_of(s.hash)
    # every block has the same work at regtest difficulty: most work = greatest height
    tip = max(stored, key=lambda s: (height[s.hash], -s.order)).hash
    main = []
    h = tip
    while True:
        main.append(by_hash[h].block)
        prev = by_hash[h].block.header.prev_hash
        if prev == bytes(32):
            break
        h = prev
    main.reverse()
    sizes = {p.name: p.stat().st_size for p in blocks_dir.glob("blk*.dat")}
    return Chain(stored, by_hash, height, main, sizes)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def world_dir(small_world_dir: Path) -> Path:
    """The one small world of the session (seed 1, no xor); read-only."""
    return small_world_dir


@pytest.fixture(scope="session")
def xor_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same world written with `--xor` (its own world: the obfuscated blk files are what the
    tests compare with the plain ones)."""
    out = tmp_path_factory.mktemp("world-xor")
    simulate(out, seed=SEED, scale="small", xor=True)
    return out


@pytest.fixture(scope="session")
def world(world_dir: Path) -> dict:
    return json.loads((world_dir / "world.json").read_text())


@pytest.fixture(scope="session")
def chain(world_dir: Path) -> Chain:
    return read_chain(world_dir / "blocks")


@pytest.fixture(scope="session")
def truth(world_dir: Path) -> dict[str, list[dict[str, str]]]:
    return {p.stem: read_csv(p) for p in sorted((world_dir / "truth").glob("*.csv"))}


@pytest.fixture(scope="session")
def prevouts(chain: Chain) -> dict[tuple[bytes, int], tuple[int, bytes]]:
    """(txid, vout) -> (value, script) of every main-chain output."""
    out = {}
    for _, tx in chain.main_txs():
        txid = tx.txid()
        for vout, o in enumerate(tx.outputs):
            out[(txid, vout)] = (o.value, o.script_pubkey)
    return out


@pytest.fixture(scope="session")
def tx_kinds(truth: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {row["txid"]: row for row in truth["txs"]}
