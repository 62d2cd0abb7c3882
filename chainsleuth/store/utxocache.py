"""The writer's UTXO cache: per unspent output, what linking an input needs, in memory.

An input names `(prev_txid, vout)`. The cache maps that outpoint to the spent output's id, value
and address id, so the writer links a batch's inputs without reading the chain's history: the
outpoint index it replaces resolved a txid to a tx id, then read `tx_txid` (to confirm the
fingerprint), `tx_first_output`, `output_spent_by_tx`, `output_value` and `output_address` at
random, one page each per input over the whole chain (≈ 2 GB at 20 M txs, ≈ 100 GB at mainnet);
under a memory limit those pages were evicted and read again (docs/design/bench-scale.md).

One open-addressing table (linear probing, at most `MAX_LOAD` full), struct of arrays, 28 B a
slot:

- `fp` u8: a 64-bit hash of (txid, vout), never 0 (0 marks an empty slot); its low bits place it;
- `meta` u8: the output id (40 bits) and a 24-bit check, a second hash of (txid, vout);
- `value` i8 and `address` u4 (0xFFFFFFFF: none).

So 88 bits of (txid, vout) identify an entry. The full key is not kept: 32 more bytes per entry.
What that means, for an ingest of a chain a node has validated (every input spends an unspent
output that exists):

- A lookup finds the right entry unless another unspent output's 88 bits equal its key's. Both
  are in the table at once, so the later one's insert meets the earlier one's slot: every insert
  that meets an equal (fp, check) is confirmed against the stored txids (`tx_txid`, read only
  then), and is either a duplicate txid (BIP30, twice on mainnet: the later tx takes the
  outpoint over, as the outpoint index did) or raises StoreError. A silent mislink is impossible.
- An input that spends nothing (an invalid chain) fails to resolve unless its 88 bits equal a
  live entry's (≈ 180 M / 2^88 ≈ 6e-19 per input at mainnet).

Spending an output deletes its entry (backward-shift deletion: no tombstones), so the table holds
exactly the UTXO set, less OP_RETURN outputs (unspendable; Bitcoin Core keeps them out too).
Doubling the table reinserts from the old arrays; above `SPILL_BYTES` the old arrays are first
written to a file and read back mapped, so the old and the new table are never both resident.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numba import njit

EMPTY = np.uint64(0)
MAX_LOAD = 0.8
OUT_BITS = 40
OUT_MASK = np.uint64((1 << OUT_BITS) - 1)
NO_ADDRESS = np.uint32(0xFFFFFFFF)
#: A table of more bytes than this doubles through a file (see the module docstring).
SPILL_BYTES = 64 << 20
SLOT_BYTES = 8 + 8 + 8 + 4


@njit(cache=True, nogil=True, inline="always")
def _mix(x):
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@njit(cache=True, nogil=True, inline="always")
def _txid_hashes(words, t):
    """Two 64-bit hashes of txid row t (4 little-endian u8 words), independent of each other."""
    h = _mix(words[t, 3] ^ np.uint64(0x9E3779B97F4A7C15))
    h = _mix(words[t, 2] ^ h)
    h = _mix(words[t, 1] ^ h)
    h = _mix(words[t, 0] ^ h)
    c = _mix(words[t, 0] ^ (words[t, 2] >> np.uint64(7)) ^ np.uint64(0xD6E8FEB86659FD93))
    return h, c


@njit(cache=True, nogil=True, inline="always")
def _outpoint_key(h, c, vout):
    v = np.uint64(vout) + np.uint64(1)
    fp = _mix(h ^ (v * np.uint64(0x9E3779B97F4A7C15)))
    if fp == EMPTY:
        fp = np.uint64(1)
    return fp, _mix(c ^ (v * np.uint64(0xC2B2AE3D27D4EB4F))) >> np.uint64(64 - 24)


@njit(cache=True, nogil=True)
def outpoint_keys(words, vouts, fps, checks):
    """(fp, check) of each outpoint: `words` its txid as 4 little-endian u8 words a row."""
    for i in range(words.shape[0]):
        h, c = _txid_hashes(words, i)
        fps[i], checks[i] = _outpoint_key(h, c, vouts[i])


@njit(cache=True, nogil=True)
def outpoint_keys_of_txs(words, tx_local, vouts, fps, checks):
    """The same keys for outputs given per tx: `words` one row per tx, `tx_local` each output's
    row in it (sorted), so each txid is hashed once, not once per output."""
    last = -1
    h = np.uint64(0)
    c = np.uint64(0)
    for i in range(tx_local.shape[0]):
        t = tx_local[i]
        if t != last:
            h, c = _txid_hashes(words, t)
            last = t
        fps[i], checks[i] = _outpoint_key(h, c, vouts[i])


@njit(cache=True, nogil=True)
def _put(t_fp, t_meta, t_value, t_addr, fps, checks, outs, values, addrs, replaced):
    """Insert each outpoint; an equal (fp, check) present is replaced (its output id goes to
    `replaced[i]`, else -1). Returns the number of slots filled."""
    mask = np.uint64(t_fp.shape[0] - 1)
    added = 0
    for i in range(fps.shape[0]):
        fp = fps[i]
        meta = (np.uint64(checks[i]) << np.uint64(OUT_BITS)) | np.uint64(outs[i])
        slot = fp & mask
        replaced[i] = -1
        while True:
            cur = t_fp[slot]
            if cur == EMPTY:
                t_fp[slot] = fp
                added += 1
                break
            if cur == fp and (t_meta[slot] >> np.uint64(OUT_BITS)) == np.uint64(checks[i]):
                replaced[i] = np.int64(t_meta[slot] & OUT_MASK)
                break
            slot = (slot + np.uint64(1)) & mask
        t_meta[slot] = meta
        t_value[slot] = values[i]
        t_addr[slot] = addrs[i]
    return added


@njit(cache=True, nogil=True)
def _take(t_fp, t_meta, t_value, t_addr, fps, checks, outs, values, addrs):
    """Look up each outpoint in order and delete it (an output is spent once). Returns -1, or
    the index of the first outpoint not found (the ones before it are taken)."""
    mask = np.uint64(t_fp.shape[0] - 1)
    for i in range(fps.shape[0]):
        fp = fps[i]
        chk = np.uint64(checks[i])
        slot = fp & mask
        while True:
            cur = t_fp[slot]
            if cur == EMPTY:
                return i
            if cur == fp and (t_meta[slot] >> np.uint64(OUT_BITS)) == chk:
                break
            slot = (slot + np.uint64(1)) & mask
        outs[i] = np.int64(t_meta[slot] & OUT_MASK)
        values[i] = t_value[slot]
        addrs[i] = t_addr[slot]
        # backward-shift deletion: move later entries of the run into the hole when their home
        # slot does not lie cyclically in (hole, their slot]
        hole = slot
        j = slot
        while True:
            j = (j + np.uint64(1)) & mask
            f = t_fp[j]
            if f == EMPTY:
                break
            home = f & mask
            stays = (hole < home and home <= j) if hole <= j else (hole < home or home <= j)
            if stays:
                continue
            t_fp[hole] = f
            t_meta[hole] = t_meta[j]
            t_value[hole] = t_value[j]
            t_addr[hole] = t_addr[j]
            hole = j
        t_fp[hole] = EMPTY
    return -1


@njit(cache=True, nogil=True)
def _reinsert(n_fp, n_meta, n_value, n_addr, o_fp, o_meta, o_value, o_addr, lo, hi):
    mask = np.uint64(n_fp.shape[0] - 1)
    for s in range(lo, hi):
        fp = o_fp[s]
        if fp == EMPTY:
            continue
        slot = fp & mask
        while n_fp[slot] != EMPTY:
            slot = (slot + np.uint64(1)) & mask
        n_fp[slot] = fp
        n_meta[slot] = o_meta[s]
        n_value[slot] = o_value[s]
        n_addr[slot] = o_addr[s]


def _words(txids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(txids, dtype=np.uint8).view("<u8").reshape(-1, 4)


def keys_of(
    txids: np.ndarray, vouts: np.ndarray, tx_local: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(fp, check) arrays of outpoints: `txids` (n, 32) uint8 rows, `vouts` their indexes; with
    `tx_local`, `txids` has one row per tx and outpoint i is (txids[tx_local[i]], vouts[i])."""
    words = _words(txids)
    n = vouts.shape[0]
    fps = np.empty(n, np.uint64)
    checks = np.empty(n, np.uint64)
    v = np.ascontiguousarray(vouts, dtype=np.int64)
    if tx_local is None:
        outpoint_keys(words, v, fps, checks)
    else:
        outpoint_keys_of_txs(words, np.ascontiguousarray(tx_local, dtype=np.int64), v, fps, checks)
    return fps, checks


_FIELDS = (("fp", np.uint64), ("meta", np.uint64), ("value", np.int64), ("addr", np.uint32))


class UtxoCache:
    """The unspent outputs, keyed by outpoint: output id, value, address id (see the module).

    Example::

        cache = UtxoCache()
        cache.put(txids, vouts, output_ids, values, addresses)
        missing = cache.take(prev_txids, prev_vouts)  # -1: all found (and now spent)
    """

    def __init__(self, capacity: int = 1 << 16, spill_dir: Path | None = None) -> None:
        capacity = max(1 << 10, 1 << int(np.ceil(np.log2(capacity))))
        self.fp = np.zeros(capacity, np.uint64)
        self.meta = np.zeros(capacity, np.uint64)
        self.value = np.zeros(capacity, np.int64)
        self.addr = np.zeros(capacity, np.uint32)
        self.used = 0
        self.spill_dir = spill_dir

    @property
    def capacity(self) -> int:
        return int(self.fp.shape[0])

    @property
    def nbytes(self) -> int:
        return self.capacity * SLOT_BYTES

    def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.fp, self.meta, self.value, self.addr

    def reserve(self, extra: int) -> None:
        """Grow (doubling) so that `extra` more entries keep the load under MAX_LOAD."""
        capacity = self.capacity
        while self.used + extra > capacity * MAX_LOAD:
            capacity *= 2
        if capacity == self.capacity:
            return
        old: tuple[np.ndarray, ...] = self._tables()
        spill = None
        if self.spill_dir is not None and self.nbytes > SPILL_BYTES:
            # the old table goes to a file and is read back mapped: never two tables resident
            spill = Path(self.spill_dir) / "utxo-grow.tmp"
            shapes = [a.shape for a in old]
            with open(spill, "wb") as f:
                for a in old:
                    a.tofile(f)
                del a
            empty = np.zeros(0, np.uint64)
            old = ()
            self.fp = self.meta = empty
            self.value, self.addr = np.zeros(0, np.int64), np.zeros(0, np.uint32)
            maps = []
            offset = 0
            for (_, dtype), shape in zip(_FIELDS, shapes, strict=True):
                maps.append(
                    np.asarray(np.memmap(spill, dtype=dtype, mode="r", offset=offset, shape=shape))
                )
                offset += int(np.dtype(dtype).itemsize * shape[0])
            old = tuple(maps)
        new = tuple(np.zeros(capacity, dtype) for _, dtype in _FIELDS)
        step = 1 << 22
        for lo in range(0, old[0].shape[0], step):
            _reinsert(*new, *old, lo, min(lo + step, old[0].shape[0]))
        self.fp, self.meta, self.value, self.addr = new  # type: ignore[assignment]
        del old
        if spill is not None:
            os.unlink(spill)

    def put(
        self,
        txids: np.ndarray,
        vouts: np.ndarray,
        outputs: np.ndarray,
        values: np.ndarray,
        addresses: np.ndarray,
        tx_local: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add outputs; returns, per row, the output id an equal key held (-1: none), which the
        caller must confirm is the same outpoint (a duplicate txid) or reject. With `tx_local`,
        `txids` holds one row per tx (see keys_of)."""
        fps, checks = keys_of(txids, vouts, tx_local)
        self.reserve(fps.shape[0])
        replaced = np.empty(fps.shape[0], np.int64)
        self.used += int(
            _put(
                *self._tables(),
                fps,
                checks,
                np.ascontiguousarray(outputs, dtype=np.int64),
                np.ascontiguousarray(values, dtype=np.int64),
                np.ascontiguousarray(addresses, dtype=np.uint32),
                replaced,
            )
        )
        return replaced

    def take(
        self, txids: np.ndarray, vouts: np.ndarray
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Find and delete each outpoint, in order. Returns (the index of the first one not
        found, -1 if none; output ids, values, address ids as u4)."""
        fps, checks = keys_of(txids, vouts)
        n = fps.shape[0]
        outs = np.full(n, -1, np.int64)
        values = np.zeros(n, np.int64)
        addrs = np.full(n, NO_ADDRESS, np.uint32)
        bad = int(_take(*self._tables(), fps, checks, outs, values, addrs))
        self.used -= n if bad < 0 else bad
        return bad, outs, values, addrs

    def save(self, path_prefix: str) -> None:
        for name, _ in _FIELDS:
            np.save(f"{path_prefix}.{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, path_prefix: str, used: int, spill_dir: Path | None = None) -> UtxoCache:
        cache = cls(1 << 10, spill_dir)
        for name, _ in _FIELDS:
            setattr(cache, name, np.load(f"{path_prefix}.{name}.npy"))
        cache.used = used
        return cache
