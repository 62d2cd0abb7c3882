"""The address index: address key -> dense address id, on disk in shards, plus a bounded delta.

Why: a single in-memory hash table of every address costs ≈17 B per address (12-byte slots at
70 % load), ≈24 GB at mainnet's ≈1.4 G addresses, more than ingest's 16 GB budget. Here:

- The **base** is on disk: split by the top `SHARD_BITS` bits of the key's 64-bit fingerprint
  into 2^SHARD_BITS files under `DATA/address_index/`, each an open-addressing table of 8-byte
  slots (32-bit check, 32-bit id). A batch's keys are grouped by shard and each shard is
  memory-mapped (read-only) only while its keys are looked up, then unmapped: the resident set
  holds one shard at a time, the rest of the table is clean page cache the kernel can reclaim.
- The **delta** is in memory: the ids given since the last merge, in a `HashIndex` (≈17 B per
  entry). When it holds `DELTA_MAX` entries, and at each save, it is merged into the base shard
  by shard. Batches therefore never write the base at random (which would dirty a page per new
  address and have the kernel write the whole table back every 30 s at mainnet); merges write
  each shard once.

See docs/design/store.md ("The address index") for sizes, measurements and page-cache behaviour.

Slots: a key's fingerprint `fp` picks its shard (`fp >> 56`) and its 32-bit check
`(fp >> 24) & 0xFFFFFFFF` (0 is an empty slot, so a check of 0 becomes 1); its home slot is the
check's low bits, so a shard can grow (double) from its own slots without re-reading keys. A
check match is confirmed by comparing the full key with `address_key[id]`, so a collision can
never give two addresses one id.

Crash safety without copying the table: every base entry is verified against the key of its id
before it is believed, so an entry of an uncommitted batch or a rolled-back block is harmless (it
names the right id or matches nothing). `state.json` records `addresses`: every id below it has
an entry in the base (flushed to disk before the state says so). A writer re-inserts ids from
there on (from `address_key`) when it opens the store; readers scan them. A writer that did not
close cleanly leaves `clean: false`, and the next one recounts the occupied slots.
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
SHARD_BITS = 8  # at most 8: shard numbers are sorted as uint8
N_SHARDS = 1 << SHARD_BITS
MIN_SLOTS = 1 << 10
MAX_LOAD = 0.7
SLOT_BYTES = 8  # (check u32, id u32)
DIR_NAME = "address_index"
#: Catch-up and rebuild insert `address_key` rows in chunks of this many (≈43 B each).
CHUNK_ROWS = 1 << 22
#: Merge the in-memory delta into the base once it holds this many ids: its table is then at
#: most 2^27 slots × 12 B = 1.6 GB, and a mainnet ingest merges about 21 times.
DELTA_MAX = 1 << 26
DELTA_START = 1 << 10  # slots of an empty delta (it doubles as it fills)
#: A merge reads the delta's table in slices of this many slots.
MERGE_SLOTS = 1 << 22


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


@njit(cache=True, nogil=True)
def _shard_add(slots, fps, rows, ids):
    """Add (check of fps[r], ids[r]) for r in `rows` without key comparisons (the delta's keys
    are new); an identical entry (left by a merge before a crash) is not added twice."""
    mask = np.uint32(slots.shape[0] - 1)
    added = 0
    for k in range(rows.shape[0]):
        r = rows[k]
        c = _check(fps[r])
        ident = np.uint32(ids[r])
        slot = c & mask
        while True:
            cur = slots[slot, 0]
            if cur == np.uint32(0):
                slots[slot, 0] = c
                slots[slot, 1] = ident
                added += 1
                break
            if cur == c and slots[slot, 1] == ident:
                break
            slot = (slot + np.uint32(1)) & mask
    return added


@njit(cache=True, nogil=True)
def _shard_counts(table_fp, shard_bits):
    """Occupied slots of a delta table per shard."""
    counts = np.zeros(1 << shard_bits, np.int64)
    shift = np.uint64(64 - shard_bits)
    for s in range(table_fp.shape[0]):
        fp = table_fp[s]
        if fp != np.uint64(0):
            counts[np.int64(fp >> shift)] += 1
    return counts


def _by_shard(fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers grouped by shard (stable: each group in row order) and the group bounds."""
    shard = (fps >> np.uint64(64 - SHARD_BITS)).astype(np.uint8)  # SHARD_BITS <= 8
    order = np.argsort(shard, kind="stable")  # a radix sort on 8-bit values
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
        self.base_n = 0  # every id below this has an entry in the base (written, maybe unsynced)
        self.next_id = 0  # ids [base_n, next_id) are in the delta
        self.delta = HashIndex(DELTA_START)
        self._dirty: set[int] = set()  # shards written since the last save
        self._clean = False  # state.json's counts match the files (until the next write)
        self._fds: dict[int, int] = {}  # open descriptor of each shard file the writer used
        #: the most shard bytes mapped at once, and the delta's largest table: the index's share
        #: of the resident set
        self.peak_mapped_bytes = 0
        self.peak_delta_bytes = 0

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

    def _write_state(self, trusted: int, clean: bool) -> None:
        self._clean = clean
        state = {
            "shard_bits": SHARD_BITS,
            "addresses": int(trusted),
            "used": self.used.tolist(),
            "clean": clean,
        }
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
            index.base_n = min(int(state["addresses"]), int(stored.shape[0]))
            index.slots = np.array(
                [index._path(s).stat().st_size // SLOT_BYTES for s in range(N_SHARDS)], np.int64
            )
            if state.get("clean") and len(state.get("used", [])) == N_SHARDS:
                index.used = np.array(state["used"], np.int64)
                index._clean = True  # until the first base write (which says so first)
            else:
                index._recount()
        index.next_id = index.base_n
        index._catch_up(stored)
        return index

    def _recount(self) -> None:
        for s in range(N_SHARDS):
            with _Mapped(self._path(s), writable=False) as slots:
                self.used[s] = int(np.count_nonzero(slots[:, 0]))
                del slots

    def _catch_up(self, stored: np.ndarray) -> None:
        """Put ids [next_id, len(stored)) in the delta (merging whenever it is full)."""
        n = int(stored.shape[0])
        for lo in range(self.next_id, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            keys = np.ascontiguousarray(stored[lo:hi])
            self.delta.insert(
                keys, np.arange(lo, hi, dtype=np.int64), np.asarray(stored[:lo]), keys
            )
            self.next_id = hi
            self._note_delta()
            if self.delta.used >= DELTA_MAX:
                self.merge()

    # ------------------------------------------------------------------ the base
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

    def _note_mapped(self, nbytes: int) -> None:
        self.peak_mapped_bytes = max(self.peak_mapped_bytes, int(nbytes))

    def _note_delta(self) -> None:
        self.peak_delta_bytes = max(self.peak_delta_bytes, self.delta.nbytes)

    def _find_base(self, keys: np.ndarray, stored: np.ndarray) -> np.ndarray:
        ids = np.full(keys.shape[0], -1, np.int64)
        fps = fingerprints(keys)
        order, bounds = _by_shard(fps)
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[s] : bounds[s + 1]]
            with _Mapped(self._fd(s), writable=False) as slots:
                self._note_mapped(slots.nbytes)
                _shard_find(slots, fps, keys, rows, stored, self.base_n, ids)
                del slots
        return ids

    def merge(self) -> None:
        """Move the delta's entries into the base, shard by shard; the delta starts empty.

        The delta's table is read in slices of `MERGE_SLOTS` slots, so the working memory is
        ≈ 33 B per slot of one slice (occupied slots, fingerprints, ids, shard order: 128 MB)
        beside the delta, instead of ≈ 33 B per delta entry (2.2 GB for a full delta of 2^26
        ids). Each shard is first grown once for all its new entries.
        """
        table_fp, table_id = self.delta.table_fp, self.delta.table_id
        if self.delta.used:
            if self._clean:
                self._write_state(self.base_n, clean=False)  # a crash from here must recount
            per_shard = _shard_counts(table_fp, SHARD_BITS)
            for s in np.flatnonzero(per_shard).tolist():
                self._reserve(s, int(per_shard[s]))
                self._dirty.add(s)
            for lo in range(0, table_fp.shape[0], MERGE_SLOTS):
                part = table_fp[lo : lo + MERGE_SLOTS]
                occupied = np.flatnonzero(part != 0)
                fps = part[occupied]
                ids = table_id[lo : lo + MERGE_SLOTS][occupied].astype(np.int64)
                del occupied
                order, bounds = _by_shard(fps)
                for s in np.flatnonzero(np.diff(bounds)).tolist():
                    rows = order[bounds[s] : bounds[s + 1]]
                    with _Mapped(self._fd(s), writable=True) as slots:
                        self._note_mapped(slots.nbytes)
                        self.used[s] += _shard_add(slots, fps, rows, ids)
                        del slots
                del fps, ids, order
        self.base_n = self.next_id
        self.delta = HashIndex(DELTA_START)

    # ------------------------------------------------------------------ the writer's calls
    def find(self, keys: np.ndarray, stored: np.ndarray) -> np.ndarray:
        """Ids of `keys`, -1 where absent; `stored` holds the keys of every id given so far
        (at least `next_id` rows)."""
        ids = self._find_base(keys, stored)
        missing = np.flatnonzero(ids < 0)
        if missing.shape[0] and self.delta.used:
            ids[missing] = self.delta.lookup(np.ascontiguousarray(keys[missing]), stored)
        return ids

    def lookup_or_add(
        self, keys: np.ndarray, stored_old: np.ndarray, first_new_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids for `keys`, adding the unseen ones with consecutive ids from `first_new_id` in
        order of first appearance (the ids `HashIndex.lookup_or_add` gives).

        Returns (ids, new_rows): new_rows are the rows of `keys` that received new ids, in id
        order; the caller appends `keys[new_rows]` to the key store. The base is read shard by
        shard; keys it does not hold go to the delta, which finds or numbers them.
        """
        if first_new_id != stored_old.shape[0] or first_new_id != self.next_id:
            raise ValueError("new ids must follow the stored keys")
        ids = self._find_base(keys, stored_old)
        missing = np.flatnonzero(ids < 0)
        if missing.shape[0] == 0:
            return ids, missing
        delta_ids, first_rows = self.delta.lookup_or_add(
            np.ascontiguousarray(keys[missing]), stored_old, first_new_id
        )
        ids[missing] = delta_ids
        new_rows = missing[first_rows]
        self.next_id += int(new_rows.shape[0])
        self._note_delta()
        if self.delta.used >= DELTA_MAX:
            self.merge()
        return ids, new_rows

    def clip(self, n_addresses: int) -> None:
        """Ids from `n_addresses` on are being removed (a rollback): stop vouching for them.

        The delta is dropped (its table cannot tell removed ids from others) and refilled from
        the keys by the next `_catch_up`; base entries of removed ids stay, harmless.
        """
        if n_addresses < self.next_id:
            self.base_n = min(self.base_n, n_addresses)
            self.next_id = self.base_n
            self.delta = HashIndex(DELTA_START)
            self._write_state(self.base_n, clean=False)

    def save(self, n_committed: int) -> None:
        """Merge the delta, make the shards durable, record that ids below `n_committed` have
        entries."""
        self.merge()
        for s in sorted(self._dirty):
            os.fsync(self._fd(s))  # also writes back pages dirtied through the (closed) maps
        self._dirty.clear()
        self._write_state(min(n_committed, self.base_n), clean=True)

    @property
    def nbytes(self) -> int:
        """Bytes of all shard files (what the page cache would hold to keep it all warm)."""
        return int(self.slots.sum()) * SLOT_BYTES
