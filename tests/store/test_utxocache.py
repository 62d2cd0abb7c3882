"""The writer's UTXO cache: it answers as a dict of outpoints would, through growth (in memory and
through a file), deletions and a save; a writer that reopens, catches up or rebuilds it links
exactly as one that never stopped; a chain that spends what it may not fails with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.core.errors import InputError
from chainsleuth.store import layout, utxocache
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.utxocache import UtxoCache
from chainsleuth.store.writer import StoreWriter
from tests.chainbuilder import ChainBuilder, p2wpkh, spend
from tests.conftest import copy_nbitcoin

# ---------------------------------------------------------------------------------------------
# the table against a dict


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 400)), min_size=1, max_size=600),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_the_cache_answers_as_a_dict_of_outpoints(
    ops: list[tuple[bool, int]], seed: int, spill: bool
) -> None:
    """Puts and takes in any order; keys share txids (several vouts) so probe runs collide and
    deletions shift entries back; a table of 1,024 slots grows several times."""
    import tempfile

    rng = np.random.default_rng(seed)
    txids = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        old = utxocache.SPILL_BYTES
        utxocache.SPILL_BYTES = 0 if spill else old  # every doubling through the file
        try:
            cache = UtxoCache(spill_dir=Path(tmp))
            model: dict[tuple[int, int], tuple[int, int, int]] = {}
            next_out = 0
            for is_put, k in ops:
                t, v = k % 40, k // 40
                key = txids[t : t + 1], np.array([v])
                if is_put and (t, v) not in model:
                    val = (next_out, int(rng.integers(0, 2**50)), int(rng.integers(0, 2**32)))
                    replaced = cache.put(*key, *(np.array([x]) for x in val))
                    assert replaced.tolist() == [-1]
                    model[(t, v)] = val
                    next_out += 1
                else:
                    bad, outs, values, addrs = cache.take(*key)
                    if (t, v) in model:
                        assert bad == -1
                        assert (int(outs[0]), int(values[0]), int(addrs[0])) == model.pop((t, v))
                    else:
                        assert bad == 0
                assert cache.used == len(model) == int((cache.fp != 0).sum())
            # everything left is found, and the table is empty after
            if model:
                keys = sorted(model)
                bad, outs, _, _ = cache.take(
                    txids[[t for t, _ in keys]], np.array([v for _, v in keys])
                )
                assert bad == -1 and outs.tolist() == [model[k][0] for k in keys]
            assert cache.used == 0 and not cache.fp.any()
            assert not list(Path(tmp).iterdir())  # the doubling's file is gone
        finally:
            utxocache.SPILL_BYTES = old


def test_a_key_put_twice_reports_the_output_it_replaces(tmp_path: Path) -> None:
    cache = UtxoCache()
    txid = np.arange(32, dtype=np.uint8).reshape(1, 32)
    assert cache.put(txid, np.array([1]), np.array([7]), np.array([5]), np.array([3])).tolist() == [
        -1
    ]
    replaced = cache.put(txid, np.array([1]), np.array([9]), np.array([6]), np.array([4]))
    assert replaced.tolist() == [7] and cache.used == 1
    cache.save(str(tmp_path / "u"))
    loaded = UtxoCache.load(str(tmp_path / "u"), cache.used)
    bad, outs, values, addrs = loaded.take(txid, np.array([1]))
    assert (bad, outs.tolist(), values.tolist(), addrs.tolist()) == (-1, [9], [6], [4])


def test_the_same_txid_with_another_vout_or_one_changed_byte_is_another_key() -> None:
    cache = UtxoCache()
    txid = np.zeros((1, 32), np.uint8)
    cache.put(txid, np.array([0]), np.array([1]), np.array([1]), np.array([1]))
    for b in range(32):
        other = txid.copy()
        other[0, b] = 1
        assert cache.take(other, np.array([0]))[0] == 0
    assert cache.take(txid, np.array([1]))[0] == 0
    assert cache.take(txid, np.array([0]))[0] == -1


# ---------------------------------------------------------------------------------------------
# the writer: the cache is the committed chain's UTXO set, however it was reached


def entries(w: StoreWriter) -> set[tuple[int, int, int, int]]:
    c = w.utxos
    full = np.flatnonzero(c.fp)
    return set(
        zip(
            c.fp[full].tolist(),
            c.meta[full].tolist(),
            c.value[full].tolist(),
            c.addr[full].tolist(),
            strict=True,
        )
    )


def utxo_set_of_arrays(w: StoreWriter) -> set[int]:
    """Output ids that are unspent and not OP_RETURN, from the committed arrays."""
    n_out = w.counts["outputs"]
    spent = np.asarray(w._array("output_spent_by_tx", n_out))
    kind = np.asarray(w._array("output_script_type", n_out))
    return set(np.flatnonzero((spent == layout.NONE32) & (kind != 9)).tolist())


def open_writer(data: Path) -> StoreWriter:
    return StoreWriter.open(data, layout.read_manifest(data)["network"])  # type: ignore[index]


def test_the_loaded_the_rebuilt_and_the_caught_up_cache_are_the_utxo_set(
    nbitcoin_store: Path, tmp_path: Path
) -> None:
    data = tmp_path / "store"
    shutil.copytree(nbitcoin_store, data)
    w = open_writer(data)  # loads the cache the ingest saved
    try:
        loaded = entries(w)
        outs = {m & int(utxocache.OUT_MASK) for _, m, _, _ in loaded}
        assert len(loaded) == w.utxos.used > 0 and outs == utxo_set_of_arrays(w)
        values = np.asarray(w._array("output_value", w.counts["outputs"]))
        address = np.asarray(w._array("output_address", w.counts["outputs"]))
        for _, m, v, a in loaded:
            o = m & int(utxocache.OUT_MASK)
            assert (v, a) == (int(values[o]), int(address[o]))
    finally:
        w.abort()
    state_path = data / "index" / "state.json"
    state = json.loads(state_path.read_text())
    assert "utxo_used" in state
    del state["utxo_used"]  # as a store saved before the cache existed: rebuilt from scratch
    state_path.write_text(json.dumps(state))
    w = open_writer(data)
    try:
        assert entries(w) == loaded
    finally:
        w.abort()


def test_a_writer_reopened_after_runs_and_a_lost_save_links_as_one_run(tmp_path: Path) -> None:
    """Ingest the 600 real blocks in slices of a few commits, each by a fresh writer; between
    two of them, put back an older saved cache (as after a crash: the cache is saved at close,
    the commits went on): the arrays and tables equal one uninterrupted ingest's."""
    blocks = copy_nbitcoin(tmp_path / "blocks")
    whole = tmp_path / "whole"
    ingest_blocks_dir(blocks, whole, batch_bytes=2000)
    data = tmp_path / "parts"
    runs, saved = 0, None
    while True:
        commits = [0]

        def stop(commits: list[int] = commits) -> bool:
            commits[0] += 1
            return commits[0] >= 10

        report = ingest_blocks_dir(blocks, data, batch_bytes=2000, stop=stop)
        runs += 1
        if runs == 2:
            saved = tmp_path / "index-saved"
            shutil.copytree(data / "index", saved)
        if runs == 4:  # the cache of run 2 with the chain of run 4: caught up at the next open
            assert saved is not None
            shutil.rmtree(data / "index")
            shutil.copytree(saved, data / "index")
        if not report.stopped:
            break
    assert runs > 4
    for name in layout.ARRAYS:
        a, b = layout.array_path(whole, name), layout.array_path(data, name)
        assert a.read_bytes() == b.read_bytes(), name
    from tests.conftest import dump_views

    assert dump_views(data) == dump_views(whole)
    w1, w2 = open_writer(whole), open_writer(data)
    try:
        assert entries(w1) == entries(w2)
    finally:
        w1.abort()
        w2.abort()


def test_catching_up_from_an_early_save_gives_the_full_cache(
    nbitcoin_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catch-up deletes the earlier outputs that later inputs spent (found at random) and
    adds the later unspent outputs: the entries of the uninterrupted ingest's cache."""
    blocks = copy_nbitcoin(tmp_path / "blocks")
    data = tmp_path / "store"
    commits = [0]

    def stop() -> bool:
        commits[0] += 1
        return commits[0] >= 20

    ingest_blocks_dir(blocks, data, batch_bytes=2000, stop=stop)
    saved = tmp_path / "index-early"
    shutil.copytree(data / "index", saved)
    early_txs = json.loads((saved / "state.json").read_text())["txs"]
    ingest_blocks_dir(blocks, data, batch_bytes=2000)
    shutil.rmtree(data / "index")
    shutil.copytree(saved, data / "index")
    starts: list[int] = []
    rebuild = StoreWriter._rebuild_utxos

    def counted(self: StoreWriter, first_tx: int) -> None:
        starts.append(first_tx)
        rebuild(self, first_tx)

    monkeypatch.setattr(StoreWriter, "_rebuild_utxos", counted)
    w = open_writer(data)  # catches up from early_txs
    try:
        assert starts == [early_txs]  # caught up, not rebuilt from scratch
        assert 0 < early_txs < w.counts["txs"]
        caught_up = entries(w)
    finally:
        w.abort()
    ref_data = tmp_path / "ref"
    shutil.copytree(nbitcoin_store, ref_data)
    ref = open_writer(ref_data)
    try:
        assert caught_up == entries(ref)
    finally:
        ref.abort()


# ---------------------------------------------------------------------------------------------
# inputs the cache cannot resolve


def _chain_error(tmp_path: Path, build: ChainBuilder) -> InputError:
    blocks = build.write(tmp_path / "blocks")
    with pytest.raises(InputError) as info:
        ingest_blocks_dir(blocks, tmp_path / "data", network="regtest")
    return info.value


def test_spending_twice_unknown_outputs_and_op_return_are_input_errors(tmp_path: Path) -> None:
    base = ChainBuilder()
    for _ in range(3):
        base.add_block()
    cb1 = base.blocks[1].txs[0]
    cb2 = base.blocks[2].txs[0]

    double = ChainBuilder(list(base.blocks))
    a = spend([(cb1, 0)], [(10, p2wpkh("a"))])
    double.add_block([a])
    double.add_block([spend([(cb1, 0)], [(10, p2wpkh("b"))])])
    e = _chain_error(tmp_path / "double", double)
    assert "already spent" in e.message and e.field == "input prevout"

    same_batch = ChainBuilder(list(base.blocks))
    same_batch.add_block([spend([(cb2, 0)], [(1, p2wpkh("c"))]), spend([(cb2, 0)], [(1, b"\x51")])])
    assert "already spent" in _chain_error(tmp_path / "same", same_batch).message

    vout = ChainBuilder(list(base.blocks))
    vout.add_block([spend([(cb2, 5)], [(1, p2wpkh("d"))])])
    assert (
        "index the previous transaction does not have" in _chain_error(tmp_path / "v", vout).message
    )

    unknown = ChainBuilder(list(base.blocks))
    unknown.add_block([spend([(a, 0)], [(1, p2wpkh("e"))])])  # a is in no block here
    assert "unknown transaction" in _chain_error(tmp_path / "u", unknown).message

    op_return = ChainBuilder(list(base.blocks))
    burn = spend([(cb2, 0)], [(0, b"\x6a\x04abcd"), (5, p2wpkh("f"))])
    op_return.add_block([burn])
    op_return.add_block([spend([(burn, 0)], [(0, p2wpkh("g"))])])
    assert "OP_RETURN" in _chain_error(tmp_path / "o", op_return).message


def test_keys_given_per_tx_are_the_keys_given_per_outpoint() -> None:
    rng = np.random.default_rng(3)
    txids = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    tx_local = np.sort(rng.integers(0, 50, 400))
    vouts = rng.integers(0, 3000, 400)
    per_tx = utxocache.keys_of(txids, vouts, tx_local)
    per_row = utxocache.keys_of(txids[tx_local], vouts)
    assert (per_tx[0] == per_row[0]).all() and (per_tx[1] == per_row[1]).all()
    assert (per_tx[1] < 1 << 24).all() and (per_tx[0] != 0).all()
