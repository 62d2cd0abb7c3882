"""Open-addressing hash tables over fixed-width byte keys, in numba.

The tag storage maps a tag's address key (kind, length, payload) to its row with it. (It was the
address index's delta until that index's format 2, store/addrindex.py, which keeps 96-bit key
hashes instead of reading keys back, and the writer's outpoint index, txid -> tx id, until the
UTXO cache, store/utxocache.py, replaced it.)

Each slot stores a 64-bit fingerprint of the key and a 32-bit id: 12 bytes a slot, at most 70%
full, so about 17 bytes per entry. Full keys are not kept in the table: when a fingerprint
matches, the key is compared byte for byte with the stored key of that id (the memory-mapped
`address_key` array), so a fingerprint collision can never link two different addresses. See
docs/design/store.md for the mainnet budget.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = np.uint64(0)
MAX_LOAD = 0.7


@njit(cache=True, nogil=True)
def fingerprints(keys):
    """64-bit FNV-1a of each row, finished with splitmix64; never 0 (0 marks an empty slot)."""
    n = keys.shape[0]
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(keys.shape[1]):
            h = (h ^ np.uint64(keys[i, j])) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        if h == np.uint64(0):
            h = np.uint64(1)
        out[i] = h
    return out


@njit(cache=True, nogil=True)
def _same_key(keys, i, stored_old, stored_new, n_old, ident):
    if ident < n_old:
        for j in range(keys.shape[1]):
            if keys[i, j] != stored_old[ident, j]:
                return False
    else:
        k = ident - n_old
        for j in range(keys.shape[1]):
            if keys[i, j] != stored_new[k, j]:
                return False
    return True


@njit(cache=True, nogil=True)
def probe(
    table_fp, table_id, fps, keys, stored_old, stored_new, n_old, insert_mode, new_ids, out_ids
):
    """Look up (and maybe insert) each key; return the number of occupied slots added.

    insert_mode: 0 = lookup only (missing keys get id -1); 2 = insert with id new_ids[i],
    overwriting the id of an equal key (a later duplicate txid supersedes the earlier one, as
    BIP30 allowed twice). (Lookup-or-insert of a batch is `_lookup_or_insert`.)
    `stored_old` holds the keys of ids below n_old, `stored_new` those from n_old on.
    """
    mask = np.uint64(table_fp.shape[0] - 1)
    added = 0
    for i in range(fps.shape[0]):
        fp = fps[i]
        slot = fp & mask
        while True:
            cur = table_fp[slot]
            if cur == EMPTY:
                if insert_mode == 0:
                    out_ids[i] = -1
                else:
                    table_fp[slot] = fp
                    table_id[slot] = np.uint32(new_ids[i])
                    out_ids[i] = new_ids[i]
                    added += 1
                break
            if cur == fp:
                ident = np.int64(table_id[slot])
                if _same_key(keys, i, stored_old, stored_new, n_old, ident):
                    if insert_mode == 2:
                        table_id[slot] = np.uint32(new_ids[i])
                        out_ids[i] = new_ids[i]
                    else:
                        out_ids[i] = ident
                    break
            slot = (slot + np.uint64(1)) & mask
    return added


@njit(cache=True, nogil=True)
def find(table_fp, table_id, fps, keys, stored, out_ids):
    """Lookup only, over tables that may be read-only (memory-mapped by readers): the id of
    each key, -1 where absent. Ids at or beyond `stored.shape[0]` are not trusted (-1)."""
    mask = np.uint64(table_fp.shape[0] - 1)
    n_stored = stored.shape[0]
    for i in range(fps.shape[0]):
        fp = fps[i]
        slot = fp & mask
        out_ids[i] = -1
        while True:
            cur = table_fp[slot]
            if cur == EMPTY:
                break
            if cur == fp:
                ident = np.int64(table_id[slot])
                if ident < n_stored:
                    same = True
                    for j in range(keys.shape[1]):
                        if keys[i, j] != stored[ident, j]:
                            same = False
                            break
                    if same:
                        out_ids[i] = ident
                        break
            slot = (slot + np.uint64(1)) & mask


@njit(cache=True, nogil=True)
def _lookup_or_insert(
    table_fp, table_id, fps, keys, stored_old, n_old, new_keys, new_rows, out_ids
):
    """One pass: the id of each key, inserting unseen keys with ids n_old, n_old + 1, ...

    A key seen twice in the batch gets one id (its second lookup finds the first insert, whose
    key is compared against `new_keys`). Returns how many keys were new.
    """
    mask = np.uint64(table_fp.shape[0] - 1)
    n_new = 0
    width = keys.shape[1]
    for i in range(fps.shape[0]):
        fp = fps[i]
        slot = fp & mask
        while True:
            cur = table_fp[slot]
            if cur == EMPTY:
                ident = n_old + n_new
                table_fp[slot] = fp
                table_id[slot] = np.uint32(ident)
                for j in range(width):
                    new_keys[n_new, j] = keys[i, j]
                new_rows[n_new] = i
                out_ids[i] = ident
                n_new += 1
                break
            if cur == fp:
                ident = np.int64(table_id[slot])
                same = True
                if ident < n_old:
                    for j in range(width):
                        if keys[i, j] != stored_old[ident, j]:
                            same = False
                            break
                else:
                    for j in range(width):
                        if keys[i, j] != new_keys[ident - n_old, j]:
                            same = False
                            break
                if same:
                    out_ids[i] = ident
                    break
            slot = (slot + np.uint64(1)) & mask
    return n_new


@njit(cache=True, nogil=True)
def _reinsert(new_fp, new_id, old_fp, old_id):
    mask = np.uint64(new_fp.shape[0] - 1)
    for s in range(old_fp.shape[0]):
        fp = old_fp[s]
        if fp == EMPTY:
            continue
        slot = fp & mask
        while new_fp[slot] != EMPTY:
            slot = (slot + np.uint64(1)) & mask
        new_fp[slot] = fp
        new_id[slot] = old_id[s]


class HashIndex:
    """A growable table of (fingerprint, uint32 id) slots over keys stored elsewhere.

    Example::

        index = HashIndex()
        ids = index.lookup(keys, stored_keys)
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        capacity = max(1 << 10, 1 << int(np.ceil(np.log2(capacity))))
        self.table_fp = np.zeros(capacity, np.uint64)
        self.table_id = np.zeros(capacity, np.uint32)
        self.used = 0

    @property
    def capacity(self) -> int:
        return int(self.table_fp.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.table_fp.nbytes + self.table_id.nbytes)

    def reserve(self, extra: int) -> None:
        """Grow (doubling) so that `extra` more entries keep the load under MAX_LOAD."""
        need = self.used + extra
        capacity = self.capacity
        while need > capacity * MAX_LOAD:
            capacity *= 2
        if capacity != self.capacity:
            new_fp = np.zeros(capacity, np.uint64)
            new_id = np.zeros(capacity, np.uint32)
            _reinsert(new_fp, new_id, self.table_fp, self.table_id)
            self.table_fp, self.table_id = new_fp, new_id

    def lookup(self, keys: np.ndarray, stored: np.ndarray) -> np.ndarray:
        """Ids of `keys` (rows of uint8), -1 where absent; `stored[id]` is the key of id."""
        out = np.empty(keys.shape[0], np.int64)
        empty = np.zeros((0, keys.shape[1]), np.uint8)
        probe(
            self.table_fp,
            self.table_id,
            fingerprints(keys),
            keys,
            stored,
            empty,
            stored.shape[0],
            0,
            out,
            out,
        )
        return out

    def insert(
        self, keys: np.ndarray, ids: np.ndarray, stored_old: np.ndarray, stored_new: np.ndarray
    ) -> None:
        """Insert keys with the given ids (an equal key already present takes the new id)."""
        self.reserve(keys.shape[0])
        out = np.empty(keys.shape[0], np.int64)
        self.used += probe(
            self.table_fp,
            self.table_id,
            fingerprints(keys),
            keys,
            stored_old,
            stored_new,
            stored_old.shape[0],
            2,
            ids.astype(np.int64),
            out,
        )

    def lookup_or_add(
        self, keys: np.ndarray, stored_old: np.ndarray, first_new_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids for `keys`, adding the unseen ones with consecutive ids from `first_new_id`.

        Returns (ids, new_rows): new_rows are the row numbers of `keys` that received new ids,
        in id order; the caller appends `keys[new_rows]` to its key store.
        """
        if first_new_id != stored_old.shape[0]:
            raise ValueError("new ids must follow the stored keys")
        n = keys.shape[0]
        self.reserve(n)  # room for the worst case: every key new
        ids = np.empty(n, np.int64)
        new_keys = np.empty_like(keys)
        new_rows = np.empty(n, np.int64)
        n_new = _lookup_or_insert(
            self.table_fp,
            self.table_id,
            fingerprints(keys),
            keys,
            stored_old,
            first_new_id,
            new_keys,
            new_rows,
            ids,
        )
        self.used += int(n_new)
        return ids, new_rows[:n_new]

    def save(self, path_prefix: str) -> None:
        np.save(path_prefix + ".fp.npy", self.table_fp)
        np.save(path_prefix + ".id.npy", self.table_id)

    @classmethod
    def load(cls, path_prefix: str, used: int) -> HashIndex:
        index = cls.__new__(cls)
        index.table_fp = np.load(path_prefix + ".fp.npy")
        index.table_id = np.load(path_prefix + ".id.npy")
        index.used = used
        return index
