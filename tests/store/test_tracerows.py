"""The trace rows (`store.tracerows`): per output its address and creating tx, per input the
value it spends; written by the ingest, kept right across reorgs, rewritten only from the first
block they are not right for, and never trusted beyond what `state.json` vouches for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.simulate.chain import regtest_genesis
from chainsleuth.store import tracerows, writer
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from chainsleuth.trace import engine
from tests.conftest import extend_chain, raw, write_blocks_dir


def _expected(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The rows from their definition: searchsorted for the creating tx, a gather for values."""
    g = Store.open(data).graph
    first = np.asarray(g.tx_first_output)
    creator = np.searchsorted(first, np.arange(g.n_outputs), side="right") - 1
    address = np.asarray(g.output_address).astype(np.uint64)
    spent = np.asarray(g.input_spent_output)
    value = np.where(spent >= 0, np.asarray(g.output_value)[np.maximum(spent, 0)], 0)
    return (address << np.uint64(32)) | creator.astype(np.uint64), value.astype(np.int64)


def assert_rows_right(data: Path) -> None:
    rows = tracerows.read_rows(data, Store.open(data).graph)
    assert rows is not None, "the store's rows must cover it"
    want = _expected(data)
    assert rows[0].dtype == np.uint64 and rows[1].dtype == np.int64
    np.testing.assert_array_equal(rows[0], want[0])
    np.testing.assert_array_equal(rows[1], want[1])


@pytest.fixture
def small_with_rows(small_world: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the small world's store (the shared one must stay as it is) that opted in:
    an ingest with `trace_rows=True` and nothing new builds them."""
    world, shared = small_world
    data = tmp_path / "store"
    shutil.copytree(shared, data)
    assert not tracerows.enabled(data)  # off by default: a new store has none
    report = ingest_blocks_dir(world / "blocks", data, trace_rows=True)
    assert report.n_blocks == 0
    return data


def test_the_ingest_writes_rows_equal_to_their_definition(small_with_rows: Path) -> None:
    data = small_with_rows
    assert_rows_right(data)
    rows = tracerows.read_rows(data, Store.open(data).graph)
    assert rows is not None and int((rows[1] == 0).sum()) < rows[1].shape[0] // 10


@pytest.fixture
def chain_a(tmp_path: Path) -> tuple[list, Path]:
    a = extend_chain([regtest_genesis()], 30, seed=31, tag=b"A")
    data = tmp_path / "data"
    ingest_blocks_dir(
        write_blocks_dir(tmp_path / "a", [raw(a)]), data, batch_bytes=3_000, trace_rows=True
    )
    return a, data


def test_rows_follow_a_rollback_and_a_reorg(
    tmp_path: Path, chain_a: tuple[list, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracerows, "CHECKPOINT_BLOCKS", 4)
    a, data = chain_a
    assert_rows_right(data)
    w = writer.StoreWriter.open(data, "regtest")
    w.rollback(20)
    w.close()
    assert_rows_right(data)
    b = extend_chain(a[:12], 25, seed=32, tag=b"B")
    report = ingest_blocks_dir(
        write_blocks_dir(tmp_path / "ab", [raw(a), raw(b[12:])]), data, batch_bytes=3_000
    )
    assert report.rolled_back == 20 - 11
    assert_rows_right(data)


def test_rows_are_rewritten_only_from_the_first_stale_block(
    chain_a: tuple[list, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A last hash that no longer matches (a chain replaced above some block) keeps the rows
    up to the last matching checkpoint: bytes planted below it stay, the rest is rewritten."""
    monkeypatch.setattr(tracerows, "CHECKPOINT_BLOCKS", 8)
    monkeypatch.setattr(tracerows, "BUILD_TXS", 7)  # several steps of each kind
    monkeypatch.setattr(tracerows, "BUILD_INPUTS", 13)
    _, data = chain_a
    d = tracerows.rows_dir(data)
    state = json.loads((d / "state.json").read_text())
    # the ingest wrote its rows with 1024-block checkpoints: none on 31 blocks; rebuild
    shutil.rmtree(d)
    g = Store.open(data).graph
    assert tracerows.ensure_rows(data, g) is not None
    state = json.loads((d / "state.json").read_text())
    assert [h for h, _ in state["checkpoints"]] == [7, 15, 23]
    t24 = int(g.block_first_tx[24])
    o24, i24 = int(g.tx_first_output[t24]), int(g.tx_first_input[t24])
    planted = np.memmap(d / tracerows.OUTPUT_ROW, np.uint64, "r+")
    planted[0] = 12345  # block 0: below the checkpoint at 23
    planted[o24] = 54321  # block 24: above it
    planted.flush()
    del planted
    state["last_hash"] = "00" * 32
    (d / "state.json").write_text(json.dumps(state))
    assert tracerows.valid_blocks(g, state) == 24
    assert tracerows.read_rows(data, g) is None  # not vouched for: the walk uses the fence
    rows = tracerows.ensure_rows(data, g)
    assert rows is not None
    want = _expected(data)
    assert int(rows[0][0]) == 12345  # kept, not rewritten
    np.testing.assert_array_equal(rows[0][o24:], want[0][o24:])
    np.testing.assert_array_equal(rows[0][1:o24], want[0][1:o24])
    np.testing.assert_array_equal(rows[1][i24:], want[1][i24:])
    # and a second call writes nothing
    before = (d / "state.json").stat().st_mtime_ns, (d / tracerows.OUTPUT_ROW).stat().st_mtime_ns
    tracerows.ensure_rows(data, g)
    after = (d / "state.json").stat().st_mtime_ns, (d / tracerows.OUTPUT_ROW).stat().st_mtime_ns
    assert before == after


def test_an_interrupted_build_is_not_trusted_and_is_redone(chain_a: tuple[list, Path]) -> None:
    """Arrays written but no state.json replaced (a build killed before its last step): the
    rows are not read, and the next ensure writes them whole."""
    _, data = chain_a
    d = tracerows.rows_dir(data)
    (d / "state.json").unlink()
    with open(d / tracerows.INPUT_VALUE, "r+b") as f:
        f.write(b"\xff" * 64)
    g = Store.open(data).graph
    assert tracerows.read_rows(data, g) is None
    assert tracerows.ensure_rows(data, g) is not None
    assert_rows_right(data)


def test_backward_walk_with_and_without_rows_is_the_same(
    small_with_rows: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trace_back reading the rows against trace_back reading the fence and the store's arrays
    (USE_TRACE_ROWS off): every entry, row, amount and dropped satoshi."""
    data = small_with_rows
    g = Store.open(data).graph
    rng = np.random.default_rng(3)
    seeds = rng.integers(0, g.n_outputs, 3000).astype(np.int64)
    stop = rng.random(g.n_addresses) < 0.03
    coinjoin = rng.random(g.n_txs) < 0.01
    opts = engine.TraceOptions(policy="haircut", max_hops=12, min_fraction=0.01)
    stops = {"stop_clusters": engine.AddressStops(stop), "is_coinjoin": coinjoin}
    got = engine.trace_back(data, seeds, opts, **stops)
    assert engine._chain(Store.open(data))[3][0].shape[0] == g.n_outputs  # rows were read
    monkeypatch.setattr(engine, "USE_TRACE_ROWS", False)
    want = engine.trace_back(data, seeds, opts, **stops)
    assert engine._chain(Store.open(data))[3][0].shape[0] == 0
    assert len(want) > 1000 and int(want.hops.max()) >= 3
    for name in (
        "seed",
        "output",
        "tx",
        "amount",
        "hops",
        "kind",
        "flags",
        "entry",
        "entry_parent",
        "entry_tx",
        "entry_output",
        "entry_hops",
        "dropped",
    ):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


def test_an_ingest_with_nothing_new_writes_missing_rows(
    tmp_path: Path, chain_a: tuple[list, Path]
) -> None:
    """A store that opts in later (`ingest --trace-rows`) gets them from its next ingest run,
    even one that finds no new block; a later ingest keeps the choice, and `--no-trace-rows`
    deletes them."""
    a, data = chain_a
    blocks = write_blocks_dir(tmp_path / "again", [raw(a)])
    shutil.rmtree(tracerows.rows_dir(data))
    assert tracerows.read_rows(data, Store.open(data).graph) is None
    ingest_blocks_dir(blocks, data)  # the store's choice is now "none": none written
    assert not tracerows.enabled(data)
    report = ingest_blocks_dir(blocks, data, trace_rows=True)
    assert report.n_blocks == 0
    assert_rows_right(data)
    ingest_blocks_dir(blocks, data)  # kept
    assert_rows_right(data)
    ingest_blocks_dir(blocks, data, trace_rows=False)
    assert not tracerows.rows_dir(data).exists()
    assert tracerows.read_rows(data, Store.open(data).graph) is None
