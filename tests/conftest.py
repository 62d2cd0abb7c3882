"""Shared test helpers: the shared data folder, blk-file framing, tiny regtest chains, store dumps.

The regtest chains are built with `chainsleuth.parse.serialize` from the real regtest genesis
block and mined at regtest difficulty (about two hashes per block), so they are valid proof of work
and link by hash, as Bitcoin Core would have stored them. Their transactions spend earlier outputs
(no signatures: nothing under test checks scripts), so ingest has inputs to link and reorgs have
spends to undo.
"""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chainsleuth.core.network import REGTEST
from chainsleuth.parse.serialize import Block, Tx, TxIn, TxOut
from chainsleuth.simulate.chain import mine_block as chain_mine_block
from chainsleuth.simulate.chain import regtest_genesis as regtest_genesis  # re-exported to tests

if TYPE_CHECKING:
    from collections.abc import Callable

    import typer

    from chainsleuth.cluster.engine import ClusterReport
    from chainsleuth.store.ingest import IngestReport
    from chainsleuth.tags.model import ImportReport

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAINNET_BLOCKS = SHARED_DATA / "mainnet-blocks"
NBITCOIN = MAINNET_BLOCKS / "blk" / "nbitcoin"

COIN = 100_000_000


def stage_app(register: Callable[[typer.Typer], None]) -> typer.Typer:
    """A typer app with one stage's commands (its `register`), for CliRunner tests: a second
    command keeps the stage's command a subcommand, as under the root CLI."""
    import typer

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:
        pass

    return app


# ---------------------------------------------------------------------------------------------
# blk*.dat framing


def read_blk(path: Path) -> list[bytes]:
    """Every block of a blk*.dat file (magic, u32 LE length, block), stopping at zero padding."""
    data, offset, blocks = path.read_bytes(), 0, []
    while offset + 8 <= len(data):
        magic, length = struct.unpack_from("<4sI", data, offset)
        if magic == bytes(4):
            break
        blocks.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length
    return blocks


def blk_records(blocks: Sequence[bytes], magic: bytes) -> bytes:
    """Blocks framed as Bitcoin Core writes them into a blk file."""
    return b"".join(magic + struct.pack("<I", len(b)) + b for b in blocks)


def write_blocks_dir(
    directory: Path, files: Sequence[Sequence[bytes]], magic: bytes = REGTEST.magic
) -> Path:
    """A blocks/ directory with one blk file per list of raw blocks (blk00000.dat, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, blocks in enumerate(files):
        (directory / f"blk{number:05d}.dat").write_bytes(blk_records(blocks, magic))
    return directory


def copy_nbitcoin(directory: Path, names: Sequence[str] = ("blk00000.dat", "blk00001.dat")) -> Path:
    """A writable copy of (some of) the real nbitcoin blk files."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(NBITCOIN / name, directory / name)
        (directory / name).chmod(0o644)
    return directory


# ---------------------------------------------------------------------------------------------
# tiny regtest chains


def p2pkh(tag: bytes) -> bytes:
    return b"\x76\xa9\x14" + tag.ljust(20, b"\x00")[:20] + b"\x88\xac"


def p2wpkh(tag: bytes) -> bytes:
    return b"\x00\x14" + tag.ljust(20, b"\x00")[:20]


def p2tr(tag: bytes) -> bytes:
    return b"\x51\x20" + tag.ljust(32, b"\x00")[:32]


def mine_block(
    prev: Block,
    height: int,
    txs: Sequence[Tx],
    tag: bytes,
    fees: int = 0,
    miner_script: bytes | None = None,
) -> Block:
    """A block on `prev`: a coinbase paying subsidy + fees (+ a witness commitment), then `txs`
    (`chainsleuth.simulate.chain.mine_block`, the one hand-built block of tests and benches)."""
    payee = miner_script if miner_script is not None else p2pkh(b"miner" + tag + bytes([height]))
    return chain_mine_block(prev, height, txs, payee, b"/cs/" + tag, 50 * COIN + fees)


def _utxos(blocks: Sequence[Block]) -> dict[tuple[bytes, int], TxOut]:
    unspent: dict[tuple[bytes, int], TxOut] = {}
    for block in blocks:
        for tx in block.txs:
            if not tx.is_coinbase():
                for i in tx.inputs:
                    del unspent[(i.prev_txid, i.prev_vout)]
            for vout, out in enumerate(tx.outputs):
                if out.value > 0:
                    unspent[(tx.txid(), vout)] = out
    return unspent


def extend_chain(base: Sequence[Block], n_blocks: int, *, seed: int, tag: bytes) -> list[Block]:
    """`base` plus `n_blocks` mined blocks whose transactions spend random earlier outputs.

    Each new block holds up to three transactions, each spending one or two outputs (a spend in
    the same block of an output created earlier in that block included) into a P2PKH, P2WPKH or
    P2TR output and change; spends of witness outputs carry a witness. Fees are 1,000 sat per tx.
    """
    rng = random.Random(seed)
    chain = list(base)
    unspent = _utxos(chain)
    for _ in range(n_blocks):
        height = len(chain)
        txs: list[Tx] = []
        for k in range(rng.randint(1, 3)):
            # Outputs of the previous block's coinbase and every tx output are spendable here.
            choices = sorted(unspent, key=lambda o: (o[0], o[1]))
            if not choices:
                break
            spent = rng.sample(choices, min(len(choices), rng.randint(1, 2)))
            value = sum(unspent[o].value for o in spent) - 1_000
            if value < 2_000:
                continue
            inputs = []
            for prev_txid, vout in spent:
                script = unspent.pop((prev_txid, vout)).script_pubkey
                witness = (
                    (b"\x30" * 71, b"\x02" + bytes([height, k]) * 16)
                    if script[0] in (0x00, 0x51)
                    else ()
                )
                script_sig = b"" if witness else b"\x47" + b"\x30" * 71
                inputs.append(TxIn(prev_txid, vout, script_sig, 0xFFFFFFFD, witness))
            pay = rng.randint(1_000, value - 1_000)
            make = rng.choice((p2pkh, p2wpkh, p2tr))
            outputs = (
                TxOut(pay, make(tag + bytes([height, k, 1]))),
                TxOut(value - pay, p2wpkh(tag + bytes([height, k, 2]))),
            )
            tx = Tx(2, tuple(inputs), outputs, 0)
            txs.append(tx)
            for vout, out in enumerate(outputs):
                unspent[(tx.txid(), vout)] = out
        block = mine_block(chain[-1], height, txs, tag, fees=1_000 * len(txs))
        cb = block.txs[0]
        for vout, out in enumerate(cb.outputs):
            if out.value > 0:
                unspent[(cb.txid(), vout)] = out
        chain.append(block)
    return chain


def raw(blocks: Sequence[Block]) -> list[bytes]:
    return [b.serialize() for b in blocks]


# ---------------------------------------------------------------------------------------------
# comparing stores

VIEW_ORDER = {
    "blocks": "height",
    "txs": "tx_id",
    "outputs": "output_id",
    "inputs": "input_id",
    "addresses": "address",
}


def dump_views(data_dir: Path, views: Sequence[str] = tuple(VIEW_ORDER)) -> dict[str, list]:
    """Every row of the store's views, in a fixed order, for comparing two stores."""
    from chainsleuth.store.store import Store

    store = Store.open(data_dir)
    return {v: store.sql(f"SELECT * FROM {v} ORDER BY {VIEW_ORDER[v]}").to_pylist() for v in views}


@pytest.fixture(scope="session")
def nbitcoin_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The real nbitcoin blk files (heights 0-599) ingested once per session; read-only (copy it
    to cluster, tag or ingest into it): the session fails if a file under it changed."""
    from chainsleuth.store.ingest import ingest_blocks_dir

    data_dir = tmp_path_factory.mktemp("nbitcoin-store") / "data"
    report = ingest_blocks_dir(NBITCOIN, data_dir)
    assert report.n_blocks == 600
    with unchanged(data_dir):
        yield data_dir


@pytest.fixture(scope="session")
def nbitcoin_views(nbitcoin_store: Path) -> dict[str, list]:
    return dump_views(nbitcoin_store)


@pytest.fixture(scope="session")
def nbitcoin_raw_blocks() -> list[bytes]:
    return read_blk(NBITCOIN / "blk00000.dat") + read_blk(NBITCOIN / "blk00001.dat")


# ---------------------------------------------------------------------------------------------
# the shared small simulated world, built once per session in layers with bench/world.py's steps:
# world -> ingested store -> clusters -> tags. Later layers write into the same store folder, and
# none of them changes what an earlier one wrote (the chain's views stay as ingested), so a test
# of one layer asks for that layer and reads only what it made. Everything here is read-only:
# a test that writes (tags, cases, prices, an API's audit log, a re-clustering) copies the store
# to tmp_path first; `small_world` fails the session if a file under it changed.

SMALL_SEED, SMALL_SCALE = 1, "small"


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Layer 1: the small simulated world (seed 1, easy profile, no xor): blocks/, truth/,
    seeds/, tags/, world.json."""
    from bench.world import simulate_world

    return simulate_world(tmp_path_factory.mktemp("small-world") / "world", SMALL_SEED, SMALL_SCALE)


@pytest.fixture(scope="session")
def small_ingested(small_world_dir: Path) -> tuple[Path, IngestReport]:
    """Layer 2: (store dir, ingest report) of the world's blocks ingested."""
    from chainsleuth.store.ingest import ingest_blocks_dir

    store = small_world_dir.parent / "store"
    return store, ingest_blocks_dir(small_world_dir / "blocks", store)


@pytest.fixture(scope="session")
def small_clustered(small_ingested: tuple[Path, IngestReport]) -> tuple[Path, ClusterReport]:
    """Layer 3: (store dir, cluster report) after clustering it with the default policy
    (conservative)."""
    from chainsleuth.cluster.engine import cluster_store

    store = small_ingested[0]
    return store, cluster_store(store, "conservative")


@pytest.fixture(scope="session")
def small_tagged(
    small_world_dir: Path, small_clustered: tuple[Path, ClusterReport]
) -> tuple[Path, ImportReport]:
    """Layer 4: (store dir, import report) after importing the world's TagPacks and
    recomputing the clusters' attribution."""
    from bench.world import tag_world

    store = small_clustered[0]
    return store, tag_world(small_world_dir, store)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@contextmanager
def unchanged(root: Path) -> Iterator[None]:
    """Fails when a file under `root` was added, removed or rewritten inside the block: a
    session fixture shared read-only wraps its yield in it."""
    before = _files(root)
    yield
    after = _files(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test wrote into the shared {root} (copy it first): {changed[:5]}"


@pytest.fixture(scope="session")
def small_world(
    small_world_dir: Path, small_tagged: tuple[Path, ImportReport]
) -> Iterator[tuple[Path, Path]]:
    """(world dir, data dir) of the small simulated world (seed 1) ingested, clustered
    (conservative) and tagged with its TagPacks, once per session; read-only (copy the data dir
    to write tags, cases or an API's audit log into it)."""
    with unchanged(small_world_dir.parent):
        yield small_world_dir, small_tagged[0]


def cluster_in_steps(world: Path, root: Path, percents: Sequence[int], **cluster_args: int) -> Path:
    """A world's chain ingested and clustered up to each of `percents` of its blocks in turn
    (the last one 100 for the whole chain), into root/store: a base, then delta layers."""
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.store.ingest import ingest_blocks_dir

    files = sorted((world / "blocks").glob("blk*.dat"))
    magic = files[0].read_bytes()[:4]
    blocks = [b for f in files for b in read_blk(f)]
    (root / "blocks").mkdir(parents=True, exist_ok=True)
    for percent in percents:
        upto = (percent * len(blocks)) // 100
        (root / "blocks" / "blk00000.dat").write_bytes(blk_records(blocks[:upto], magic))
        ingest_blocks_dir(root / "blocks", root / "store")
        cluster_store(root / "store", "conservative", **cluster_args)
    return root / "store"
