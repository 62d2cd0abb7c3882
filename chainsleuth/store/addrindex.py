"""The address index: address key -> dense address id, on disk as sorted runs, plus a delta.

Why: a single in-memory hash table of every address costs ≈17 B per address, ≈24 GB at mainnet's
≈1.5 G addresses, more than ingest's 16 GB budget; and any table that confirms a match by reading
the key of the id it found (`address_key`, 43 B per address, 60 GB at mainnet) reads that array
at random, one page per reused address: under a memory limit those pages are what an ingest of
20 M txs thrashed on (docs/design/bench-scale.md). Here nothing reads `address_key` at random:

- Each key has a 128-bit **key hash**, SipHash-2-4-128 under a random 128-bit secret drawn when the
  index is created (`state.json`). An entry is 16 bytes: the hash's first 64 bits (`hi`), 32 more
  bits (`lo`) and the id: `(hi, lo << 32 | id)` as two u8. A match of all 96 bits is trusted
  without reading the key (see "Collisions" below).
- The **tables** are on disk, each an array of entries sorted by (hi, lo), split into
  2^SHARD_BITS files by the top bits of `hi` (`t<generation>/shard-NNN.bin`), with the first `hi`
  of each 4-KiB page of entries (`fences.npy`, 8 B per 256 entries, mapped): a probe reads
  exactly one page (two when equal `hi` straddle a page). A batch's keys are sorted by hash and
  looked up shard by shard, in page order; where a batch touches a shard's pages densely the map
  reads around a fault (the kernel's default), else nothing is read around a probe
  (`MADV_RANDOM`). There are
  at most two tables: the **base** and a smaller **recent** table (≤ 1/RECENT_SHARE of the base's
  entries), so a save (each ingest's end, hourly while following) rewrites the recent table, not
  the base.
- The **delta** is in memory: the ids given since the last merge, in an open-addressing table of
  16-byte slots (the same entry layout; home slot = the top bits of `hi`, so its slots are in hash
  order and a merge reads it shard by shard without sorting it whole). When it holds `DELTA_MAX`
  ids, and at each save, it is merged: each table is rewritten **streaming**, shard by shard (the
  old shard read in order, merged with the delta's sorted entries of that shard, written in order
  to a new file), never updated in place. A merge writes a new table generation, makes it durable,
  then replaces `state.json`, then deletes the old files: an interrupted merge leaves only
  unreferenced files, which the next open deletes.

Trust, crashes and rollbacks: each table has a `trusted` bound and only its entries with ids below
it are believed (the rest are skipped by lookups and dropped by the next merge of that table).
What `state.json` records for a table is at most the store's committed address count at the time
(`vouch`, which the writer calls at each commit), so an entry of an uncommitted batch is never
believed after a crash, and a rollback (`clip`) lowers the bounds (and writes the state) before
the removed ids can be given to other keys. Ids from the covered count on are put into the delta
from `address_key` (sequentially) when a writer opens the store; readers scan them.

Collisions: two different keys with the same 96 bits of key hash are the one way to a wrong id
(the second key would be given the first one's id). For a 128-bit PRF under a key the chain's
authors never see, each lookup of a new key matches a given stored entry with probability 2^-96;
at mainnet (≤ 1.5 G entries, ≤ 3.1 G lookups over the whole chain) the chance that this ever
happens is ≤ 3.1e9 × 1.5e9 / 2^96 ≈ 6e-11, and it cannot be aimed: payloads an author chooses
freely (witness v2+ programs) do not help without the secret. Equal `hi` with different `lo` (one
chain in ≈ 10^1 at mainnet, 1.5e9² / 2^65) is the ordinary case the layout handles: entries are
compared on all 96 bits. (The earlier index kept a 32-bit check and confirmed each match against
`address_key[id]`, which was exact but cost the random reads above.)

Format 2 (this layout). A store whose index is of the earlier format (hash-table shards without
`format` in its state) is rebuilt by its next writer: the old files are deleted and every key is
put in again from `address_key` (sequentially, merging every `DELTA_MAX` ids); readers do not use
an index whose format they do not know (they scan, as without an index).

See docs/design/store.md ("The address index") for sizes and measurements.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

FORMAT = 2
#: Tables are split by the top bits of `hi`: 256 shard files of ≈ 94 MB each at mainnet.
SHARD_BITS = 8  # at most 8: shard numbers are sorted as uint8
N_SHARDS = 1 << SHARD_BITS
ENTRY_BYTES = 16  # (hi u8, lo << 32 | id u8)
PAGE_ENTRIES = 256  # 4 KiB of entries: one fence each
DIR_NAME = "address_index"
#: Catch-up and rebuild hash `address_key` rows in chunks of this many (≈43 B each).
CHUNK_ROWS = 1 << 22
#: Merge the in-memory delta into the tables once it holds this many ids: its table is then at
#: most 2^27 slots × 16 B = 2 GB, and a mainnet ingest merges about 22 times.
DELTA_MAX = 1 << 26
DELTA_START = 1 << 10  # slots of an empty delta (it doubles as it fills)
MAX_LOAD = 0.7
#: The recent table is merged into the base once it would hold more than base / RECENT_SHARE.
RECENT_SHARE = 4
#: A batch probing at least one key per this many pages of a shard reads it ahead (sequential).
DENSE_PAGES = 16
ID_MASK = np.uint64(0xFFFFFFFF)


class IndexCollision(Exception):
    """Two stored address keys have the same 96 bits of key hash (see the module docstring)."""


# ------------------------------------------------------------------------------ the key hash
@njit(cache=True, nogil=True, inline="always")
def _rotl(x, b):
    return (x << np.uint64(b)) | (x >> np.uint64(64 - b))


@njit(cache=True, nogil=True, inline="always")
def _sipround(v0, v1, v2, v3):
    v0 += v1
    v1 = _rotl(v1, 13)
    v1 ^= v0
    v0 = _rotl(v0, 32)
    v2 += v3
    v3 = _rotl(v3, 16)
    v3 ^= v2
    v0 += v3
    v3 = _rotl(v3, 21)
    v3 ^= v0
    v2 += v1
    v1 = _rotl(v1, 17)
    v1 ^= v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


@njit(cache=True, nogil=True)
def siphash128(keys, k0, k1, out_hi, out_lo):
    """SipHash-2-4 with 128-bit output of each row of `keys` (uint8) under the key (k0, k1):
    out_hi = the first 64 bits (never 0: 0 marks an empty delta slot), out_lo = 32 more bits."""
    n, width = keys.shape
    full = width // 8
    for i in range(n):
        v0 = k0 ^ np.uint64(0x736F6D6570736575)
        v1 = k1 ^ np.uint64(0x646F72616E646F6D) ^ np.uint64(0xEE)
        v2 = k0 ^ np.uint64(0x6C7967656E657261)
        v3 = k1 ^ np.uint64(0x7465646279746573)
        for w in range(full):
            m = np.uint64(0)
            for b in range(8):
                m |= np.uint64(keys[i, w * 8 + b]) << np.uint64(8 * b)
            v3 ^= m
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
            v0 ^= m
        m = np.uint64(width & 0xFF) << np.uint64(56)
        for b in range(width - full * 8):
            m |= np.uint64(keys[i, full * 8 + b]) << np.uint64(8 * b)
        v3 ^= m
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
        v2 ^= np.uint64(0xEE)
        for _ in range(4):
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        h = v0 ^ v1 ^ v2 ^ v3
        v1 ^= np.uint64(0xDD)
        for _ in range(4):
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        g = v0 ^ v1 ^ v2 ^ v3
        if h == np.uint64(0):
            h = np.uint64(1)
        out_hi[i] = h
        out_lo[i] = g & ID_MASK


def _default_hash(keys: np.ndarray, secret: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.ascontiguousarray(keys, np.uint8)
    hi = np.empty(keys.shape[0], np.uint64)
    lo = np.empty(keys.shape[0], np.uint64)
    siphash128(keys, np.uint64(secret[0]), np.uint64(secret[1]), hi, lo)
    return hi, lo


#: (keys, secret) -> (hi, lo): the key hash. Tests replace it to force collisions.
key_hash: Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, np.ndarray]] = _default_hash


# ------------------------------------------------------------------------------ kernels
@njit(cache=True, nogil=True)
def _table_find(entries, fences, qhi, qlo, rows, trusted, out_ids):
    """out_ids[r] = the id of the entry equal to (qhi[r], qlo[r]) for r in `rows` (sorted by
    qhi), where one exists with an id below `trusted`; the others are left as they are."""
    n = entries.shape[0]
    for k in range(rows.shape[0]):
        r = rows[k]
        h = qhi[r]
        p = np.searchsorted(fences, h) - 1  # the last page whose first hi < h
        if p < 0:
            p = 0
        lo = p * PAGE_ENTRIES
        hi = min(n, lo + PAGE_ENTRIES)
        while lo < hi:  # the first entry of the page with hi >= h (or the page's end)
            mid = (lo + hi) >> 1
            if entries[mid, 0] < h:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        want = qlo[r]
        while i < n and entries[i, 0] == h:
            e = entries[i, 1]
            if (e >> np.uint64(32)) == want and np.int64(e & ID_MASK) < trusted:
                out_ids[r] = np.int64(e & ID_MASK)
                break
            i += 1


@njit(cache=True, nogil=True)
def _merge(a, a_trusted, b, b_trusted, out):
    """Merge two entry arrays sorted by (hi, lo|id) into `out`, dropping entries whose id is not
    below their source's trusted bound. Returns the entries written."""
    i = j = k = 0
    na, nb = a.shape[0], b.shape[0]
    while True:
        while i < na and np.int64(a[i, 1] & ID_MASK) >= a_trusted:
            i += 1
        while j < nb and np.int64(b[j, 1] & ID_MASK) >= b_trusted:
            j += 1
        if i >= na and j >= nb:
            break
        take_a = j >= nb or (
            i < na and (a[i, 0] < b[j, 0] or (a[i, 0] == b[j, 0] and a[i, 1] <= b[j, 1]))
        )
        if take_a:
            out[k, 0] = a[i, 0]
            out[k, 1] = a[i, 1]
            i += 1
        else:
            out[k, 0] = b[j, 0]
            out[k, 1] = b[j, 1]
            j += 1
        k += 1
    return k


@njit(cache=True, nogil=True)
def _delta_probe(t_hi, t_lo, qhi, qlo, mode, first_new_id, out_ids, new_rows):
    """Look up (mode 0), look up or add with ids first_new_id, +1, ... in order of first
    appearance (mode 1), or insert with the ids given in out_ids (mode 2: returns -1 - row of
    the first key whose 96 bits are already present under another id). Returns the keys added."""
    bits = 0
    while (1 << bits) < t_hi.shape[0]:
        bits += 1
    shift = np.uint64(64 - bits)
    mask = np.uint64(t_hi.shape[0] - 1)
    n_new = 0
    for i in range(qhi.shape[0]):
        h = qhi[i]
        want = qlo[i]
        slot = h >> shift
        while True:
            cur = t_hi[slot]
            if cur == np.uint64(0):
                if mode == 0:
                    out_ids[i] = -1
                else:
                    if mode == 1:
                        ident = first_new_id + n_new
                        out_ids[i] = ident
                        new_rows[n_new] = i
                    else:
                        ident = out_ids[i]
                    t_hi[slot] = h
                    t_lo[slot] = (want << np.uint64(32)) | np.uint64(ident)
                    n_new += 1
                break
            if cur == h and (t_lo[slot] >> np.uint64(32)) == want:
                ident = np.int64(t_lo[slot] & ID_MASK)
                if mode == 2:
                    if ident != out_ids[i]:
                        return -1 - i
                else:
                    out_ids[i] = ident
                break
            slot = (slot + np.uint64(1)) & mask
    return n_new


@njit(cache=True, nogil=True)
def _delta_rehash(new_hi, new_lo, old_hi, old_lo):
    bits = 0
    while (1 << bits) < new_hi.shape[0]:
        bits += 1
    shift = np.uint64(64 - bits)
    mask = np.uint64(new_hi.shape[0] - 1)
    for s in range(old_hi.shape[0]):
        h = old_hi[s]
        if h == np.uint64(0):
            continue
        slot = h >> shift
        while new_hi[slot] != np.uint64(0):
            slot = (slot + np.uint64(1)) & mask
        new_hi[slot] = h
        new_lo[slot] = old_lo[s]


@njit(cache=True, nogil=True)
def _delta_shard(t_hi, t_lo, shard, shard_bits):
    """The delta's entries of one shard, sorted. A shard's keys have their home slots in one
    range of the table and sit there or in the run of occupied slots after it (linear probing,
    wrapping), already nearly in hash order."""
    cap = t_hi.shape[0]
    per = cap >> shard_bits
    start = shard * per
    stop = start + per
    n_max = 0
    s = start
    while s < stop or t_hi[s % cap] != np.uint64(0):
        if s >= start + cap:
            break
        n_max += 1
        s += 1
    out = np.empty((n_max, 2), np.uint64)
    sh = np.uint64(64 - shard_bits)
    k = 0
    for t in range(start, start + n_max):
        h = t_hi[t % cap]
        if h != np.uint64(0) and np.int64(h >> sh) == shard:
            out[k, 0] = h
            out[k, 1] = t_lo[t % cap]
            k += 1
    out = out[:k]
    # insertion sort: entries are out of order only within a probe run
    for i in range(1, k):
        e0, e1 = out[i, 0], out[i, 1]
        j = i - 1
        while j >= 0 and (out[j, 0] > e0 or (out[j, 0] == e0 and out[j, 1] > e1)):
            out[j + 1, 0] = out[j, 0]
            out[j + 1, 1] = out[j, 1]
            j -= 1
        out[j + 1, 0] = e0
        out[j + 1, 1] = e1
    return out


# ------------------------------------------------------------------------------ the delta
class _Delta:
    """The ids given since the last merge: 16-byte slots (hi; lo << 32 | id), home slot = the
    top bits of hi, at most MAX_LOAD full."""

    def __init__(self, capacity: int = DELTA_START) -> None:
        capacity = max(DELTA_START, 1 << int(np.ceil(np.log2(max(capacity, 1)))))
        self.t_hi = np.zeros(capacity, np.uint64)
        self.t_lo = np.zeros(capacity, np.uint64)
        self.used = 0

    @property
    def nbytes(self) -> int:
        return int(self.t_hi.nbytes + self.t_lo.nbytes)

    def reserve(self, extra: int) -> None:
        need, cap = self.used + extra, self.t_hi.shape[0]
        while need > cap * MAX_LOAD:
            cap *= 2
        if cap != self.t_hi.shape[0]:
            new_hi, new_lo = np.zeros(cap, np.uint64), np.zeros(cap, np.uint64)
            _delta_rehash(new_hi, new_lo, self.t_hi, self.t_lo)
            self.t_hi, self.t_lo = new_hi, new_lo

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        out = np.full(hi.shape[0], -1, np.int64)
        if self.used:
            _delta_probe(self.t_hi, self.t_lo, hi, lo, 0, 0, out, out)
        return out

    def lookup_or_add(
        self, hi: np.ndarray, lo: np.ndarray, first_new_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        self.reserve(hi.shape[0])
        out = np.empty(hi.shape[0], np.int64)
        new_rows = np.empty(hi.shape[0], np.int64)
        n_new = _delta_probe(self.t_hi, self.t_lo, hi, lo, 1, first_new_id, out, new_rows)
        self.used += int(n_new)
        return out, new_rows[:n_new]

    def insert(self, hi: np.ndarray, lo: np.ndarray, ids: np.ndarray) -> None:
        self.reserve(hi.shape[0])
        given = ids.astype(np.int64)
        added = _delta_probe(self.t_hi, self.t_lo, hi, lo, 2, 0, given, given)
        if added < 0:
            raise IndexCollision(
                f"address id {int(ids[-1 - added])} has the 96-bit key hash of another address"
            )
        self.used += int(added)

    def shard(self, s: int) -> np.ndarray:
        if not self.used:
            return np.zeros((0, 2), np.uint64)
        return _delta_shard(self.t_hi, self.t_lo, s, SHARD_BITS)


# ------------------------------------------------------------------------------ the tables
class _Map:
    """One shard file memory-mapped as a (entries, 2) uint64 array for the length of a `with`."""

    def __init__(self, path: Path, advice: int | None) -> None:
        self.path, self.advice = path, advice

    def __enter__(self) -> np.ndarray:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else None
        finally:
            os.close(fd)
        if self._mm is None:
            return np.zeros((0, 2), np.uint64)
        if self.advice is not None:
            self._mm.madvise(self.advice)
        return np.frombuffer(self._mm, np.uint64).reshape(-1, 2)

    def __exit__(self, *exc: object) -> None:
        # the caller's views must be gone (locals of the with block) before the map can close;
        # closing unmaps, so the shard's pages leave the resident set
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # an exception left a view alive
                self._mm.close()


_RANDOM = getattr(mmap, "MADV_RANDOM", None)
_SEQUENTIAL = getattr(mmap, "MADV_SEQUENTIAL", None)


class _Table:
    """A sorted run of entries on disk: `t<gen>/shard-NNN.bin`, `counts.npy`, `fences.npy`.

    Entries with ids below `trusted` are believed; `lo` is the first id it was written for."""

    def __init__(self, root: Path, gen: int, lo: int, trusted: int) -> None:
        self.dir = root / f"t{gen:06d}"
        self.gen, self.lo, self.trusted = gen, lo, trusted
        self.counts = np.load(self.dir / "counts.npy")
        # mapped, not read, and without read-around: a probe's binary search touches a page or
        # two of its shard's fences, where reading them all made every cold `Store.open` read
        # 1/32 B per address (≈ 47 MB at mainnet; cold `address` lookups grew with the chain:
        # docs/design/bench-scale.md, "Cold lookups read their shard's fences only")
        self.fences = np.load(self.dir / "fences.npy", mmap_mode="r")
        mapping = getattr(self.fences, "_mmap", None)  # None for an empty array
        if mapping is not None and _RANDOM is not None:
            mapping.madvise(_RANDOM)
        pages = (self.counts + PAGE_ENTRIES - 1) // PAGE_ENTRIES
        self.fence_at = np.concatenate([[0], np.cumsum(pages)]).astype(np.int64)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def path(self, s: int) -> Path:
        return self.dir / f"shard-{s:03d}.bin"

    def shard_fences(self, s: int) -> np.ndarray:
        return self.fences[self.fence_at[s] : self.fence_at[s + 1]]

    def find(
        self, hi: np.ndarray, lo: np.ndarray, order: np.ndarray, bounds: np.ndarray, out: np.ndarray
    ) -> int:
        """Fill out[r] for the rows of `order` (sorted by hi; shard s is order[bounds[s]:
        bounds[s + 1]]) this table holds. Returns the most shard bytes mapped at once."""
        peak = 0
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            if self.counts[s] == 0 or self.trusted <= 0:
                continue
            rows = order[bounds[s] : bounds[s + 1]]
            rows = rows[out[rows] < 0]
            if rows.shape[0] == 0:
                continue
            pages = int(self.fence_at[s + 1] - self.fence_at[s])
            # dense: the kernel's default read-around (not MADV_SEQUENTIAL, whose pages the
            # kernel never counts as referenced, so the base would be evicted first and read
            # again by every batch: measured, docs/design/bench-scale.md)
            advice = None if rows.shape[0] * DENSE_PAGES >= pages else _RANDOM
            with _Map(self.path(s), advice) as entries:
                peak = max(peak, entries.nbytes)
                _table_find(entries, self.shard_fences(s), hi, lo, rows, self.trusted, out)
                del entries
        return peak


def _write_table(
    root: Path, gen: int, parts: Callable[[int], tuple[np.ndarray, int, np.ndarray, int]]
) -> tuple[np.ndarray, int]:
    """Write table `gen` shard by shard: parts(s) = (old entries, their trusted bound, new
    entries, theirs), merged. Every file is durable when this returns. Returns (counts, the
    largest merged shard's bytes)."""
    d = root / f"t{gen:06d}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    counts = np.zeros(N_SHARDS, np.int64)
    fences = []
    peak = 0
    for s in range(N_SHARDS):
        a, a_trusted, b, b_trusted = parts(s)
        out = np.empty((a.shape[0] + b.shape[0], 2), np.uint64)
        k = _merge(a, a_trusted, b, b_trusted, out)
        del a
        peak = max(peak, out.nbytes)
        with open(d / f"shard-{s:03d}.bin", "wb") as f:
            if k:
                f.write(out[:k].data)
            f.flush()
            os.fsync(f.fileno())
        counts[s] = k
        fences.append(out[:k:PAGE_ENTRIES, 0].copy())
    np.save(d / "counts.npy", counts)
    np.save(d / "fences.npy", np.concatenate(fences) if fences else np.zeros(0, np.uint64))
    for name in ("counts.npy", "fences.npy", "."):
        fd = os.open(d / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return counts, peak


def _by_shard(hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by hi, and the bounds of each shard's group in that order."""
    order = np.argsort(hi, kind="stable")
    shard = (hi[order] >> np.uint64(64 - SHARD_BITS)).astype(np.int64)
    bounds = np.searchsorted(shard, np.arange(N_SHARDS + 1))
    return order, bounds


def _covered(tables: list[_Table]) -> int:
    """Every id below this has a trusted entry (base [0, trusted), recent [lo, trusted))."""
    if not tables:
        return 0
    covered = tables[0].trusted
    if len(tables) > 1 and tables[1].lo <= covered:
        covered = max(covered, tables[1].trusted)
    return covered


def _raw_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((Path(data_dir) / DIR_NAME / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The index's state.json, or None without an index of this format."""
    state = _raw_state(data_dir)
    if state is None or state.get("format") != FORMAT or state.get("shard_bits") != SHARD_BITS:
        return None
    return state


def _open_tables(root: Path, state: dict[str, Any]) -> list[_Table]:
    return [_Table(root, int(t["gen"]), int(t["lo"]), int(t["trusted"])) for t in state["tables"]]


def find_ids(data_dir: Path, keys: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, int]:
    """Read-only lookup for readers: (ids of `keys`, -1 where not found; `covered`).

    Every id below `covered` has an entry, so a key absent here is absent from `stored[:covered]`;
    the caller scans `stored[covered:]` (the addresses written since the index was last saved).
    Without a usable index `covered` is 0. A writer's merge may delete the generation a reader
    has just read the state of: the reader then reads the new state once more.
    """
    for _ in range(3):
        ids = np.full(keys.shape[0], -1, np.int64)
        state = read_state(data_dir)
        if state is None or keys.shape[0] == 0:
            return ids, 0
        root = Path(data_dir) / DIR_NAME
        try:
            tables = _open_tables(root, state)
            covered = min(_covered(tables), int(stored.shape[0]))
            for t in tables:
                t.trusted = min(t.trusted, covered)
            secret = (int(state["secret"][0], 16), int(state["secret"][1], 16))
            hi, lo = key_hash(keys, secret)
            order, bounds = _by_shard(hi)
            for t in tables:
                t.find(hi, lo, order, bounds, ids)
        except (OSError, ValueError, KeyError):
            continue
        return ids, covered
    return np.full(keys.shape[0], -1, np.int64), 0


class AddressIndex:
    """The writer's address index (one writer at a time: the store's writer lock).

    Example::

        index = AddressIndex.open(data_dir, address_key_rows)
        ids, new_rows = index.lookup_or_add(keys, address_key_rows, n_addresses)
        index.vouch(n_committed)   # at each commit
        index.save(n_committed)
    """

    def __init__(self, data_dir: Path, secret: tuple[int, int]) -> None:
        self.root = Path(data_dir) / DIR_NAME
        self.secret = secret
        self.tables: list[_Table] = []  # the base, then the recent table (if any)
        self.next_gen = 1
        self.next_id = 0  # ids [covered, next_id) are in the delta
        self.vouched = 0  # the store's committed address count, as last told (`vouch`)
        self.delta = _Delta()
        #: the most shard bytes mapped (or merged) at once, and the delta's largest table: the
        #: index's share of the resident set
        self.peak_mapped_bytes = 0
        self.peak_delta_bytes = 0

    # ------------------------------------------------------------------ state
    @property
    def covered(self) -> int:
        return _covered(self.tables)

    @property
    def base_n(self) -> int:
        """Ids below this have trusted entries in the tables (the rest are in the delta)."""
        return self.covered

    def _write_state(self) -> None:
        vouched = self.vouched
        tables = [
            {"gen": t.gen, "lo": t.lo, "trusted": min(t.trusted, vouched)} for t in self.tables
        ]
        state = {
            "format": FORMAT,
            "shard_bits": SHARD_BITS,
            "secret": [f"{self.secret[0]:016x}", f"{self.secret[1]:016x}"],
            "next_gen": self.next_gen,
            "tables": tables,
            "addresses": min(self.covered, vouched),
        }
        tmp = self.root / "state.json.tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "state.json")
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_unreferenced(self) -> None:
        keep = {t.dir.name for t in self.tables} | {"state.json"}
        for p in self.root.iterdir():
            if p.name not in keep:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    @classmethod
    def open(cls, data_dir: Path, stored: np.ndarray) -> AddressIndex:
        """Open (or build) the index and bring it up to `stored` (the committed address keys)."""
        root = Path(data_dir) / DIR_NAME
        root.mkdir(parents=True, exist_ok=True)
        state = read_state(data_dir)
        tables: list[_Table] = []
        if state is not None:
            try:
                tables = _open_tables(root, state)
                secret = (int(state["secret"][0], 16), int(state["secret"][1], 16))
            except (OSError, ValueError, KeyError):
                state, tables = None, []
        if state is None:  # none, unreadable, or of the earlier format: built from the keys
            raw = os.urandom(16)
            secret = (int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))
        index = cls(data_dir, secret)
        n = int(stored.shape[0])
        if state is not None:
            index.next_gen = int(state["next_gen"])
            for t in tables:
                t.trusted = min(t.trusted, n)
            index.tables = tables
        index.vouched = n
        index._remove_unreferenced()  # an interrupted merge's files, an older format's
        index.next_id = index.covered
        index._write_state()
        index._catch_up(stored)
        return index

    def close(self) -> None:
        """Nothing stays open between calls (kept for the writer's close and abort)."""

    def vouch(self, n_committed: int) -> None:
        """The store has committed ids below `n_committed`: a merge may record them as durable."""
        self.vouched = int(n_committed)

    def _catch_up(self, stored: np.ndarray) -> None:
        """Put ids [next_id, len(stored)) in the delta (merging whenever it is full)."""
        n = int(stored.shape[0])
        for lo in range(self.next_id, n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, n)
            h, low = key_hash(np.asarray(stored[lo:hi]), self.secret)
            self.delta.insert(h, low, np.arange(lo, hi, dtype=np.int64))
            self.next_id = hi
            self._note_delta()
            if self.delta.used >= DELTA_MAX:
                self.merge()

    def _note_delta(self) -> None:
        self.peak_delta_bytes = max(self.peak_delta_bytes, self.delta.nbytes)

    # ------------------------------------------------------------------ merges
    def merge(self) -> None:
        """Move the delta's entries into the tables (streaming, a new generation); the delta
        starts empty. Into the recent table while it stays under base / RECENT_SHARE, else
        base, recent and delta into a new base."""
        delta = self.delta
        if delta.used == 0:
            return
        base = self.tables[0] if self.tables else None
        recent = self.tables[1] if len(self.tables) > 1 else None
        n_recent = recent.n if recent is not None else 0
        into_recent = base is not None and (n_recent + delta.used) * RECENT_SHARE <= base.n
        gen = self.next_gen
        self.next_gen += 1
        empty = np.zeros((0, 2), np.uint64)
        maps: list[_Map] = []

        def old(table: _Table | None, s: int) -> tuple[np.ndarray, int]:
            if table is None or table.counts[s] == 0:
                return empty, 0
            m = _Map(table.path(s), _SEQUENTIAL)
            maps.append(m)
            return m.__enter__(), table.trusted

        def recent_and_delta(s: int) -> tuple[np.ndarray, int]:
            d = delta.shard(s)
            a, a_trusted = old(recent, s)
            if a.shape[0] == 0:
                return d, self.next_id
            out = np.empty((a.shape[0] + d.shape[0], 2), np.uint64)
            k = _merge(a, a_trusted, d, self.next_id, out)
            return out[:k], self.next_id

        def parts(s: int) -> tuple[np.ndarray, int, np.ndarray, int]:
            for m in maps:
                m.__exit__()
            maps.clear()
            if into_recent:
                b, b_trusted = recent_and_delta(s)
                return empty, 0, b, b_trusted
            a, a_trusted = old(base, s)
            b, b_trusted = recent_and_delta(s)
            return a, a_trusted, b, b_trusted

        try:
            counts, peak = _write_table(self.root, gen, parts)
        finally:
            for m in maps:
                m.__exit__()
        self.peak_mapped_bytes = max(self.peak_mapped_bytes, peak)
        new = _Table(self.root, gen, 0, self.next_id)
        if into_recent:
            assert base is not None
            new.lo = base.trusted
            self.tables = [base, new]
        else:
            self.tables = [new]
        self.delta = _Delta()
        self._write_state()
        self._remove_unreferenced()

    # ------------------------------------------------------------------ the writer's calls
    def _find_tables(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Ids of the keys with these hashes, -1 where absent: the delta first (in memory: a
        key in it has no trusted table entry, or it would not have been added), then the
        tables for the rest, so a recently seen address costs no page read."""
        ids = self.delta.find(hi, lo)
        rest = np.flatnonzero(ids < 0)
        if self.tables and rest.shape[0]:
            h, low = hi[rest], lo[rest]
            found = np.full(rest.shape[0], -1, np.int64)
            order, bounds = _by_shard(h)
            for t in self.tables:
                self.peak_mapped_bytes = max(
                    self.peak_mapped_bytes, t.find(h, low, order, bounds, found)
                )
            ids[rest] = found
        return ids

    def find(self, keys: np.ndarray, stored: np.ndarray | None = None) -> np.ndarray:
        """Ids of `keys`, -1 where absent (`stored` is not read; kept for the callers)."""
        hi, lo = key_hash(keys, self.secret)
        return self._find_tables(hi, lo)

    def lookup_or_add(
        self, keys: np.ndarray, stored_old: np.ndarray, first_new_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids for `keys`, adding the unseen ones with consecutive ids from `first_new_id` in
        order of first appearance.

        Returns (ids, new_rows): new_rows are the rows of `keys` that received new ids, in id
        order; the caller appends `keys[new_rows]` to the key store. `stored_old` (the keys of
        the ids given so far) is only checked for its length: nothing reads it.
        """
        if first_new_id != stored_old.shape[0] or first_new_id != self.next_id:
            raise ValueError("new ids must follow the stored keys")
        hi, lo = key_hash(keys, self.secret)
        ids = self._find_tables(hi, lo)
        missing = np.flatnonzero(ids < 0)
        if missing.shape[0] == 0:
            return ids, missing
        delta_ids, first_rows = self.delta.lookup_or_add(hi[missing], lo[missing], first_new_id)
        ids[missing] = delta_ids
        new_rows = missing[first_rows]
        self.next_id += int(new_rows.shape[0])
        self._note_delta()
        if self.delta.used >= DELTA_MAX:
            self.merge()
        return ids, new_rows

    def clip(self, n_addresses: int) -> None:
        """Ids from `n_addresses` on are being removed (a rollback): stop trusting them.

        The tables' bounds are lowered (and written) at once; the delta is dropped (its table
        cannot tell removed ids from others) and refilled from the keys by the next
        `_catch_up`; entries of removed ids are dropped by the next merge of their table.
        """
        if n_addresses < self.next_id:
            for t in self.tables:
                t.trusted = min(t.trusted, n_addresses)
            self.vouched = min(self.vouched, n_addresses)
            self.next_id = self.covered
            self.delta = _Delta()
            self._write_state()

    def save(self, n_committed: int) -> None:
        """Merge the delta, record that ids below `n_committed` have entries (durably)."""
        self.vouched = int(n_committed)
        if self.delta.used:
            self.merge()
        else:
            self._write_state()

    @property
    def nbytes(self) -> int:
        """Bytes of the tables' files (what the page cache would hold to keep them all warm)."""
        return sum(t.n for t in self.tables) * ENTRY_BYTES
