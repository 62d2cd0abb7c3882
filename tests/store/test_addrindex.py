"""The address index gives the single table's ids, survives growth, merges, stale entries, an
interrupted merge, a rollback and a reopen, reads no key to trust a match, and answers readers."""

from __future__ import annotations

import json
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


def _files(tmp_path: Path) -> dict[str, int]:
    root = tmp_path / addrindex.DIR_NAME
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.bin")}


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
            sharded.merge()  # the next batch finds these in a table, not the delta


def test_the_key_hash_is_siphash_2_4_128() -> None:
    """The reference implementation's first two 128-bit test vectors (key 00..0f, messages of
    0 and 1 bytes 00..): the first 64 bits and the next 32 of its output."""
    secret = (0x0706050403020100, 0x0F0E0D0C0B0A0908)
    for n, want in ((0, "a3817f04ba25a8e66df67214"), (1, "da87c1d86b99af4434765911")):
        hi, lo = addrindex.key_hash(np.arange(n, dtype=np.uint8).reshape(1, n), secret)
        got = int(hi[0]).to_bytes(8, "little") + int(lo[0]).to_bytes(4, "little")
        assert got.hex() == want


def test_growth_keeps_every_id_and_maps_one_shard_at_a_time(tmp_path: Path) -> None:
    keys = _keys(200_000, 1)
    index = AddressIndex.open(tmp_path, keys[:0])
    for lo in range(0, keys.shape[0], 50_000):
        part = keys[lo : lo + 50_000]
        ids, new_rows = index.lookup_or_add(part, keys[:lo], lo)
        assert ids.tolist() == list(range(lo, lo + 50_000)) and new_rows.shape[0] == 50_000
        index.vouch(lo + 50_000)
        index.merge()
    assert sum(t.n for t in index.tables) == keys.shape[0] and index.delta.used == 0
    assert index.find(keys[::-1]).tolist() == list(range(keys.shape[0] - 1, -1, -1))
    assert index.find(_keys(1000, 99)).tolist() == [-1] * 1000
    # one shard's entries (old and merged) are what a merge or a probe holds, not the table
    largest = max(int(t.counts.max()) for t in index.tables) * addrindex.ENTRY_BYTES
    assert index.peak_mapped_bytes <= 2 * largest
    assert index.peak_mapped_bytes < index.nbytes / 20
    # each table's shards are sorted by (hi, lo | id) and its fences are their pages' first hi
    for t in index.tables:
        for s in (0, 77, 255):
            e = np.fromfile(t.path(s), np.uint64).reshape(-1, 2)
            assert (np.lexsort((e[:, 1], e[:, 0])) == np.arange(e.shape[0])).all()
            assert t.shard_fences(s).tolist() == e[:: addrindex.PAGE_ENTRIES, 0].tolist()
        # mapped, not read into memory: a cold probe reads its shard's fence pages, not all
        assert isinstance(t.fences, np.memmap) and not t.fences.flags.writeable
    index.close()


def test_merges_go_to_the_recent_table_then_the_base_and_a_reopen_gives_the_same_ids(
    tmp_path: Path,
) -> None:
    keys = _keys(30_000, 6)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:20_000], keys[:0], 0)
    index.save(20_000)
    assert [t.n for t in index.tables] == [20_000]
    gen_base = index.tables[0].gen
    index.lookup_or_add(keys[20_000:23_000], keys[:20_000], 20_000)
    index.save(23_000)  # 3,000 * 4 <= 20,000: a recent table; the base is not rewritten
    assert [t.n for t in index.tables] == [20_000, 3000] and index.tables[0].gen == gen_base
    index.lookup_or_add(keys[23_000:26_000], keys[:23_000], 23_000)
    index.save(26_000)  # 6,000 * 4 > 20,000: all into a new base
    assert [t.n for t in index.tables] == [26_000] and index.tables[0].gen != gen_base
    index.lookup_or_add(keys[26_000:27_000], keys[:26_000], 26_000)
    index.save(27_000)
    assert [t.n for t in index.tables] == [26_000, 1000]
    index.close()
    assert sorted(p.name for p in (tmp_path / addrindex.DIR_NAME).iterdir()) == sorted(
        ["state.json"] + [t.dir.name for t in index.tables]
    )  # the old generations are gone
    again = AddressIndex.open(tmp_path, keys[:27_000])
    assert again.delta.used == 0 and again.next_id == 27_000
    assert again.find(keys).tolist() == list(range(27_000)) + [-1] * 3000
    ids, new_rows = again.lookup_or_add(keys[::-1], keys[:27_000], 27_000)
    # the new keys are numbered in order of first appearance: keys[29,999] first
    assert ids.tolist() == list(range(27_000, 30_000)) + list(range(26_999, -1, -1))
    found, covered = addrindex.find_ids(tmp_path, keys[[0, 26_999, 27_000]], keys[:27_000])
    assert covered == 27_000 and found.tolist() == [0, 26_999, -1]
    again.close()


def test_equal_hash_prefixes_across_pages_get_the_right_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forced collision of the first 64 hash bits (4 distinct values for 6,000 keys: runs of
    equal `hi` over many pages of a shard): the other 32 bits tell the keys apart."""
    real = addrindex.key_hash

    def colliding(keys: np.ndarray, secret: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        hi, lo = real(keys, secret)
        return (hi >> np.uint64(62)) << np.uint64(62) | np.uint64(1), lo

    monkeypatch.setattr(addrindex, "key_hash", colliding)
    keys = _keys(6000, 7)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:4000], keys[:0], 0)
    index.save(4000)
    ids, new_rows = index.lookup_or_add(keys[::-1], keys[:4000], 4000)
    assert ids.tolist() == list(range(4000, 6000)) + list(range(3999, -1, -1))
    index.save(6000)
    want = np.array(list(range(4000)) + list(range(5999, 3999, -1)))
    assert index.find(keys).tolist() == want.tolist()
    stored = keys[np.argsort(want)]
    found, covered = addrindex.find_ids(tmp_path, keys[::7], stored)
    assert covered == 6000 and found.tolist() == want[::7].tolist()
    index.close()


def test_a_full_96_bit_collision_of_two_stored_keys_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stored addresses with one key hash would share an id: a rebuild says so instead."""
    real = addrindex.key_hash
    keys = _keys(100, 8)

    def colliding(k: np.ndarray, secret: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        hi, lo = real(k, secret)
        same = (k == keys[50]).all(axis=1)
        hi[same], lo[same] = real(keys[3:4], secret)[0][0], real(keys[3:4], secret)[1][0]
        return hi, lo

    monkeypatch.setattr(addrindex, "key_hash", colliding)
    with pytest.raises(addrindex.IndexCollision, match="address id 50"):
        AddressIndex.open(tmp_path, keys)


def test_entries_of_uncommitted_ids_are_never_believed_after_a_crash(tmp_path: Path) -> None:
    keys = _keys(5000, 2)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:3000], keys[:0], 0)
    index.save(3000)
    # an uncommitted batch gives ids 3000.. to other keys and reaches a table (a merge), then
    # the run dies without committing them
    other = _keys(1000, 3)
    index.lookup_or_add(other, keys[:3000], 3000)
    index.merge()
    assert index.find(other).tolist() == list(range(3000, 4000))  # this writer trusts them
    assert addrindex.read_state(tmp_path)["addresses"] == 3000  # type: ignore[index]
    index.close()
    # the next writer: committed keys are keys[:3000]; the chain goes on with keys[3000:]
    again = AddressIndex.open(tmp_path, keys[:3000])
    assert again.find(other).tolist() == [-1] * 1000
    ids, new_rows = again.lookup_or_add(keys[3000:], keys[:3000], 3000)
    assert ids.tolist() == list(range(3000, 5000)) and new_rows.shape[0] == 2000
    again.merge()  # the stale entries of ids 3000.. are dropped
    assert sum(t.n for t in again.tables) == 5000
    assert again.find(other).tolist() == [-1] * 1000
    assert again.find(keys).tolist() == list(range(5000))
    # readers see the same, and nothing beyond what the state vouches for
    again.save(5000)
    found, covered = addrindex.find_ids(tmp_path, keys[[4999, 0, 17]], keys)
    assert covered == 5000 and found.tolist() == [4999, 0, 17]
    found, covered = addrindex.find_ids(tmp_path, keys[[4999, 0]], keys[:4000])
    assert covered == 4000 and found.tolist() == [-1, 0]
    again.close()


def test_an_interrupted_merge_leaves_the_old_index_and_reruns_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = _keys(8000, 9)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:5000], keys[:0], 0)
    index.save(5000)
    state_before = (tmp_path / addrindex.DIR_NAME / "state.json").read_text()
    index.lookup_or_add(keys[5000:], keys[:5000], 5000)
    index.vouch(8000)
    real_merge = addrindex._merge
    calls = {"n": 0}

    def dies_midway(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] > 100:  # some shards of the new generation are written
            raise OSError("disk gone")
        return int(real_merge(*args))

    monkeypatch.setattr(addrindex, "_merge", dies_midway)
    with pytest.raises(OSError, match="disk gone"):
        index.save(8000)
    monkeypatch.setattr(addrindex, "_merge", real_merge)
    assert (tmp_path / addrindex.DIR_NAME / "state.json").read_text() == state_before
    again = AddressIndex.open(tmp_path, keys)  # the keys were committed
    assert sorted(p.name for p in (tmp_path / addrindex.DIR_NAME).iterdir()) == sorted(
        ["state.json"] + [t.dir.name for t in again.tables]
    )  # the half-written generation is gone
    assert again.next_id == 8000 and again.delta.used == 3000  # caught up from the keys
    assert again.find(keys).tolist() == list(range(8000))
    again.save(8000)
    assert again.find(keys).tolist() == list(range(8000)) and again.delta.used == 0
    again.close()


def test_a_full_delta_is_merged_and_batches_never_write_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(addrindex, "DELTA_MAX", 3000)
    keys = _keys(20_000, 5)
    index = AddressIndex.open(tmp_path, keys[:0])
    for lo in range(0, 20_000, 1000):
        before = _files(tmp_path)
        ids, _ = index.lookup_or_add(keys[lo : lo + 1000], keys[:lo], lo)
        assert ids.tolist() == list(range(lo, lo + 1000))
        merged = index.delta.used == 0
        assert merged or before == _files(tmp_path)  # the tables change only at a merge
        assert merged == ((lo + 1000) % 3000 == 0)
    assert index.base_n == 18_000 and index.delta.used == 2000
    assert index.peak_delta_bytes <= addrindex._Delta(int(4000 / 0.7)).nbytes
    assert index.find(keys).tolist() == list(range(20_000))
    index.close()


def test_a_missing_state_rebuilds_from_the_keys_and_a_clip_lowers_the_vouched_count(
    tmp_path: Path,
) -> None:
    keys = _keys(3000, 4)
    index = AddressIndex.open(tmp_path, keys)  # no index yet: built from the stored keys
    assert index.find(keys).tolist() == list(range(3000))
    index.save(3000)
    index.clip(1000)  # a rollback to 1000 addresses
    assert addrindex.read_state(tmp_path)["addresses"] == 1000  # type: ignore[index]
    index.close()
    (tmp_path / "address_index" / "state.json").unlink()
    rebuilt = AddressIndex.open(tmp_path, keys[:1000])
    assert rebuilt.delta.used == 1000 and rebuilt.tables == []  # in the delta until a merge
    rebuilt.save(1000)
    assert sum(t.n for t in rebuilt.tables) == 1000 and rebuilt.delta.used == 0
    assert rebuilt.find(keys).tolist() == list(range(1000)) + [-1] * 2000
    rebuilt.close()


def test_ids_given_again_after_a_rollback_never_match_the_removed_keys(tmp_path: Path) -> None:
    """A rollback removes ids that a table holds; the chain then gives those ids to other keys,
    and a removed key that comes back gets a new id, not its old one (now another key's)."""
    keys = _keys(4000, 10)
    index = AddressIndex.open(tmp_path, keys[:0])
    index.lookup_or_add(keys[:3000], keys[:0], 0)
    index.save(3000)  # ids 0..2999 in the base
    index.clip(2000)  # blocks with ids 2000.. rolled back
    stored = keys[:2000]
    index._catch_up(stored)
    fork = keys[3000:4000]  # the other branch's new addresses take ids 2000..2999
    ids, new_rows = index.lookup_or_add(fork, stored, 2000)
    assert ids.tolist() == list(range(2000, 3000))
    stored = np.concatenate([stored, fork])
    back = keys[2000:2500]  # then removed addresses come back: new ids
    ids, new_rows = index.lookup_or_add(back, stored, 3000)
    assert ids.tolist() == list(range(3000, 3500))
    stored = np.concatenate([stored, back])
    index.save(3500)
    want = list(range(2000)) + list(range(3000, 3500)) + [-1] * 500 + list(range(2000, 3000))
    assert index.find(keys).tolist() == want
    index.close()
    again = AddressIndex.open(tmp_path, stored)
    assert again.find(keys).tolist() == want
    found, covered = addrindex.find_ids(tmp_path, keys, stored)
    assert covered == 3500 and found.tolist() == want
    again.close()


def test_an_index_of_the_earlier_format_is_rebuilt_not_misread(tmp_path: Path) -> None:
    """The earlier index (hash-table shards, a state without `format`): readers ignore it and
    the next writer deletes it and puts every key in again."""
    keys = _keys(2000, 11)
    root = tmp_path / addrindex.DIR_NAME
    root.mkdir()
    (root / "state.json").write_text(
        json.dumps({"shard_bits": 8, "addresses": 2000, "used": [0] * 256, "clean": True})
    )
    for s in range(256):
        (root / f"shard-{s:03d}.bin").write_bytes(b"\x01" * 8192)  # garbage to a reader
    assert addrindex.read_state(tmp_path) is None
    found, covered = addrindex.find_ids(tmp_path, keys[:5], keys)
    assert covered == 0 and found.tolist() == [-1] * 5  # the caller scans
    index = AddressIndex.open(tmp_path, keys)
    assert not list(root.glob("shard-*.bin"))
    assert index.find(keys).tolist() == list(range(2000))
    index.save(2000)
    found, covered = addrindex.find_ids(tmp_path, keys[::-1], keys)
    assert covered == 2000 and found.tolist() == list(range(1999, -1, -1))
    index.close()


def test_stores_draw_their_own_secret(tmp_path: Path) -> None:
    keys = _keys(10, 12)
    a = AddressIndex.open(tmp_path / "a", keys)
    b = AddressIndex.open(tmp_path / "b", keys)
    assert a.secret != b.secret
    assert AddressIndex.open(tmp_path / "a", keys).secret == a.secret  # kept in state.json
