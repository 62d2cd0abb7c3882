"""The hash indexes give equal keys one id and different keys different ids, collisions or not."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chainsleuth.store.hashindex import HashIndex, _lookup_or_insert


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=300), st.integers(0, 2**32))
def test_lookup_or_add_numbers_distinct_keys_consecutively(labels: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    alphabet = rng.integers(0, 256, (41, 43), dtype=np.uint8)
    index = HashIndex(16)
    first = np.array(labels[: len(labels) // 2], dtype=np.int64)
    second = np.array(labels[len(labels) // 2 :], dtype=np.int64)
    stored = np.zeros((0, 43), np.uint8)
    seen: dict[int, int] = {}
    for part in (first, second):
        keys = alphabet[part]
        ids, new_rows = index.lookup_or_add(keys, stored, stored.shape[0])
        stored = np.concatenate([stored, keys[new_rows]])
        for label, ident in zip(part.tolist(), ids.tolist(), strict=True):
            assert seen.setdefault(label, ident) == ident
    assert sorted(seen.values()) == list(range(len(seen)))
    assert all((stored[seen[label]] == alphabet[label]).all() for label in seen)


def test_keys_with_the_same_fingerprint_still_get_their_own_ids() -> None:
    table_fp = np.zeros(64, np.uint64)
    table_id = np.zeros(64, np.uint32)
    keys = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [7, 8, 9]], np.uint8)
    fps = np.full(4, 12345, np.uint64)  # every key collides
    new_keys = np.empty_like(keys)
    new_rows = np.empty(4, np.int64)
    ids = np.empty(4, np.int64)
    n_new = _lookup_or_insert(
        table_fp, table_id, fps, keys, np.zeros((0, 3), np.uint8), 0, new_keys, new_rows, ids
    )
    assert n_new == 3
    assert ids.tolist() == [0, 1, 0, 2]
    assert new_rows[:n_new].tolist() == [0, 1, 3]


def test_growing_the_table_keeps_every_id() -> None:
    rng = np.random.default_rng(7)
    keys = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    index = HashIndex(16)
    ids, new_rows = index.lookup_or_add(keys, np.zeros((0, 32), np.uint8), 0)
    assert ids.tolist() == list(range(5000)) and new_rows.shape[0] == 5000
    assert index.capacity * 0.7 >= index.used
    assert index.lookup(keys[::-1], keys).tolist() == list(range(4999, -1, -1))
