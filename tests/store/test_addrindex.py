"""The sharded address index gives the single table's ids, survives growth, stale entries and an
unclean close, and answers readers."""

from __future__ import annotations

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
