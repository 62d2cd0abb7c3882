"""The sharded address index gives the single table's ids, survives growth, stale entries and an
unclean close, and answers readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.store import addrindex
from chainsleuth.store.addrindex import AddressIndex
from chainsleuth.store.hashindex import HashIndex

W = 43


def _keys(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, W), dtype=np.uint8)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=400), st.integers(0, 2**32))
def test_batches_get_the_ids_of_the_single_table(labels: list[int], seed: int) -> None:
    import tempfile

    alphabet = _keys(301, seed)
    with tempfile.TemporaryDirectory() as tmp:
        sharded = AddressIndex.open(Path(tmp), np.zeros((0, W), np.uint8))
        single = HashIndex(16)
        stored = np.zeros((0, W), np.uint8)
        cuts = sorted({0, len(labels), *(len(labels) * k // 3 for k in (1, 2))})
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            keys = alphabet[np.array(labels[lo:hi])]
            ids, new_rows = sharded.lookup_or_add(keys, stored, stored.shape[0])
            want, want_rows = single.lookup_or_add(keys, stored, stored.shape[0])
            assert ids.tolist() == want.tolist()
            assert new_rows.tolist() == want_rows.tolist()
            stored = np.concatenate([stored, keys[new_rows]])


@pytest.mark.parametrize("merge_slots", [addrindex.MERGE_SLOTS, 1 << 12])
def test_growth_keeps_every_id_and_maps_one_shard_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merge_slots: int
) -> None:
    """Also with the delta's table merged in many slices (1 << 12 slots)."""
    monkeypatch.setattr(addrindex, "MERGE_SLOTS", merge_slots)
    keys = _keys(200_000, 1)
    index = AddressIndex.open(tmp_path, keys[:0])
    for lo in range(0, keys.shape[0], 50_000):
        part = keys[lo : lo + 50_000]
        ids, new_rows = index.lookup_or_add(part, keys[:lo], lo)
        assert ids.tolist() == list(range(lo, lo + 50_000)) and new_rows.shape[0] == 50_000
        index.merge()  # each merge grows the shards (all about together: fingerprints are even)
    assert (index.used <= index.slots * addrindex.MAX_LOAD).all()
    assert index.used.sum() == keys.shape[0]
    assert index.find(keys[::-1], keys).tolist() == list(range(keys.shape[0] - 1, -1, -1))
    # the largest shard (twice, while it grows) is what is mapped, not the whole table
    assert index.peak_mapped_bytes <= 3 * int(index.slots.max()) * addrindex.SLOT_BYTES
    assert index.peak_mapped_bytes < index.nbytes / 20
    index.close()


def test_entries_of_uncommitted_ids_are_harmless_and_an_unclean_close_is_recounted(
    tmp_path: Path,
) -> None:
    keys = _keys(5000, 2)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:3000], keys[:0], 0)
    index.save(3000)
    assert addrindex.read_state(tmp_path)["clean"] is True  # type: ignore[index]
    # an uncommitted batch gives ids 3000.. to other keys and reaches the base (a merge), then
    # the run dies without saving
    other = _keys(1000, 3)
    index.lookup_or_add(other, keys[:3000], 3000)
    index.merge()
    assert addrindex.read_state(tmp_path)["clean"] is False  # type: ignore[index]
    index.close()
    # the next writer: committed keys are keys[:3000]; the chain goes on with keys[3000:]
    again = AddressIndex.open(tmp_path, keys[:3000])
    assert again.used.sum() == 4000  # recounted from the files, stale entries included
    ids, new_rows = again.lookup_or_add(keys[3000:], keys[:3000], 3000)
    assert ids.tolist() == list(range(3000, 5000)) and new_rows.shape[0] == 2000
    again.merge()  # the stale entries of ids 3000.. now lie beside the true ones in the base
    assert again.find(other, keys).tolist() == [-1] * 1000
    assert again.find(keys, keys).tolist() == list(range(5000))
    # readers see the same, and nothing beyond what the state vouches for
    again.save(5000)
    found, covered = addrindex.find_ids(tmp_path, keys[[4999, 0, 17]], keys)
    assert covered == 5000 and found.tolist() == [4999, 0, 17]
    found, covered = addrindex.find_ids(tmp_path, keys[[4999, 0]], keys[:4000])
    assert covered == 4000 and found.tolist() == [-1, 0]
    again.close()


def test_a_full_delta_is_merged_and_batches_never_write_the_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(addrindex, "DELTA_MAX", 3000)
    keys = _keys(20_000, 5)
    index = AddressIndex.open(tmp_path, keys[:0])
    for lo in range(0, 20_000, 1000):
        before = {s: index._path(s).stat().st_mtime_ns for s in range(addrindex.N_SHARDS)}
        ids, _ = index.lookup_or_add(keys[lo : lo + 1000], keys[:lo], lo)
        assert ids.tolist() == list(range(lo, lo + 1000))
        merged = index.delta.used == 0
        after = {s: index._path(s).stat().st_mtime_ns for s in range(addrindex.N_SHARDS)}
        assert merged or before == after  # the base changes only at a merge
        assert merged == ((lo + 1000) % 3000 == 0)
    assert index.base_n == 18_000 and index.delta.used == 2000
    assert index.peak_delta_bytes <= addrindex.HashIndex(int(4000 / 0.7)).nbytes
    assert index.find(keys, keys).tolist() == list(range(20_000))
    index.close()


def test_a_missing_state_rebuilds_from_the_keys_and_a_clip_lowers_the_vouched_count(
    tmp_path: Path,
) -> None:
    keys = _keys(3000, 4)
    index = AddressIndex.open(tmp_path, keys)  # no index yet: built from the stored keys
    assert index.find(keys, keys).tolist() == list(range(3000))
    index.save(3000)
    index.clip(1000)  # a rollback to 1000 addresses
    assert addrindex.read_state(tmp_path)["addresses"] == 1000  # type: ignore[index]
    index.close()
    (tmp_path / "address_index" / "state.json").unlink()
    rebuilt = AddressIndex.open(tmp_path, keys[:1000])
    assert rebuilt.delta.used == 1000 and rebuilt.used.sum() == 0  # in the delta until a merge
    rebuilt.save(1000)
    assert rebuilt.used.sum() == 1000 and rebuilt.delta.used == 0
    assert rebuilt.find(keys, keys[:1000]).tolist() == list(range(1000)) + [-1] * 2000
    rebuilt.close()


def test_the_outpoint_rebuild_in_chunks_keeps_exactly_the_txs_with_an_unspent_output(
    nbitcoin_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chainsleuth.store import layout, writer
    from chainsleuth.store.writer import StoreWriter

    data = tmp_path / "store"
    shutil.copytree(nbitcoin_store, data)
    monkeypatch.setattr(writer, "COMPACT_CHUNK_TXS", 7)  # many chunks, some ending mid-block
    w = StoreWriter.open(data, layout.read_manifest(data)["network"])  # type: ignore[index]
    try:
        w._compact_outpoints()
        n_tx, n_out = w.counts["txs"], w.counts["outputs"]
        spent = np.asarray(w._array("output_spent_by_tx", n_out))
        first = np.asarray(w._array("tx_first_output", n_tx)).astype(np.int64)
        ends = np.append(first[1:], n_out)
        want = [t for t in range(n_tx) if (spent[first[t] : ends[t]] == layout.NONE32).any()]
        assert 0 < len(want) < n_tx and w._live_outpoints == len(want)
        txids = np.asarray(w._array("tx_txid", n_tx))
        found = w.outpoints.lookup(txids, txids)
        assert np.flatnonzero(found >= 0).tolist() == want
        assert (found[want] == np.array(want)).all()
    finally:
        w.abort()


def _rebuild_peak(n_tx: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Traced peak bytes (numpy reports its buffers to tracemalloc) of the outpoint rebuild on a
    synthetic chain of n_tx txs with 2 outputs each, 1 % of them unspent; and the live txs."""
    import tracemalloc
    from types import SimpleNamespace

    from chainsleuth.store import layout, writer
    from chainsleuth.store.hashindex import HashIndex

    rng = np.random.default_rng(5)
    arrays = {
        "tx_txid": rng.integers(0, 256, (n_tx, 32), dtype=np.uint8),
        "tx_first_output": np.arange(0, 2 * n_tx, 2, dtype=np.int64),
        "output_spent_by_tx": np.zeros(2 * n_tx, np.uint32),
    }
    arrays["output_spent_by_tx"][rng.choice(2 * n_tx, n_tx // 100, replace=False)] = layout.NONE32
    fake = SimpleNamespace(
        counts={"txs": n_tx, "outputs": 2 * n_tx},
        _array=lambda name, rows: arrays[name][:rows],
        outpoints=HashIndex(),
        _live_outpoints=0,
    )
    tracemalloc.start()
    try:
        writer.StoreWriter._compact_outpoints(fake)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, fake._live_outpoints


def test_the_outpoint_rebuild_works_in_chunks_of_the_chain_not_the_whole_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its working memory follows COMPACT_CHUNK_TXS, not the chain's length: a 4x longer chain
    costs about the same (it was ≈ 20 B per tx of the whole chunk, up to 335 MB at 2^24)."""
    from chainsleuth.store import writer

    assert writer.COMPACT_CHUNK_TXS <= 1 << 20 and writer.COMPACT_INSERT_TXS <= 1 << 18
    monkeypatch.setattr(writer, "COMPACT_CHUNK_TXS", 1 << 14)
    monkeypatch.setattr(writer, "COMPACT_INSERT_TXS", 1 << 12)
    _rebuild_peak(20_000, monkeypatch)  # the first call loads numba's code, traced too
    short, live_short = _rebuild_peak(100_000, monkeypatch)
    long, live_long = _rebuild_peak(400_000, monkeypatch)
    assert live_long > 3 * live_short > 0
    # beyond the chunk's ≈ 0.3 MB, only the live ids (4 B per live tx) grow with the chain
    assert short < 2 << 20 and long < short + 8 * live_long + (256 << 10), (short, long)
    # the control: one chunk as long as the chain makes the peak grow with it
    monkeypatch.setattr(writer, "COMPACT_CHUNK_TXS", 1 << 24)
    whole, _ = _rebuild_peak(400_000, monkeypatch)
    assert whole > long + 4 * 400_000, (long, whole)


def test_a_reopened_writer_keeps_its_last_outpoint_rebuild_and_does_not_rebuild_again(
    nbitcoin_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild rule compares the index with its size after the last rebuild. That size was
    not saved, so every writer opened on a chain with > COMPACT_MIN live txs (each `ingest`
    run, e.g. one block at the tip) rebuilt at its first append: 1.3 GB read at 20 M txs."""
    import json

    from chainsleuth.store import layout, writer
    from chainsleuth.store.writer import StoreWriter

    data = tmp_path / "store"
    shutil.copytree(nbitcoin_store, data)
    net = layout.read_manifest(data)["network"]  # type: ignore[index]
    monkeypatch.setattr(writer, "COMPACT_MIN", 0)  # the fixture's chain is small
    w = StoreWriter.open(data, net)
    try:
        w._compact_outpoints()
        live = w._live_outpoints
        w.save_indexes()
    finally:
        w.abort()
    assert live > 0
    rebuilds: list[int] = []
    rebuild = StoreWriter._compact_outpoints

    def counted(self: StoreWriter) -> None:
        rebuilds.append(self.outpoints.used)
        rebuild(self)

    monkeypatch.setattr(StoreWriter, "_compact_outpoints", counted)
    w = StoreWriter.open(data, net)
    try:
        assert w._live_outpoints == live
        w._maybe_compact_outpoints(1)
        assert rebuilds == []
    finally:
        w.abort()
    # a store saved before the count was kept: taken as just rebuilt, and the rule still works
    state_path = data / "index" / "state.json"
    state = json.loads(state_path.read_text())
    del state["outpoint_live"]
    state_path.write_text(json.dumps(state))
    w = StoreWriter.open(data, net)
    try:
        assert w._live_outpoints == w.outpoints.used > 0
        w._maybe_compact_outpoints(1)
        assert rebuilds == []
        w._live_outpoints = w.outpoints.used // 3  # the index has grown 3x since its rebuild
        w._maybe_compact_outpoints(1)
        assert len(rebuilds) == 1 and w._live_outpoints == live
    finally:
        w.abort()
