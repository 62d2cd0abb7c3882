"""Ingest over JSON-RPC from the replay server: the same store as from blk files, incremental
runs, and a reorg that the store follows by rolling back to the fork point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.parse.serialize import Block
from chainsleuth.sources.rpc import RpcSource
from chainsleuth.store.ingest import ingest_rpc
from chainsleuth.store.layout import ARRAYS
from chainsleuth.store.store import Store
from tests.conftest import dump_views, extend_chain, raw, regtest_genesis
from tests.sources.rpc_replay import RpcReplayServer


def node(server: RpcReplayServer) -> RpcSource:
    return RpcSource(server.url, user=server.user, password=server.password)


@pytest.fixture
def mainnet_server(nbitcoin_raw_blocks: list[bytes]) -> Iterator[RpcReplayServer]:
    with RpcReplayServer.scripted(nbitcoin_raw_blocks, chain="main") as server:
        yield server


def test_rpc_ingest_of_heights_0_to_599_equals_the_blocks_dir_ingest(
    tmp_path: Path, mainnet_server: RpcReplayServer, nbitcoin_views: dict
) -> None:
    with node(mainnet_server) as source:
        report = ingest_rpc(source, tmp_path / "data")
    assert (report.network, report.n_blocks, report.n_txs, report.tip_height) == (
        "main",
        600,
        616,
        599,
    )
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_rpc_ingest_of_0_to_299_then_0_to_599_equals_one_run(
    tmp_path: Path,
    mainnet_server: RpcReplayServer,
    nbitcoin_raw_blocks: list[bytes],
    nbitcoin_views: dict,
) -> None:
    mainnet_server.set_chain(nbitcoin_raw_blocks[:300])
    with node(mainnet_server) as source:
        first = ingest_rpc(source, tmp_path / "data")
        mainnet_server.set_chain(nbitcoin_raw_blocks)
        second = ingest_rpc(source, tmp_path / "data")
    assert (first.n_blocks, first.tip_height) == (300, 299)
    assert (second.n_blocks, second.tip_height, second.rolled_back) == (300, 599, 0)
    assert second.fork_height is None
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_rpc_ingest_with_nothing_new_adds_nothing(
    tmp_path: Path, mainnet_server: RpcReplayServer, nbitcoin_raw_blocks: list[bytes]
) -> None:
    mainnet_server.set_chain(nbitcoin_raw_blocks[:50])
    with node(mainnet_server) as source:
        ingest_rpc(source, tmp_path / "data")
        views = dump_views(tmp_path / "data")
        again = ingest_rpc(source, tmp_path / "data")
    assert (again.n_blocks, again.rolled_back, again.tip_height) == (0, 0, 49)
    assert dump_views(tmp_path / "data") == views


# ---------------------------------------------------------------------------------------------
# a reorg on a regtest chain built with the serializer


@pytest.fixture(scope="module")
def chains() -> tuple[list[Block], list[Block]]:
    """Chain A: genesis + 10 blocks with spends. Chain B: A's first 6 blocks (heights 0-5),
    then 7 other blocks (heights 6-12) whose transactions spend other outputs."""
    a = extend_chain([regtest_genesis()], 10, seed=21, tag=b"A")
    b = extend_chain(a[:6], 7, seed=22, tag=b"B")
    return a, b


def spends(blocks: list[Block], from_height: int) -> dict[tuple[bytes, int], bytes]:
    """(prev txid, vout) -> spending txid, for the spends in blocks at `from_height` and above."""
    return {
        (i.prev_txid, i.prev_vout): tx.txid()
        for block in blocks[from_height:]
        for tx in block.txs[1:]
        for i in tx.inputs
    }


def test_fork_chains_spend_outputs_of_the_common_blocks_differently(
    chains: tuple[list[Block], list[Block]],
) -> None:
    a, b = chains
    assert [x.header.hash() for x in a[:6]] == [x.header.hash() for x in b[:6]]
    assert a[6].header.hash() != b[6].header.hash()
    common = {(tx.txid(), v) for block in a[:6] for tx in block.txs for v in range(len(tx.outputs))}
    a_spends = {k: v for k, v in spends(a, 6).items() if k in common}
    b_spends = {k: v for k, v in spends(b, 6).items() if k in common}
    assert a_spends and b_spends and a_spends != b_spends
    assert set(a_spends) - set(b_spends)  # spent on A, unspent (or spent elsewhere) on B


def test_rpc_ingest_follows_a_reorg_to_the_same_store_as_a_fresh_ingest(
    tmp_path: Path, chains: tuple[list[Block], list[Block]]
) -> None:
    a, b = chains
    with RpcReplayServer.scripted(raw(a), chain="regtest") as server, node(server) as source:
        first = ingest_rpc(source, tmp_path / "data", batch_blocks=4)
        assert (first.network, first.tip_height) == ("regtest", 10)
        server.set_chain(raw(b))
        reorg = ingest_rpc(source, tmp_path / "data", batch_blocks=4)
        fresh = ingest_rpc(source, tmp_path / "fresh", batch_blocks=4)
    assert (reorg.fork_height, reorg.rolled_back, reorg.n_blocks) == (5, 5, 7)
    assert reorg.tip_height == fresh.tip_height == 12
    reorged, clean = Store.open(tmp_path / "data"), Store.open(tmp_path / "fresh")
    assert reorged.tip == clean.tip == (12, b[12].header.hash_hex())
    assert reorged.counts == clean.counts
    assert reorged.counts["txs"] == sum(len(x.txs) for x in b)
    query = "SELECT txid, vout, spent_by_txid FROM outputs ORDER BY output_id"
    assert reorged.sql(query).to_pylist() == clean.sql(query).to_pylist()
    spent_by = {(r["txid"], r["vout"]): r["spent_by_txid"] for r in reorged.sql(query).to_pylist()}
    for (prev_txid, vout), txid in spends(b, 1).items():
        assert spent_by[(prev_txid[::-1].hex(), vout)] == txid[::-1].hex()
    assert dump_views(tmp_path / "data") == dump_views(tmp_path / "fresh")
    for name in ARRAYS:
        assert np.array_equal(reorged.array(name), clean.array(name)), name


def test_reorg_during_a_sync_is_followed_within_the_same_run(
    tmp_path: Path, chains: tuple[list[Block], list[Block]]
) -> None:
    a, b = chains
    with RpcReplayServer.scripted(raw(a), chain="regtest") as server, node(server) as source:
        fetch = source.raw_blocks

        def fetch_then_reorg(hashes: list[str]) -> list[bytes]:
            # The node moves to chain B right after serving A's block 9: the next batch
            # (B's block 10) does not extend the stored A 0-9.
            blocks = fetch(hashes)
            if a[9].header.hash_hex() in hashes:
                server.set_chain(raw(b))
            return blocks

        source.raw_blocks = fetch_then_reorg  # type: ignore[method-assign]
        report = ingest_rpc(source, tmp_path / "data", batch_blocks=2)
        source.raw_blocks = fetch  # type: ignore[method-assign]
        fresh = ingest_rpc(source, tmp_path / "fresh", batch_blocks=2)
    assert report.tip_height == fresh.tip_height == 12
    assert (report.fork_height, report.rolled_back) == (5, 4)  # A's 6-9 undone
    assert dump_views(tmp_path / "data") == dump_views(tmp_path / "fresh")
    done, clean = Store.open(tmp_path / "data"), Store.open(tmp_path / "fresh")
    for name in ARRAYS:
        assert np.array_equal(done.array(name), clean.array(name)), name
