"""The lookup index (address -> outputs, txid -> tx, address -> id) answers what a full scan of
the arrays answers: on real blocks, on a simulated world, across incremental runs, merges and a
reorg. Small chunk sizes force many runs and merges on these small chains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.core import pages
from chainsleuth.core.address import encode_address
from chainsleuth.core.script_types import ScriptType
from chainsleuth.simulate.chain import regtest_genesis
from chainsleuth.store import lookup, writer
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store
from tests.conftest import NBITCOIN, extend_chain, raw, write_blocks_dir


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of at most 97 entries, merged at 4 runs in ranges of at most 13 entries, the index
    updated at every commit; 64-byte "pages", so that runs and tx_first_output get fences of
    several levels on these small chains."""
    monkeypatch.setattr(pages, "PAGE", 64)
    monkeypatch.setattr(lookup, "PAGE", 64)
    monkeypatch.setattr(lookup, "FENCE_MIN_BYTES", 0)
    monkeypatch.setattr(lookup, "CHUNK", 97)
    monkeypatch.setattr(lookup, "RANGE_ENTRIES", 13)
    monkeypatch.setattr(lookup, "MAX_RUNS", 4)
    monkeypatch.setattr(writer, "LOOKUP_EVERY_OUTPUTS", 0)


def assert_lookups_equal_scans(data_dir: Path, expect_index: bool = True) -> None:
    store = Store.open(data_dir)
    index = store.lookup_index()
    if expect_index:  # the index covers everything committed: nothing is left to scan
        assert index.covered_outputs == store.counts["outputs"]
        assert index.covered_txs == store.counts["txs"]
        assert index.base is not None or index.runs
    out_address = np.asarray(store.array("output_address")).astype(np.int64)
    n_addr = store.counts["addresses"]
    # the scan's answer: every output id grouped by address, ascending
    has = np.flatnonzero(out_address != int(NONE32))
    order = has[np.argsort(out_address[has], kind="stable")]
    bounds = np.searchsorted(out_address[order], np.arange(n_addr + 2))
    for a in range(n_addr + 1):  # one beyond the last: nothing
        got = store.outputs_of_address(a)
        assert got.tolist() == order[bounds[a] : bounds[a + 1]].tolist(), a
    txids = np.asarray(store.array("tx_txid"))
    last = {bytes(row): t for t, row in enumerate(txids)}  # BIP30: the later duplicate wins
    for t in range(store.counts["txs"]):
        assert store.tx_id_of(bytes(txids[t][::-1]).hex()) == last[bytes(txids[t])]
    assert store.tx_id_of("ab" * 32) is None
    # the tx of each output, through tx_first_output's fence (≤ 256 at a time) and without
    first = np.asarray(store.array("tx_first_output"))
    every = np.arange(store.counts["outputs"], dtype=np.int64)
    want = np.searchsorted(first, every, side="right") - 1
    if expect_index:
        assert index.tx_fence == store.counts["txs"]
    for lo in range(0, every.shape[0], 200):
        assert index.txs_of_outputs(every[lo : lo + 200]).tolist() == want[lo : lo + 200].tolist()
    assert index.txs_of_outputs(every).tolist() == want.tolist()
    if expect_index and pages.PAGE == 64:  # the small_chunks fixture: fences were written
        fenced = [s for s in index.runs + index.txid_runs if s[0].fence is not None]
        assert fenced or not (index.runs or index.txid_runs)
    keys = np.asarray(store.array("address_key"))
    for a in range(n_addr):
        kind, length = int(keys[a, 0]), int(keys[a, 1])
        text = encode_address(ScriptType(kind), bytes(keys[a, 2 : 2 + length]), store.network)
        assert store.address_id_of(text) == a


def test_real_blocks_incremental_runs_and_merges_equal_a_scan(
    tmp_path: Path, small_chunks: None
) -> None:
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    shutil.copyfile(NBITCOIN / "blk00000.dat", blocks / "blk00000.dat")
    data = tmp_path / "data"
    ingest_blocks_dir(blocks, data, batch_bytes=40_000)
    assert_lookups_equal_scans(data)
    shutil.copyfile(NBITCOIN / "blk00001.dat", blocks / "blk00001.dat")
    ingest_blocks_dir(blocks, data, batch_bytes=40_000)
    assert_lookups_equal_scans(data)
    state = json.loads((data / "lookup" / "state.json").read_text())
    kinds = [s["kind"] for s in state["segments"]]
    assert "base" in kinds and kinds.count("txid") <= lookup.MAX_RUNS
    # no file is left that the state does not name
    names = {s["name"] for s in state["segments"]}
    assert {p.name.split(".")[0] for p in (data / "lookup").glob("*.bin")} == names | {
        lookup.TX_FENCE
    }


def test_a_store_without_the_index_is_answered_by_scanning(tmp_path: Path) -> None:
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    shutil.copyfile(NBITCOIN / "blk00000.dat", blocks / "blk00000.dat")
    data = tmp_path / "data"
    ingest_blocks_dir(blocks, data)
    shutil.rmtree(data / "lookup")
    shutil.rmtree(data / "index")
    store = Store.open(data)
    assert store.lookup_index().covered_outputs == 0
    assert_lookups_equal_scans(data, expect_index=False)


def test_lookups_equal_a_scan_after_a_reorg(tmp_path: Path, small_chunks: None) -> None:
    a = extend_chain([regtest_genesis()], 30, seed=31, tag=b"A")
    b = extend_chain(a[:12], 25, seed=32, tag=b"B")
    data = tmp_path / "data"
    ingest_blocks_dir(write_blocks_dir(tmp_path / "a", [raw(a)]), data, batch_bytes=3_000)
    before = Store.open(data)
    assert before.tip is not None and before.tip[0] == 30
    # A rollback alone: the index is clipped to the fork point, and the clipped entries of the
    # removed blocks must not be returned.
    w = writer.StoreWriter.open(data, "regtest")
    w.rollback(20)
    w.close()
    state = json.loads((data / "lookup" / "state.json").read_text())
    assert any(s["valid_hi"] < s["hi"] for s in state["segments"])
    assert_lookups_equal_scans(data)
    # the node now has both branches; B has more work
    report = ingest_blocks_dir(
        write_blocks_dir(tmp_path / "ab", [raw(a), raw(b[12:])]), data, batch_bytes=3_000
    )
    assert report.rolled_back == 20 - 11
    store = Store.open(data)
    assert store.tip == (36, b[-1].header.hash_hex())
    assert_lookups_equal_scans(data)
    # A's transactions above the fork are gone from the lookups
    assert store.tx_id_of(a[20].txs[0].txid_hex()) is None


def test_the_index_of_another_epoch_is_ignored_by_readers(
    tmp_path: Path, small_chunks: None
) -> None:
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    shutil.copyfile(NBITCOIN / "blk00000.dat", blocks / "blk00000.dat")
    data = tmp_path / "data"
    ingest_blocks_dir(blocks, data)
    path = data / "lookup" / "state.json"
    state = json.loads(path.read_text())
    state["epochs"] = [99]
    path.write_text(json.dumps(state))
    store = Store.open(data)
    assert store.lookup_index().covered_outputs == 0
    out_address = np.asarray(store.array("output_address"))
    some = int(out_address[out_address != NONE32][-1])
    assert store.outputs_of_address(some).tolist() == np.flatnonzero(out_address == some).tolist()


def test_merges_of_skewed_addresses_equal_a_scan(tmp_path: Path, small_chunks: None) -> None:
    """Merge ranges are cut by entry count: one address paid far more often than a range holds,
    many addresses paid once, outputs without an address, built over several updates (runs,
    merges into a base, txid merges) and compared with a scan at every step."""
    rng = np.random.default_rng(5)
    n_out, n_addr, n_tx = 3_000, 900, 700
    addr = rng.integers(0, n_addr, n_out).astype("<u4")
    addr[rng.random(n_out) < 0.3] = 7  # one address with ~900 outputs, ranges of 13 entries
    addr[rng.random(n_out) < 0.1] = NONE32
    txids = rng.integers(0, 256, (n_tx, 32), dtype=np.uint8)
    (tmp_path / "arrays").mkdir()
    addr.tofile(tmp_path / "arrays" / "output_address.bin")
    txids.tofile(tmp_path / "arrays" / "tx_txid.bin")
    # each tx's first output: sorted, some txs with many outputs (tx_first_output's fence)
    per_tx = np.random.default_rng(3).integers(1, 6, n_tx)
    first = (np.cumsum(per_tx) - per_tx).astype("<i8")
    first.tofile(tmp_path / "arrays" / "tx_first_output.bin")
    builder = lookup.LookupBuilder(tmp_path)
    for step in (250, 900, 1_400, 2_200, 3_000):
        counts = {"outputs": step, "txs": step * n_tx // n_out, "addresses": n_addr}
        manifest = {"epoch": 0, "counts": counts}
        builder.update(manifest)
        index = lookup.LookupIndex.open(tmp_path, manifest)
        assert index.covered_outputs == step
        for a in range(n_addr):
            want = np.flatnonzero(addr[:step] == a)
            assert index.outputs_of_address(a).tolist() == want.tolist(), (step, a)
        for t in range(counts["txs"]):
            assert index.tx_id_of(bytes(txids[t])) == t
        probe = np.arange(0, int(first[counts["txs"] - 1]) + 9)
        want_tx = np.searchsorted(first[: counts["txs"]], probe, side="right") - 1
        assert index.txs_of_outputs(probe[:200]).tolist() == want_tx[:200].tolist()
    kinds = [
        s["kind"] for s in json.loads((tmp_path / "lookup" / "state.json").read_text())["segments"]
    ]
    assert "base" in kinds
