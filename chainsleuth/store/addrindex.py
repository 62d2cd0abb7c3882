"""The address index: address key -> dense address id, sharded on disk, resolved batch by batch.

Why sharded: a single in-memory hash table of every address costs ≈17 B per address (12-byte
slots at 70 % load), ≈24 GB at mainnet's ≈1.4 G addresses, more than ingest's 16 GB budget.
Here the table is split by the top `SHARD_BITS` bits of the key's 64-bit fingerprint into
2^SHARD_BITS files under `DATA/address_index/`, each an open-addressing table of 8-byte slots
(32-bit check, 32-bit id) that is memory-mapped only while one batch's keys of that shard are
resolved, then unmapped. The resident set holds one shard at a time (≈64 MB at mainnet, 3× that
while a shard grows); the rest of the table lives in the page cache, which the kernel can reclaim.
See docs/design/store.md ("The address index") for the sizes, measurements and page-cache
behaviour.

Slots: a key's fingerprint `fp` picks its shard (`fp >> 56`) and its 32-bit check
`(fp >> 24) & 0xFFFFFFFF` (0 is an empty slot, so a check of 0 becomes 1); its home slot is the
check's low bits, so a shard can grow (double) from its own slots without re-reading keys.
A check match is confirmed by comparing the full key with `address_key[id]`, so a collision can
never give two addresses one id.

Crash safety without copying the table: shards are updated in place, and every entry is verified
against the key of its id before it is believed, so an entry left by an uncommitted batch or a
rolled-back block is harmless (it either names the right id or matches nothing). `state.json`
records `addresses`: every id below it has an entry (flushed to disk before the state says so).
Ids at and above it are re-inserted from `address_key` when a writer opens the store; readers
scan them. A writer that did not close cleanly leaves `clean: false`, and the next one recounts
the occupied slots, since its per-shard counts are then out of date.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from chainsleuth.store.hashindex import HashIndex, fingerprints

#: Shards by the fingerprint's top bits: 256 shards of ≈64 MB each at mainnet.
SHARD_BITS = 8
N_SHARDS = 1 << SHARD_BITS
MIN_SLOTS = 1 << 10
MAX_LOAD = 0.7
SLOT_BYTES = 8  # (check u32, id u32)
DIR_NAME = "address_index"
#: Catch-up and rebuild insert `address_key` rows in chunks of this many (≈43 B each).
CHUNK_ROWS = 1 << 22


@njit(cache=True, nogil=True)
def _check(fp):
    c = np.uint32((fp >> np.uint64(24)) & np.uint64(0xFFFFFFFF))
    if c == np.uint32(0):
        c = np.uint32(1)
    return c


@njit(cache=True, nogil=True)
def _key_equal(keys, i, stored, ident):
    same = True
    for j in range(keys.shape[1]):
        if keys[i, j] != stored[ident, j]:
            same = False
            break
    return same


@njit(cache=True, nogil=True)
def _shard_find(slots, fps, keys, rows, stored, n_trust, out_ids):
    """out_ids[r] = the id of keys[r] for each r in `rows`, -1 where absent; only ids below
    `n_trust` (and `stored`'s length) are believed."""
    mask = np.uint32(slots.shape[0] - 1)
    n_trust = min(n_trust, stored.shape[0])
    for k in range(rows.shape[0]):
        r = rows[k]
        c = _check(fps[r])
        slot = c & mask
        out_ids[r] = -1
        while True:
            cur = slots[slot, 0]
            if cur == np.uint32(0):
                break
            if cur == c:
                ident = np.int64(slots[slot, 1])
                if ident < n_trust and _key_equal(keys, r, stored, ident):
                    out_ids[r] = ident
                    break
            slot = (slot + np.uint32(1)) & mask


@njit(cache=True, nogil=True)
def _shard_insert(slots, fps, keys, rows, ids, stored_old, stored_new):
    """Insert keys[r] with id ids[r] for r in `rows`; an entry whose id holds an equal key takes
    the new id. Ids below len(stored_old) have their keys there, the next len(stored_new) in
    stored_new; entries with other ids (left by an uncommitted run) never match.
    Returns the number of slots filled."""
    mask = np.uint32(slots.shape[0] - 1)
    n_old = stored_old.shape[0]
    n_new = stored_new.shape[0]
    added = 0
    for k in range(rows.shape[0]):
        r = rows[k]
        c = _check(fps[r])
        slot = c & mask
        while True:
            cur = slots[slot, 0]
            if cur == np.uint32(0):
                slots[slot, 0] = c
                slots[slot, 1] = np.uint32(ids[r])
                added += 1
                break
            if cur == c:
                ident = np.int64(slots[slot, 1])
                same = False
                if ident < n_old:
                    same = _key_equal(keys, r, stored_old, ident)
                elif ident - n_old < n_new:
                    same = _key_equal(keys, r, stored_new, ident - n_old)
                if same:
                    slots[slot, 1] = np.uint32(ids[r])
                    break
            slot = (slot + np.uint32(1)) & mask
    return added


@njit(cache=True, nogil=True)
def _shard_rehash(new_slots, old_slots):
    mask = np.uint32(new_slots.shape[0] - 1)
    for s in range(old_slots.shape[0]):
        c = old_slots[s, 0]
        if c == np.uint32(0):
            continue
        slot = c & mask
        while new_slots[slot, 0] != np.uint32(0):
            slot = (slot + np.uint32(1)) & mask
        new_slots[slot, 0] = c
        new_slots[slot, 1] = old_slots[s, 1]


def _by_shard(fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers grouped by shard (stable: each group in row order) and the group bounds."""
    shard = (fps >> np.uint64(64 - SHARD_BITS)).astype(np.int64)
    order = np.argsort(shard, kind="stable")
    bounds = np.searchsorted(shard[order], np.arange(N_SHARDS + 1))
    return order, bounds


class _Mapped:
    """One shard file memory-mapped as a (slots, 2) uint32 array for the length of a `with`.

    Takes a path (opened and closed around the map) or an open descriptor (the writer keeps one
    per shard: opening a file costs more than mapping it, measured 125 against 31 µs a shard).
    """

    def __init__(self, file: Path | int, writable: bool) -> None:
        self.file, self.writable = file, writable

    def __enter__(self) -> np.ndarray:
        if isinstance(self.file, int):
            self._fd = self.file
        else:
            self._fd = os.open(self.file, os.O_RDWR if self.writable else os.O_RDONLY)
        access = mmap.ACCESS_WRITE if self.writable else mmap.ACCESS_READ
        self._mm = mmap.mmap(self._fd, 0, access=access)
        if hasattr(mmap, "MADV_RANDOM"):
            # probes are scattered: without this each cold fault reads 128 KB around it
            self._mm.madvise(mmap.MADV_RANDOM)
        return np.frombuffer(self._mm, np.uint32).reshape(-1, 2)

    def __exit__(self, *exc: object) -> None:
        # the caller's array views must be gone (they are locals of the with block) before
        # the map can close; closing unmaps, so the shard's pages leave the resident set
        with contextlib.suppress(BufferError):  # an exception left a view alive: it closes
            self._mm.close()  # the map when it dies
        if not isinstance(self.file, int):
            os.close(self._fd)


def read_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((Path(data_dir) / DIR_NAME / "state.json").read_text())
    except (OSError, ValueError):
        return None
    if state.get("shard_bits") != SHARD_BITS:
        return None
    return state


def find_ids(data_dir: Path, keys: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, int]:
    """Read-only lookup for readers: (ids of `keys`, -1 where not found; `covered`).

    Every id below `covered` has an entry, so a key absent here is absent from `stored[:covered]`;
    the caller scans `stored[covered:]` (the addresses written since the index was last saved).
    Without a usable index `covered` is 0.
    """
    ids = np.full(keys.shape[0], -1, np.int64)
    state = read_state(data_dir)
    if state is None or keys.shape[0] == 0:
        return ids, 0
    covered = min(int(state["addresses"]), int(stored.shape[0]))
    fps = fingerprints(keys)
    order, bounds = _by_shard(fps)
    root = Path(data_dir) / DIR_NAME
    try:
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[s] : bounds[s + 1]]
            with _Mapped(root / f"shard-{s:03d}.bin", writable=False) as slots:
                _shard_find(slots, fps, keys, rows, stored, covered, ids)
                del slots
    except (OSError, ValueError):
        return np.full(keys.shape[0], -1, np.int64), 0
    return ids, covered


class AddressIndex:
    """The writer's address index (one writer at a time: the store's writer lock).

    Example::

        index = AddressIndex.open(data_dir, address_key_rows)
        ids, new_rows = index.lookup_or_add(keys, address_key_rows, n_addresses)
        index.save(n_committed)
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / DIR_NAME
        self.used = np.zeros(N_SHARDS, np.int64)
        self.slots = np.full(N_SHARDS, MIN_SLOTS, np.int64)
        self.trusted = 0  # every id below this has an entry on disk
        self._dirty: set[int] = set()  # shards written since the last save
        self._clean = False  # state.json's counts match the files (until the next write)
        self._fds: dict[int, int] = {}  # open descriptor of each shard file the writer used
        #: the most shard bytes mapped at once (the index's share of the resident set)
        self.peak_mapped_bytes = 0

    # ------------------------------------------------------------------ files and state
    def _path(self, shard: int) -> Path:
        return self.root / f"shard-{shard:03d}.bin"

    def _fd(self, shard: int) -> int:
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self._path(shard), os.O_RDWR)
        return fd

    def close(self) -> None:
        """Close the shard files (the writer's close and abort)."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def _write_state(self, clean: bool) -> None:
        state = {
            "shard_bits": SHARD_BITS,
            "addresses": int(self.trusted),
            "used": self.used.tolist(),
            "clean": clean,
        }
        self._clean = clean
        tmp = self.root / "state.json.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "state.json")

    def _new_shard_file(self, path: Path, slots: int) -> None:
        with open(path, "wb") as f:
            f.truncate(slots * SLOT_BYTES)  # sparse zeros: empty slots

    @classmethod
    def open(cls, data_dir: Path, stored: np.ndarray) -> AddressIndex:
        """Open (or build) the index and bring it up to `stored` (the committed address keys)."""
        index = cls(data_dir)
        index.root.mkdir(parents=True, exist_ok=True)
        for leftover in index.root.glob("*.tmp"):
            leftover.unlink()
        state = read_state(data_dir)
        files_ok = state is not None and all(index._path(s).exists() for s in range(N_SHARDS))
        if state is None or not files_ok:
            for s in range(N_SHARDS):
                index._new_shard_file(index._path(s), MIN_SLOTS)
        else:
            index.trusted = min(int(state["addresses"]), int(stored.shape[0]))
            index.slots = np.array(
                [index._path(s).stat().st_size // SLOT_BYTES for s in range(N_SHARDS)], np.int64
            )
            if state.get("clean") and len(state.get("used", [])) == N_SHARDS:
                index.used = np.array(state["used"], np.int64)
                index._clean = True  # until the first insert (which says so first)
            else:
                index._recount()
        index._catch_up(stored)
        return index

    def _recount(self) -> None:
        for s in range(N_SHARDS):
            with _Mapped(self._path(s), writable=False) as slots:
                self.used[s] = int(np.count_nonzero(slots[:, 0]))
                del slots

    def _catch_up(self, stored: np.ndarray) -> None:
        """Insert the entries of ids [trusted, len(stored)) (present or not: inserting twice
        leaves one entry)."""
        n = int(stored.shape[0])
        for lo in range(self.trusted, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            keys = np.ascontiguousarray(stored[lo:hi])
            self.insert(keys, np.arange(lo, hi, dtype=np.int64), np.asarray(stored[:lo]), keys)
        self.trusted = n

    # ------------------------------------------------------------------ writer operations
    def _reserve(self, shard: int, extra: int) -> None:
        """Double the shard (into a new file, then replace) until `extra` more entries fit."""
        need = int(self.used[shard]) + extra
        slots = int(self.slots[shard])
        if need <= slots * MAX_LOAD:
            return
        while need > slots * MAX_LOAD:
            slots *= 2
        path = self._path(shard)
        tmp = path.with_name(path.name + ".tmp")
        self._new_shard_file(tmp, slots)
        with _Mapped(self._fd(shard), False) as old, _Mapped(tmp, writable=True) as new:
            self._note_mapped(old.nbytes + new.nbytes)
            _shard_rehash(new, old)
            del old, new
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # a reader's map of the old file stays valid until it unmaps
        os.close(self._fds.pop(shard))
        self.slots[shard] = slots
        self._dirty.discard(shard)  # the new file is durable already

    def _note_mapped(self, nbytes: int) -> None:
        self.peak_mapped_bytes = max(self.peak_mapped_bytes, int(nbytes))

    def find(self, keys: np.ndarray, stored: np.ndarray) -> np.ndarray:
        """Ids of `keys` among the ids of `stored` (its row i is the key of id i), -1 if none."""
        ids = np.full(keys.shape[0], -1, np.int64)
        fps = fingerprints(keys)
        order, bounds = _by_shard(fps)
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[s] : bounds[s + 1]]
            with _Mapped(self._fd(s), writable=False) as slots:
                self._note_mapped(slots.nbytes)
                _shard_find(slots, fps, keys, rows, stored, stored.shape[0], ids)
                del slots
        return ids

    def insert(
        self, keys: np.ndarray, ids: np.ndarray, stored_old: np.ndarray, stored_new: np.ndarray
    ) -> None:
        """Insert keys with the given ids, shard by shard (an equal key takes the new id)."""
        if keys.shape[0] == 0:
            return
        if self._clean:
            self._write_state(clean=False)  # a crash from here on must recount
        fps = fingerprints(keys)
        order, bounds = _by_shard(fps)
        ids = np.ascontiguousarray(ids, np.int64)
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[s] : bounds[s + 1]]
            self._reserve(s, rows.shape[0])
            self._dirty.add(s)
            with _Mapped(self._fd(s), writable=True) as slots:
                self._note_mapped(slots.nbytes)
                self.used[s] += _shard_insert(slots, fps, keys, rows, ids, stored_old, stored_new)
                del slots

    def lookup_or_add(
        self, keys: np.ndarray, stored_old: np.ndarray, first_new_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids for `keys`, adding the unseen ones with consecutive ids from `first_new_id` in
        order of first appearance (the ids `HashIndex.lookup_or_add` gives).

        Returns (ids, new_rows): new_rows are the rows of `keys` that received new ids, in id
        order; the caller appends `keys[new_rows]` to the key store. Two passes over the
        shards: look every key up, then insert the new ones.
        """
        if first_new_id != stored_old.shape[0]:
            raise ValueError("new ids must follow the stored keys")
        ids = self.find(keys, stored_old)
        missing = np.flatnonzero(ids < 0)
        if missing.shape[0] == 0:
            return ids, missing
        # Number the batch's unseen keys in order of first appearance: a small in-memory table
        # over this batch's missing keys only (≈17 B per key, freed at return).
        local = HashIndex(int(missing.shape[0] / MAX_LOAD) + 1)
        missing_keys = np.ascontiguousarray(keys[missing])
        local_ids, first_rows = local.lookup_or_add(
            missing_keys, np.zeros((0, keys.shape[1]), np.uint8), 0
        )
        ids[missing] = first_new_id + local_ids
        new_rows = missing[first_rows]
        new_keys = np.ascontiguousarray(keys[new_rows])
        self.insert(
            new_keys,
            first_new_id + np.arange(new_rows.shape[0], dtype=np.int64),
            stored_old,
            new_keys,
        )
        return ids, new_rows

    def clip(self, n_addresses: int) -> None:
        """Ids from `n_addresses` on are being removed (a rollback): stop vouching for them."""
        if n_addresses < self.trusted:
            self.trusted = n_addresses
            self._write_state(clean=False)

    def save(self, n_committed: int) -> None:
        """Make the shards durable and record that ids below `n_committed` have entries."""
        for s in sorted(self._dirty):
            os.fsync(self._fd(s))  # also writes back pages dirtied through the (closed) maps
        self._dirty.clear()
        self.trusted = n_committed
        self._write_state(clean=True)

    @property
    def nbytes(self) -> int:
        """Bytes of all shard files (what the page cache would hold to keep it all warm)."""
        return int(self.slots.sum()) * SLOT_BYTES
