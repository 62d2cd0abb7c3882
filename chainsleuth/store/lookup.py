"""On-disk lookup indexes whose cost follows the answer, not the chain: address -> outputs, txid -> tx.

    DATA/lookup/
      state.json                    epochs it is valid for, what it covers, its segments
      addr-base-g<gen>.off.bin      CSR offsets: address a's outputs are out[off[a]:off[a+1]]
      addr-base-g<gen>.out.bin      output ids sorted by (address, output id)          8 B/output
      addr-run-g<gen>.key.bin       a run: address id (u4) of each entry, sorted       4 B/entry
      addr-run-g<gen>.out.bin       ... and its output id (i8)                         8 B/entry
      txid-g<gen>.key.bin           first 8 bytes of each txid as u8, sorted            8 B/tx
      txid-g<gen>.tx.bin            ... and its tx id (u4)                              4 B/tx
      <run or txid>.fence.bin       its key file's fence (core.pages): the first key of every
                                    page, of every page of that, ...   1 key per 4 KiB of keys
      txfo.L<k>.bin                 the fence of the store's `tx_first_output` (i8), level k
                                    (1: every 512th tx's), append-only   ≈ 1/512 of 8 B/tx

The address index is a CSR base plus sorted runs (a small log-structured merge): each update
sorts only the outputs committed since the last one, in chunks of `CHUNK` entries, into a run;
when the runs hold more than `MERGE_FRACTION` of the base (or there are more than `MAX_RUNS`),
base and runs are merged into a new base, address range by address range, so memory holds one
range (about `CHUNK` entries) at a time. Every output is rewritten about
(1 + MERGE_FRACTION) / MERGE_FRACTION times over the life of the chain. The txid index is the
same idea without a base: sorted runs merged by key range. A txid match on the 8-byte prefix is
confirmed against `tx_txid`, so a prefix collision can never return the wrong transaction.

`txs_of_outputs` (the tx that created each output, for `address`) searches `tx_first_output`
through its fence the same way: 2-3 pages per output, not ~log2(txs / 512).

A search of a run reads its fence (one page per level, ≤ 3 levels up to 2^36 keys) and one
page of its keys, not the ~log2(n / 1024) cold pages of a binary search: the cost of a cold
`address` lookup does not grow with the run (docs/design/store.md, "Cold pages"). A run
written before fences existed has none: it is searched whole (same answer) until the next
writer writes its fence (`LookupBuilder.update`).

Readers never depend on the index being current: it covers outputs [0, covered) and txs
[0, covered) of the committed state, and a lookup scans the committed tail beyond that (a few
blocks at the tip; the whole chain for a store written before this index existed). A rollback
clips each segment to the fork point (`valid_hi`) before the rolled-back manifest is published,
so entries of removed outputs are ignored and later removed by a merge. An index whose epochs
do not include the store's is ignored (lookups scan) and rebuilt by the next writer.

Writes are atomic: new files get a fresh generation number, `state.json` is replaced in one
`os.replace`, then unreferenced files are deleted (a reader holding them mapped keeps them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from chainsleuth.core.files import atomic_write_bytes
from chainsleuth.core.pages import PAGE, FencedKeys, build_fence, fence_levels
from chainsleuth.store import addrindex, layout
from chainsleuth.store.layout import NONE32

DIR = "lookup"
#: Entries sorted at a time into a run while building: 8 B each of working memory (128 MiB).
CHUNK = 1 << 24
#: Entries of one range while merging: at most 16 B each of working memory (64 MiB) for the
#: address base, ≈ 40 B for txids (160 MiB).
RANGE_ENTRIES = 1 << 22
WRITE_SLICE = 1 << 20  # entries converted and written at a time
_LOW32 = np.uint64(0xFFFFFFFF)
MERGE_FRACTION = 0.25
MAX_RUNS = 8


#: The fence files of tx_first_output: lookup/txfo.L<k>.bin.
TX_FENCE = "txfo"
#: Outputs asked at once above which `txs_of_outputs` searches the whole array instead (its
#: pages are then touched anyway).
TXS_OF_OUTPUTS_FENCED = 1 << 16
#: Outputs searched through the fence at a time (a gather of 512 entries each: 4 MB).
FENCED_AT_ONCE = 1 << 10


def lookup_dir(data_dir: Path) -> Path:
    return Path(data_dir) / DIR


def txid_keys(txids: np.ndarray) -> np.ndarray:
    """The u8 sort key of each 32-byte txid row (its first 8 bytes, little-endian)."""
    rows = np.ascontiguousarray(txids, np.uint8).reshape(-1, 32)
    return rows[:, :8].copy().view("<u8").reshape(-1)


def _sync(*files: Any) -> None:
    for f in files:
        f.flush()
        os.fsync(f.fileno())


@njit(cache=True, nogil=True)
def _pack_run(addr):
    """(address << 32) | row for each row of `addr` (u4) that has an address."""
    n = 0
    for i in range(addr.shape[0]):
        if addr[i] != NONE32:
            n += 1
    out = np.empty(n, np.uint64)
    k = 0
    for i in range(addr.shape[0]):
        if addr[i] != NONE32:
            out[k] = (np.uint64(addr[i]) << np.uint64(32)) | np.uint64(i)
            k += 1
    return out


@njit(cache=True, nogil=True)
def _count_csr(off, out, valid_hi, shift, counts):
    """counts[k + shift] += valid outputs of the k-th address of a CSR slice."""
    base = off[0]
    for k in range(off.shape[0] - 1):
        for j in range(off[k] - base, off[k + 1] - base):
            if out[j] < valid_hi:
                counts[k + shift] += 1


@njit(cache=True, nogil=True)
def _count_run(key, out, valid_hi, a0, counts):
    for i in range(key.shape[0]):
        if out[i] < valid_hi:
            counts[np.int64(key[i]) - a0] += 1


@njit(cache=True, nogil=True)
def _scatter_csr(off, out, valid_hi, shift, fill, dest):
    base = off[0]
    for k in range(off.shape[0] - 1):
        for j in range(off[k] - base, off[k + 1] - base):
            if out[j] < valid_hi:
                dest[fill[k + shift]] = out[j]
                fill[k + shift] += 1


@njit(cache=True, nogil=True)
def _scatter_run(key, out, valid_hi, a0, fill, dest):
    for i in range(key.shape[0]):
        if out[i] < valid_hi:
            a = np.int64(key[i]) - a0
            dest[fill[a]] = out[i]
            fill[a] += 1


def _range_end(entries_below: Callable[[int], int], a0: int, n: int, limit: int) -> int:
    """The largest a1 in (a0, n] whose range [a0, a1) holds at most `limit` entries and
    addresses (at least one address, however many entries it has)."""
    start = entries_below(a0)
    lo, hi = a0 + 1, min(n, a0 + limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if entries_below(mid) - start <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _read(path: Path, dtype: str, random: bool = True) -> np.ndarray:
    """A file of the index, memory-mapped; `random` (lookups) turns read-around off."""
    size = path.stat().st_size
    n = size // np.dtype(dtype).itemsize
    if n == 0:
        return np.zeros(0, dtype)
    array = np.memmap(path, dtype=dtype, mode="r", shape=(n,))
    return layout.random_access(array) if random else array


def _fence_path(d: Path, name: str) -> Path:
    return d / f"{name}.fence.bin"


def _write_fence(d: Path, name: str, dtype: str) -> None:
    """Write the fence of run `name`'s key file (atomic; read back sequentially); none for a
    key file of at most FENCE_MIN_BYTES."""
    keys = _read(d / f"{name}.key.bin", dtype, random=False)
    if keys.nbytes <= FENCE_MIN_BYTES:
        return
    atomic_write_bytes(_fence_path(d, name), build_fence(np.asarray(keys)).astype(dtype).tobytes())


#: Key files up to this size get no fence: one read brings the whole file (a fence would only be
#: one more file to open and read cold; the tip's one-block runs are this small).
FENCE_MIN_BYTES = 1 << 16


def _fenced(d: Path, name: str, keys: np.ndarray) -> FencedKeys:
    """Keys with their fence when it exists and fits them (else a whole-array search)."""
    path = _fence_path(d, name)
    fence = None
    if keys.nbytes > FENCE_MIN_BYTES and path.exists():
        want = sum(fence_levels(keys.shape[0], keys.dtype.itemsize))
        if path.stat().st_size == want * keys.dtype.itemsize:
            fence = _read(path, keys.dtype.str) if want else np.zeros(0, keys.dtype)
    return FencedKeys(keys, fence)


@dataclass
class Segment:
    """One file pair of the index: ids in [lo, hi) it was built from; ids >= valid_hi ignored."""

    name: str
    kind: str  # "base" | "run" (address) | "txid"
    lo: int
    hi: int
    valid_hi: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _read_state(data_dir: Path) -> dict[str, Any] | None:
    path = lookup_dir(data_dir) / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state


class LookupIndex:
    """The committed lookup index of a store, read-only, with the tail beyond it scanned.

    Example::

        index = LookupIndex.open(store.data_dir, store.manifest)
        index.outputs_of_address(address_id)   # output ids, ascending
    """

    def __init__(self, data_dir: Path, manifest: dict[str, Any]) -> None:
        self.data_dir = Path(data_dir)
        self.counts: dict[str, int] = manifest["counts"]
        self.covered_outputs = 0
        self.covered_txs = 0
        self.base: tuple[np.ndarray, np.ndarray, Segment] | None = None
        self.runs: list[tuple[FencedKeys, np.ndarray, Segment]] = []
        self.txid_runs: list[tuple[FencedKeys, np.ndarray, Segment]] = []
        self.tx_fence = 0  # txs [0, tx_fence) of tx_first_output have a fence (txfo.L*.bin)

    @classmethod
    def open(cls, data_dir: Path, manifest: dict[str, Any]) -> LookupIndex:
        """The index valid for `manifest` (an empty one, so that lookups scan, when none is)."""
        index = cls(data_dir, manifest)
        state = _read_state(data_dir)
        if state is None or manifest["epoch"] not in state["epochs"]:
            return index
        if state["outputs"] > index.counts["outputs"] or state["txs"] > index.counts["txs"]:
            return index
        d = lookup_dir(data_dir)
        try:
            for raw in state["segments"]:
                seg = Segment(**raw)
                if seg.kind == "base":
                    index.base = (
                        _read(d / f"{seg.name}.off.bin", "<i8"),
                        _read(d / f"{seg.name}.out.bin", "<i8"),
                        seg,
                    )
                elif seg.kind == "run":
                    index.runs.append(
                        (
                            _fenced(d, seg.name, _read(d / f"{seg.name}.key.bin", "<u4")),
                            _read(d / f"{seg.name}.out.bin", "<i8"),
                            seg,
                        )
                    )
                else:
                    index.txid_runs.append(
                        (
                            _fenced(d, seg.name, _read(d / f"{seg.name}.key.bin", "<u8")),
                            _read(d / f"{seg.name}.tx.bin", "<u4"),
                            seg,
                        )
                    )
        except OSError:  # replaced by a writer between reading state.json and the files
            return cls(data_dir, manifest)
        index.covered_outputs = int(state["outputs"])
        index.covered_txs = int(state["txs"])
        index.tx_fence = min(int(state.get("tx_fence", 0)), index.covered_txs)
        return index

    def txs_of_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """The tx that created each output id (int64): `searchsorted(tx_first_output, o,
        "right") - 1`, through the fence of tx_first_output where there is one (2-3 pages per
        output, whatever the chain's length), the txs beyond it searched directly."""
        outs = np.asarray(outputs, np.int64).reshape(-1)
        n_tx = int(self.counts["txs"])
        first = layout.open_array(self.data_dir, "tx_first_output", n_tx, random=True)
        levels = self._tx_fence_levels()
        if levels is None or outs.shape[0] > TXS_OF_OUTPUTS_FENCED:
            return np.searchsorted(first, outs, side="right").astype(np.int64) - 1
        nf = self.tx_fence
        fenced = FencedKeys(first[:nf], levels)
        out = np.empty(outs.shape[0], np.int64)
        for lo in range(0, outs.shape[0], FENCED_AT_ONCE):  # bounded gathers (see the method)
            part = outs[lo : lo + FENCED_AT_ONCE]
            r = fenced.searchsorted_many(part, "right")
            tail = (r == nf) & (nf < n_tx)  # beyond the fenced txs: the few at the tip
            if tail.any():
                r[tail] = nf + np.searchsorted(first[nf:], part[tail], side="right")
            out[lo : lo + FENCED_AT_ONCE] = r - 1
        return out

    def _tx_fence_levels(self) -> list[np.ndarray] | None:
        """tx_first_output's fence levels for txs [0, tx_fence), top first; None without."""
        if self.tx_fence == 0:
            return None
        sizes = fence_levels(self.tx_fence, 8)[::-1]  # level 1 first
        d = lookup_dir(self.data_dir)
        levels = []
        for k, size in enumerate(sizes, start=1):
            path = d / f"{TX_FENCE}.L{k}.bin"
            try:
                if path.stat().st_size < size * 8:
                    return None
                levels.append(_read(path, "<i8")[:size])
            except OSError:
                return None
        return levels[::-1]

    def outputs_of_address(self, address_id: int) -> np.ndarray:
        """Output ids paying `address_id`, ascending (index segments, then the scanned tail)."""
        if address_id < 0:
            return np.zeros(0, np.int64)
        parts = []
        if self.base is not None:
            off, out, seg = self.base
            if address_id + 1 < off.shape[0]:
                got = np.asarray(out[int(off[address_id]) : int(off[address_id + 1])])
                parts.append(got[got < seg.valid_hi])
        for key, out, seg in self.runs:
            if address_id >= 2**32:
                continue
            lo = key.searchsorted(address_id, "left")
            hi = key.searchsorted(address_id, "right")
            got = np.asarray(out[int(lo) : int(hi)])
            parts.append(got[got < seg.valid_hi])
        n_out = self.counts["outputs"]
        if self.covered_outputs < n_out:
            tail = layout.open_array(self.data_dir, "output_address", n_out)[self.covered_outputs :]
            parts.append(np.flatnonzero(np.asarray(tail) == address_id) + self.covered_outputs)
        if not parts:
            return np.zeros(0, np.int64)
        return np.sort(np.concatenate(parts).astype(np.int64))

    def outputs_of_addresses(self, address_ids: np.ndarray) -> np.ndarray:
        """Output ids paying any of `address_ids`, ascending."""
        parts = [self.outputs_of_address(int(a)) for a in np.unique(address_ids)]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def tx_id_of(self, txid: bytes) -> int | None:
        """Dense id of a txid (internal byte order); the latest one for a BIP30 duplicate."""
        n_tx = self.counts["txs"]
        txids = layout.open_array(self.data_dir, "tx_txid", n_tx, random=True)
        want = np.frombuffer(txid, np.uint8)
        key = txid_keys(want)[0]
        found: list[int] = []
        for keys, ids, seg in self.txid_runs:
            lo = keys.searchsorted(key, "left")
            hi = keys.searchsorted(key, "right")
            for t in np.asarray(ids[int(lo) : int(hi)]).astype(np.int64).tolist():
                if t < seg.valid_hi and (np.asarray(txids[t]) == want).all():
                    found.append(t)
        if self.covered_txs < n_tx:
            tail = np.asarray(txids[self.covered_txs :])
            found.extend((np.flatnonzero((tail == want).all(axis=1)) + self.covered_txs).tolist())
        return max(found) if found else None


# ---------------------------------------------------------------------------- building
class LookupBuilder:
    """Brings the lookup index up to a committed state; called by the writer (holding its lock).

    Example::

        LookupBuilder(data_dir).update(manifest)
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.dir = lookup_dir(data_dir)

    def _state(self, epoch: int) -> dict[str, Any]:
        state = _read_state(self.data_dir)
        if state is None or epoch not in state["epochs"]:
            return {"epochs": [epoch], "generation": 0, "outputs": 0, "txs": 0, "segments": []}
        state["epochs"] = [epoch]
        return state

    def covered_outputs(self, manifest: dict[str, Any]) -> int:
        """Outputs the published index covers for `manifest`'s epoch (0 when none)."""
        state = _read_state(self.data_dir)
        if state is None or manifest["epoch"] not in state["epochs"]:
            return 0
        return int(state["outputs"])

    def _publish(self, state: dict[str, Any]) -> None:
        atomic_write_bytes(self.dir / "state.json", json.dumps(state, indent=1).encode())
        self.remove_unlisted(state)

    def remove_unlisted(self, state: dict[str, Any] | None = None) -> None:
        """Delete files no published state names (left by an interrupted update)."""
        state = state if state is not None else _read_state(self.data_dir)
        if not self.dir.exists():
            return
        keep = {s["name"] for s in (state or {}).get("segments", [])} | {TX_FENCE}
        for path in self.dir.glob("*.bin"):
            if path.name.split(".")[0] not in keep:
                path.unlink()

    def clip(self, manifest_before: dict[str, Any], keep_outputs: int, keep_txs: int) -> None:
        """Before a rollback is published: ignore entries of outputs/txs from the fork on.

        The clipped index is valid for the old epoch and the next one (epoch + 1).
        """
        state = _read_state(self.data_dir)
        if state is None or manifest_before["epoch"] not in state["epochs"]:
            return
        for seg in state["segments"]:
            limit = keep_txs if seg["kind"] == "txid" else keep_outputs
            seg["valid_hi"] = min(seg["valid_hi"], limit)
        state["outputs"] = min(state["outputs"], keep_outputs)
        state["txs"] = min(state["txs"], keep_txs)
        state["tx_fence"] = min(int(state.get("tx_fence", 0)), keep_txs)
        state["epochs"] = [manifest_before["epoch"], manifest_before["epoch"] + 1]
        atomic_write_bytes(self.dir / "state.json", json.dumps(state, indent=1).encode())

    def update(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Index what `manifest` committed beyond the index; merge runs when due. Returns state."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self._state(int(manifest["epoch"]))
        counts = manifest["counts"]
        n_out, n_tx = int(counts["outputs"]), int(counts["txs"])
        changed = False
        if state["outputs"] < n_out:
            out_address = layout.open_array(self.data_dir, "output_address", n_out)
            for lo in range(state["outputs"], n_out, CHUNK):
                hi = min(lo + CHUNK, n_out)
                # One u8 per entry, (address << 32) | (output - lo), sorted in place: 8 B per
                # entry of working memory (an argsort and its gathers took ≈ 50 B).
                packed = _pack_run(np.asarray(out_address[lo:hi]))
                packed.sort()
                name = self._name(state, "addr-run")
                with (
                    open(self.dir / f"{name}.key.bin", "wb") as f_key,
                    open(self.dir / f"{name}.out.bin", "wb") as f_out,
                ):
                    for s0 in range(0, packed.shape[0], WRITE_SLICE):
                        part = packed[s0 : s0 + WRITE_SLICE]
                        f_key.write((part >> np.uint64(32)).astype("<u4").tobytes())
                        f_out.write(((part & _LOW32).astype(np.int64) + lo).astype("<i8").tobytes())
                    _sync(f_key, f_out)
                del packed
                _write_fence(self.dir, name, "<u4")
                state["segments"].append(Segment(name, "run", lo, hi, hi).to_json())
            state["outputs"] = n_out
            changed = True
        if state["txs"] < n_tx:
            txids = layout.open_array(self.data_dir, "tx_txid", n_tx)
            for lo in range(state["txs"], n_tx, CHUNK):
                hi = min(lo + CHUNK, n_tx)
                keys = txid_keys(np.asarray(txids[lo:hi]))
                order = np.argsort(keys, kind="stable")
                name = self._name(state, "txid")
                with (
                    open(self.dir / f"{name}.key.bin", "wb") as f_key,
                    open(self.dir / f"{name}.tx.bin", "wb") as f_tx,
                ):
                    for s0 in range(0, order.shape[0], WRITE_SLICE):
                        part = order[s0 : s0 + WRITE_SLICE]
                        f_key.write(keys[part].tobytes())
                        f_tx.write((part + lo).astype("<u4").tobytes())
                    _sync(f_key, f_tx)
                del keys, order
                _write_fence(self.dir, name, "<u8")
                state["segments"].append(Segment(name, "txid", lo, hi, hi).to_json())
            state["txs"] = n_tx
            changed = True
        if int(state.get("tx_fence", 0)) != n_tx:
            self._extend_tx_fence(int(state.get("tx_fence", 0)), n_tx)
            state["tx_fence"] = n_tx
            changed = True
        if changed or not (self.dir / "state.json").exists():
            state = self._maybe_merge(state, int(counts["addresses"]))
            self._publish(state)
        self._fence_older(state)
        return state

    def _fence_older(self, state: dict[str, Any]) -> None:
        """Write the fence of each listed run that has none (runs written before fences; the
        readers search those whole until then). One sequential read of each, once."""
        for seg in state["segments"]:
            key = self.dir / f"{seg['name']}.key.bin"
            small = not key.exists() or key.stat().st_size <= FENCE_MIN_BYTES
            if (
                seg["kind"] != "base"
                and not small
                and not _fence_path(self.dir, seg["name"]).exists()
            ):
                _write_fence(self.dir, seg["name"], "<u4" if seg["kind"] == "run" else "<u8")

    def _extend_tx_fence(self, n_old: int, n_new: int) -> None:
        """Bring tx_first_output's fence from txs [0, n_old) to [0, n_new): each level keeps
        its entries that are still valid and appends the new ones (reads only the new txs'
        entries, one per 512 txs). Entry j of level 1 is tx_first_output[j * 512], of level
        k + 1 level k's [j * 512]; the levels stop at one of ≤ 512 entries."""
        per_page = PAGE // 8
        n_old = min(n_old, n_new)
        source: np.ndarray = layout.open_array(self.data_dir, "tx_first_output", n_new)
        level = 1
        while True:
            path = self.dir / f"{TX_FENCE}.L{level}.bin"
            have = path.stat().st_size // 8 if path.exists() else 0
            keep = min(-(-n_old // per_page), have)  # a level that did not exist: from 0
            size = -(-n_new // per_page)
            entries = np.asarray(source[keep * per_page : n_new : per_page], "<i8")
            with open(path, "r+b" if path.exists() else "wb") as f:
                f.truncate(keep * 8)
                f.seek(keep * 8)
                f.write(entries.tobytes())
                _sync(f)
            if size <= per_page:
                break
            source = _read(path, "<i8", random=False)[:size]
            n_old, n_new = keep, size
            level += 1
        for stale in self.dir.glob(f"{TX_FENCE}.L*.bin"):  # levels a longer chain had
            if int(stale.name.split(".")[1][1:]) > level:
                stale.unlink()

    def _name(self, state: dict[str, Any], prefix: str) -> str:
        state["generation"] += 1
        return f"{prefix}-g{state['generation']:08d}"

    def _maybe_merge(self, state: dict[str, Any], n_addresses: int) -> dict[str, Any]:
        segs = [Segment(**s) for s in state["segments"]]
        base = [s for s in segs if s.kind == "base"]
        runs = [s for s in segs if s.kind == "run"]
        txid = [s for s in segs if s.kind == "txid"]
        base_n = sum(self._entries(s) for s in base)
        run_n = sum(self._entries(s) for s in runs)
        if runs and (len(runs) > MAX_RUNS or run_n > MERGE_FRACTION * base_n):
            new_base = self._merge_addresses(state, base[0] if base else None, runs, n_addresses)
            base, runs = [new_base], []
        if len(txid) > MAX_RUNS:
            txid = [self._merge_txids(state, txid)]
        state["segments"] = [s.to_json() for s in (*base, *runs, *txid)]
        return state

    def _entries(self, seg: Segment) -> int:
        suffix = ".key.bin" if seg.kind != "base" else ".out.bin"
        width = 4 if seg.kind == "run" else 8
        return (self.dir / f"{seg.name}{suffix}").stat().st_size // width

    def _merge_addresses(
        self, state: dict[str, Any], base: Segment | None, runs: list[Segment], n_addresses: int
    ) -> Segment:
        """A new CSR base from the base and the runs, one address range at a time.

        Each range holds at most `RANGE_ENTRIES` entries (chosen by counting them in the
        sources, not by splitting the address ids evenly: reused addresses make the entries
        uneven). Sources are in output order (the base, then the runs by `lo`) and each is
        sorted by (address, output), so scattering them in that order into each address's slot
        keeps every address's outputs ascending: the working memory is the range's output ids
        and one counter per address of the range, 16 B per entry at most.
        """
        d = self.dir
        base_off = base_out = None
        base_valid = 0
        if base is not None:
            base_off = np.asarray(_read(d / f"{base.name}.off.bin", "<i8", random=False))
            base_out = np.asarray(_read(d / f"{base.name}.out.bin", "<i8", random=False))
            base_valid = base.valid_hi
        run_src = [
            (
                np.asarray(_read(d / f"{seg.name}.key.bin", "<u4", random=False)),
                np.asarray(_read(d / f"{seg.name}.out.bin", "<i8", random=False)),
                seg.valid_hi,
            )
            for seg in sorted(runs, key=lambda s: s.lo)
        ]

        def entries_below(a: int) -> int:
            """Entries (valid or not) of addresses below `a`, over every source."""
            n = 0
            if base_off is not None:
                n += int(base_off[min(a, base_off.shape[0] - 1)])
            for key, _, _ in run_src:
                n += int(np.searchsorted(key, a))
            return n

        name = self._name(state, "addr-base")
        written = 0
        hi_all = max(s.hi for s in (base, *runs) if s is not None)
        with open(d / f"{name}.off.bin", "wb") as f_off, open(d / f"{name}.out.bin", "wb") as f_out:
            f_off.write(np.zeros(1, "<i8").tobytes())
            a0 = 0
            while a0 < n_addresses:
                a1 = _range_end(entries_below, a0, n_addresses, RANGE_ENTRIES)
                counts = np.zeros(a1 - a0, np.int64)
                # (is the base, CSR offsets or run keys, output ids, valid_hi, address shift)
                parts: list[tuple[bool, np.ndarray, np.ndarray, int, int]] = []
                if base_off is not None and base_out is not None:
                    nb = base_off.shape[0] - 1
                    b0, b1 = min(a0, nb), min(a1, nb)
                    off = base_off[b0 : b1 + 1]
                    parts.append((True, off, base_out[off[0] : off[-1]], base_valid, b0 - a0))
                for key, out, valid in run_src:
                    lo, hi = (int(x) for x in np.searchsorted(key, [a0, a1]))
                    parts.append((False, key[lo:hi], out[lo:hi], valid, a0))
                for is_base, index, src, valid, shift in parts:
                    if is_base:
                        _count_csr(index, src, valid, shift, counts)
                    else:
                        _count_run(index, src, valid, shift, counts)
                ends = np.cumsum(counts)
                fill = ends - counts  # where each address's next output goes
                dest = np.empty(int(ends[-1]) if ends.shape[0] else 0, np.int64)
                for is_base, index, src, valid, shift in parts:
                    if is_base:
                        _scatter_csr(index, src, valid, shift, fill, dest)
                    else:
                        _scatter_run(index, src, valid, shift, fill, dest)
                f_out.write(dest.astype("<i8").tobytes())
                f_off.write((written + ends).astype("<i8").tobytes())
                written += int(dest.shape[0])
                del counts, ends, fill, dest, parts
                a0 = a1
            _sync(f_off, f_out)
        return Segment(name, "base", 0, hi_all, hi_all)

    def _merge_txids(self, state: dict[str, Any], runs: list[Segment]) -> Segment:
        """One txid run from several, one key range at a time."""
        d = self.dir
        sources = [
            (
                seg,
                _read(d / f"{seg.name}.key.bin", "<u8", random=False),
                _read(d / f"{seg.name}.tx.bin", "<u4", random=False),
            )
            for seg in sorted(runs, key=lambda s: s.lo)
        ]
        total = sum(int(k.shape[0]) for _, k, _ in sources)
        name = self._name(state, "txid")
        # txid keys are uniform, so even key ranges hold about RANGE_ENTRIES entries each
        n_ranges = max(1, -(-total // RANGE_ENTRIES))
        cuts = [(2**64 * i) // n_ranges for i in range(n_ranges + 1)]
        with open(d / f"{name}.key.bin", "wb") as f_key, open(d / f"{name}.tx.bin", "wb") as f_tx:
            for k0, k1 in zip(cuts[:-1], cuts[1:], strict=True):
                keys, ids = [], []
                for seg, key, tx in sources:
                    lo = int(np.searchsorted(key, np.uint64(k0)))
                    hi = key.shape[0] if k1 >= 2**64 else int(np.searchsorted(key, np.uint64(k1)))
                    t = np.asarray(tx[lo:hi])
                    ok = t.astype(np.int64) < seg.valid_hi
                    keys.append(np.asarray(key[lo:hi])[ok])
                    ids.append(t[ok])
                k = np.concatenate(keys)
                t = np.concatenate(ids)
                del keys, ids
                # sources are in tx order and each is sorted by (key, tx): a stable sort by key
                # alone gives (key, tx) order
                order = np.argsort(k, kind="stable")
                f_key.write(k[order].astype("<u8").tobytes())
                f_tx.write(t[order].astype("<u4").tobytes())
                del k, t, order
            _sync(f_key, f_tx)
        _write_fence(d, name, "<u8")
        lo = min(s.lo for s in runs)
        hi = max(s.hi for s in runs)
        return Segment(name, "txid", lo, hi, hi)


# ------------------------------------------------------------------ address key -> id
def address_id_of_key(data_dir: Path, manifest: dict[str, Any], key: np.ndarray) -> int | None:
    """Dense id of an address key row (kind, length, payload), or None.

    Probes the writer's address index (addrindex.py: one page of one shard per table, no key
    row read), and scans only the keys added after it was last saved; without a usable index
    it scans every key.
    """
    n_addr = int(manifest["counts"]["addresses"])
    keys = layout.open_array(data_dir, "address_key", n_addr, random=True)
    if n_addr == 0:
        return None
    want = np.ascontiguousarray(key, np.uint8).reshape(1, -1)
    found, covered = addrindex.find_ids(Path(data_dir), want, keys)
    if found[0] >= 0:
        return int(found[0])
    tail = np.asarray(keys[covered:])
    matches = np.flatnonzero((tail == want[0]).all(axis=1))
    return int(matches[0]) + covered if matches.shape[0] else None
