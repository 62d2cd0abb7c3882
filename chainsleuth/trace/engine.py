"""Taint tracing: follow amounts backward to their sources or forward to their destinations.

The trace stage reads the store's memory-mapped arrays (and the cluster stage's `cluster_of`
when stop clusters are given) and runs one numba walk (`kernels.trace_kernel`) over a frontier
of traced amounts, splitting each amount across a transaction's inputs (backward) or outputs
(forward) under a taint policy: poison, haircut or FIFO (docs/design/trace.md). Called by the
`trace` CLI command (`chainsleuth.trace.cli`) and by notebook users directly.

    >>> from chainsleuth.trace.engine import trace_back, outputs_of_tx
    >>> store = Store.open(data)                                        # doctest: +SKIP
    >>> result = trace_back(data, outputs_of_tx(store, 170)[:1])        # doctest: +SKIP
    >>> result.kind_names(), result.amount, result.path(0)              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.scratch import Scratch, scratch_array
from chainsleuth.store import tracerows
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.store import Store
from chainsleuth.trace import kernels

POLICIES = {
    "poison": kernels.POLICY_POISON,
    "haircut": kernels.POLICY_HAIRCUT,
    "fifo": kernels.POLICY_FIFO,
}
#: Row kinds by code: where a traced amount stopped.
KINDS = (
    "cluster",
    "coinbase",
    "coinjoin",
    "max_hops",
    "unspent",
    "limit",
    "seed_limit",
    "time_window",
)
FLAG_POISON = kernels.FLAG_POISON
FLAG_LOW_CONFIDENCE = kernels.FLAG_LOW_CONFIDENCE
FLAG_MIX_CHANGE = kernels.FLAG_MIX_CHANGE
DEFAULT_MAX_ENTRIES = 20_000_000  # about 1 GB of frontier (49 B per entry)
DEFAULT_MAX_ENTRIES_PER_SEED = 1 << 62  # no cap unless asked


@dataclass(frozen=True)
class TraceOptions:
    """How a trace walks: the taint policy and the limits, one value for a whole trace.

    `policy`: "poison", "haircut" or "fifo" (`POLICIES`). A walk stops after `max_hops` hops.
    Amounts below `min_value` satoshis, and shares below `min_fraction` of their seed's value,
    are dropped (summed per seed in `TraceResult.dropped`), except, walking back, a share that
    pays a stop cluster: it ends there as any stop does. `walk_coinjoins` walks through
    CoinJoins instead of stopping there (rows beyond are flagged FLAG_LOW_CONFIDENCE). A walk
    that would hold more than `max_entries` frontier entries stops early (kind "limit"), and a
    seed whose walk would hold more than `max_entries_per_seed` stops there (kind
    "seed_limit"). `min_height` / `max_height` bound the time window: a tx outside it is not
    walked through (kind "time_window").

    What the walk stops at (stop clusters, CoinJoin flags, the clustering) is data, not a
    setting, so it is passed to `trace_back` / `trace_forward` beside this object.

        >>> opts = TraceOptions(policy="poison", max_hops=3)
        >>> trace_back(data, seeds, opts)                       # doctest: +SKIP
        >>> trace_back(data, seeds, opts, max_hops=1)           # one field changed, doctest: +SKIP
    """

    policy: str = "haircut"
    max_hops: int = 6
    min_value: int = 0
    min_fraction: float = 0.0
    walk_coinjoins: bool = False
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_entries_per_seed: int = DEFAULT_MAX_ENTRIES_PER_SEED
    min_height: int | None = None
    max_height: int | None = None


def _options(options: TraceOptions | None, settings: dict[str, Any]) -> TraceOptions:
    """`options` (default: `TraceOptions()`) with the fields named in `settings` replaced."""
    base = TraceOptions() if options is None else options
    return replace(base, **settings) if settings else base


@dataclass(frozen=True)
class TraceResult:
    """Sources (backward) or destinations (forward) of a trace, one row per path that stopped.

    Row arrays (one value per row): `seed` (index into `seeds`), `output`, `tx` (where the walk
    stopped: the output's creating tx, or the CoinJoin that spends it on a forward trace),
    `amount` (satoshis), `hops`, `kind` (code into `KINDS`), `flags` (FLAG_POISON,
    FLAG_LOW_CONFIDENCE) and `entry` (the row's frontier entry). `dropped` (per seed): satoshis
    not followed because their share fell below the seed's minimum (`min_value`,
    `min_fraction`). `entry_parent` and `entry_tx`
    are parent pointers over every visited entry, `entry_output` and `entry_hops` its output and
    hop count; `path(row)` rebuilds a row's tx ids.
    """

    direction: str
    policy: str
    seeds: np.ndarray
    seed: np.ndarray
    output: np.ndarray
    tx: np.ndarray
    amount: np.ndarray
    hops: np.ndarray
    kind: np.ndarray
    flags: np.ndarray
    entry: np.ndarray
    entry_parent: np.ndarray
    entry_tx: np.ndarray
    entry_output: np.ndarray
    entry_hops: np.ndarray
    dropped: np.ndarray

    @property
    def hit_limit(self) -> bool:
        """Did the whole walk stop at `max_entries` (rows of kind "limit")?"""
        return bool((self.kind == kernels.KIND_LIMIT).any())

    def __len__(self) -> int:
        return int(self.output.shape[0])

    def path(self, row: int) -> np.ndarray:
        """Tx ids walked from the seed to row `row` (int64; empty when the seed itself stopped)."""
        out: np.ndarray = kernels.path_of(int(self.entry[row]), self.entry_parent, self.entry_tx)
        return out

    def kind_names(self) -> list[str]:
        return [KINDS[k] for k in self.kind.tolist()]

    def total_by_kind(self) -> dict[str, int]:
        """Traced satoshis per kind, summed over rows (poison rows overlap: see the docs)."""
        sums = np.bincount(self.kind, weights=self.amount, minlength=len(KINDS))
        return {KINDS[k]: int(sums[k]) for k in range(len(KINDS)) if sums[k]}


def outputs_of_tx(store: Store, tx_id: int) -> np.ndarray:
    """Output ids of transaction `tx_id`, in vout order.

    >>> outputs_of_tx(store, store.tx_id_of("f4184fc5..."))               # doctest: +SKIP
    """
    first = store.graph.tx_first_output
    if not 0 <= tx_id < first.shape[0]:
        raise ChainsleuthError(f"no tx {tx_id} in the store")
    hi = int(first[tx_id + 1]) if tx_id + 1 < first.shape[0] else store.counts["outputs"]
    return np.arange(int(first[tx_id]), hi, dtype=np.int64)


#: Addresses worked at once when a stop flag per address is built (`address_stops`).
ADDRESS_SLICE = 1 << 20


@dataclass(frozen=True)
class AddressStops:
    """A stop flag per address id (bool, 1 B per address), worked out once from stop clusters
    and a clustering (`address_stops`) and shared read-only by every chunk and thread of a
    trace. Passed as `stop_clusters`, it replaces the per-output cluster lookup: the walk reads
    `mask[address]` and needs no cluster id per address (`cluster_of` is then ignored), so a
    clustering with delta layers is never materialised (8 B per address) for a trace. An
    address beyond the mask (ingested after the clustering) is its own cluster and not a stop,
    as with a `cluster_of` that does not reach it."""

    mask: np.ndarray


def address_stops(
    stop_clusters: np.ndarray,
    cluster_of: Any,
    stop_sorted: bool = False,
    outside: bool = False,
    scratch: Scratch | None = None,
) -> AddressStops:
    """`AddressStops` of `stop_clusters` under `cluster_of` (cluster id per address id: an
    array, or anything sliced like one, such as `cluster.layers.LayeredIds`), read a slice of
    ADDRESS_SLICE addresses at a time. `stop_clusters` is a bool mask over cluster ids, or,
    with `stop_sorted`, the stop cluster ids sorted and unique (no mask over cluster ids is
    built: O(stops) besides the result). `outside` (with `stop_sorted`) stops at every cluster
    id in [0, addresses) that is *not* one of them: the mask `~m` of their mask `m`, unbuilt.
    `scratch` (core.scratch): the mask file-backed (page cache, not anonymous memory)."""
    n = int(cluster_of.shape[0])
    mask = scratch_array(scratch, n, np.bool_)
    stops = np.asarray(stop_clusters)
    for lo in range(0, n, ADDRESS_SLICE):
        hi = min(n, lo + ADDRESS_SLICE)
        c = np.asarray(cluster_of[lo:hi], np.int64)
        if stop_sorted:
            hit = np.zeros(hi - lo, np.bool_)
            if stops.shape[0]:
                pos = np.minimum(np.searchsorted(stops, c), stops.shape[0] - 1)
                hit = stops[pos] == c
            mask[lo:hi] = (~hit & (c >= 0) & (c < max(n, 1))) if outside else hit
        else:
            inside = (c >= 0) & (c < stops.shape[0])
            mask[lo:hi][inside] = stops[c[inside]]
    return AddressStops(mask)


def _stop_clusters(
    store_dir: Path,
    stop_clusters: Collection[int] | np.ndarray | AddressStops | None,
    cluster_of: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(a bool per cluster id: is it a stop cluster, the cluster id per address id), as the
    kernel looks them up per traced output; both empty when no stop clusters are given.

    Nothing here is O(addresses) beyond what the caller hands in (a bool mask, or ids: a
    mask up to the largest id), so a trace in many chunks pays for it once per chunk only in
    the ids' size.
    """
    empty = np.zeros(0, np.bool_)
    if stop_clusters is None:
        return empty, np.zeros(0, np.int64)
    if isinstance(stop_clusters, AddressStops):
        # no cluster id per address: the kernel takes each address as its own cluster, so
        # the flag per cluster id it reads is the flag per address
        return stop_clusters.mask, np.zeros(0, np.int64)
    if cluster_of is None:
        from chainsleuth.cluster.engine import Clusters

        cluster_of = np.asarray(Clusters(store_dir).cluster_of)
    cluster_of = np.asarray(cluster_of)
    if cluster_of.dtype.kind not in "iu":
        cluster_of = cluster_of.astype(np.int64)
    stop = np.asarray(stop_clusters)
    if stop.dtype != np.bool_:
        ids = np.asarray(list(stop_clusters) if stop.ndim == 0 else stop, np.int64)
        ids = ids[ids >= 0]
        stop = np.zeros(int(ids.max(initial=-1)) + 1, np.bool_)
        stop[ids] = True
    return stop, cluster_of


#: Whether backward walks read the trace rows (`tracerows`, written on first use); False: the
#: fence and the store's own arrays only (the tests compare the two).
USE_TRACE_ROWS = True

_Chain = tuple[ChainGraph, np.ndarray, int, tuple[np.ndarray, np.ndarray]]
_CHAINS: dict[tuple[str, str, int, int, bool], _Chain] = {}
_CHAIN_LOCK = threading.Lock()


def _chain(store: Store) -> _Chain:
    """The store's mapped arrays, its creating-tx fence (`kernels.creator_fence`: 4 B per 32
    outputs, one pass over `tx_first_output`), the fence's shift and the store's trace rows
    (`store.tracerows`, written by the ingest; empty arrays where the store has none that
    cover it, or USE_TRACE_ROWS is off: the walk then uses the fence), made on first
    use and kept for the process, per store folder, tip and counts (an ingest or a rollback
    makes new ones). So the chunks and threads of one investigation map the arrays once: a
    page each chunk reads is faulted into this process once, where a `Store.open` per chunk
    mapped every array again and faulted every page it read again (tens of thousands of
    minor faults a chunk on a 2 M-tx chain), and the fence is built once."""
    n_txs, n_outputs = store.counts["txs"], store.counts["outputs"]
    key = (
        str(store.data_dir.resolve()),
        str(store.manifest.get("tip")),
        n_txs,
        n_outputs,
        USE_TRACE_ROWS,
    )
    with _CHAIN_LOCK:
        chain = _CHAINS.get(key)
        if chain is None:
            graph = store.graph
            shift = kernels.fence_shift(n_outputs)
            fence = kernels.creator_fence(graph.tx_first_output, n_outputs, shift)
            rows = tracerows.read_rows(store.data_dir, graph) if USE_TRACE_ROWS else None
            for old in [k for k in _CHAINS if k[0] == key[0]]:
                del _CHAINS[old]
            chain = _CHAINS[key] = (graph, fence, shift, rows or tracerows.EMPTY_ROWS)
    return chain


def creator_fence(store: Store) -> np.ndarray:
    """The store's creating-tx fence, kept with its arrays (`_chain`)."""
    return _chain(store)[1]


#: The kernel's scratch (`kernels.empty_work`) kept per thread between calls, up to this many
#: bytes: the chunks of an investigation reuse its pages instead of faulting new ones in each.
WORK_KEEP_BYTES = 128 << 20
_WORK = threading.local()


def _work() -> tuple[np.ndarray, ...]:
    work: tuple[np.ndarray, ...] | None = getattr(_WORK, "arrays", None)
    _WORK.arrays = None  # a nested or failing call must not share them
    return work if work is not None else tuple(kernels.empty_work()[:3])


#: Entry and row arrays (`kernels.empty_entries`) kept for the next walk while a
#: `pooled_entries` block runs: at most this many sets unless the block asks for more (a set
#: for each walking thread, one for the caller's result and one for the next walk). A set is
#: handed out only when no array views it any more (the results of earlier walks were
#: dropped), so walks never share one.
ENTRY_POOL_SETS = 4
_POOL: list[list[np.ndarray]] | None = None
_POOL_DEPTH = 0
_POOL_SETS = ENTRY_POOL_SETS
_POOL_LOCK = threading.Lock()


@contextmanager
def pooled_entries(sets: int = ENTRY_POOL_SETS) -> Iterator[None]:
    """Within the block, walks write their entries and rows into arrays kept from earlier walks
    whose results are gone, instead of new ones: a walk in many chunks (`cases.investigate`
    `_in_chunks`) faults its entries' pages in once per thread, not once per chunk (about 49 B
    an entry: some 4 k minor faults per 330 k-entry chunk; a 1M-seed trace on a 2 M-tx chain
    took 50-63 k faults a run, 16-27 k pooled; docs/design/trace.md). At most `sets` sets are
    kept (the outermost block's); they are let go at the block's end."""
    global _POOL, _POOL_DEPTH, _POOL_SETS
    with _POOL_LOCK:
        _POOL_DEPTH += 1
        if _POOL is None:
            _POOL = []
            _POOL_SETS = max(1, sets)
    try:
        yield
    finally:
        with _POOL_LOCK:
            _POOL_DEPTH -= 1
            if _POOL_DEPTH == 0:
                _POOL = None


def _unviewed(arrays: list[np.ndarray]) -> bool:
    # two references each when only the pool's list holds it: the list's and getrefcount's
    # argument; every view of it (a result's column, numba's returned slices) adds one
    return all(sys.getrefcount(arrays[i]) == 2 for i in range(len(arrays)))


def _take_entries(room: int) -> list[np.ndarray]:
    """An unviewed pooled set with `room` (removed from the pool), or new unwritten arrays;
    empty arrays (the walk makes its own) outside `pooled_entries`."""
    with _POOL_LOCK:
        if _POOL is None:
            return list(kernels.empty_entries(0))
        for k in range(len(_POOL)):
            if _POOL[k][0].shape[0] >= room and _unviewed(_POOL[k]):
                return _POOL.pop(k)
    return list(kernels.empty_entries(room))


def _give_back(arrays: list[np.ndarray]) -> None:
    with _POOL_LOCK:
        if _POOL is not None and arrays[0].shape[0] > 0:
            _POOL.append(arrays)
            if len(_POOL) > _POOL_SETS:
                # drop a set still viewed (its memory goes with its result), else the oldest
                held = [k for k in range(len(_POOL)) if not _unviewed(_POOL[k])]
                _POOL.pop(held[0] if held else 0)


def _keep_work(work: list[np.ndarray]) -> None:
    _WORK.arrays = tuple(work) if sum(a.nbytes for a in work) <= WORK_KEEP_BYTES else None


def _trace(
    backward: bool,
    store_dir: Path,
    seeds: Collection[int] | np.ndarray,
    options: TraceOptions,
    stop_clusters: Collection[int] | np.ndarray | AddressStops | None,
    is_coinjoin: np.ndarray | None,
    cluster_of: np.ndarray | None,
    mix_change: tuple[np.ndarray, np.ndarray] | None = None,
) -> TraceResult:
    policy = options.policy
    if policy not in POLICIES:
        raise ChainsleuthError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    store = Store.open(Path(store_dir))
    seed_arr = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds, np.int64)
    n_outputs, n_txs = store.counts["outputs"], store.counts["txs"]
    if seed_arr.shape[0] and (seed_arr.min() < 0 or seed_arr.max() >= n_outputs):
        raise ChainsleuthError(f"seed output ids must lie in [0, {n_outputs})")
    graph, fence, shift, rows = _chain(store)
    value = graph.output_value
    coinjoin = np.zeros(n_txs, np.bool_) if is_coinjoin is None else np.asarray(is_coinjoin)
    if coinjoin.shape[0] < n_txs:
        raise ChainsleuthError(f"is_coinjoin has {coinjoin.shape[0]} entries; the store {n_txs}")
    seed_values = value[seed_arr].astype(np.int64)
    entries = _take_entries(kernels.entry_room(seed_arr.shape[0], options.max_entries))
    seed_min = np.maximum(
        np.ceil(seed_values * float(options.min_fraction)).astype(np.int64), options.min_value
    )
    (
        e_output,
        e_amount,
        e_parent,
        e_tx,
        e_seed,
        e_hops,
        e_flags,
        r_entry,
        r_kind,
        r_tx,
        dropped,
        *work,
    ) = kernels.trace_kernel(
        backward,
        POLICIES[policy],
        seed_arr,
        seed_values,
        options.max_hops,
        seed_min,
        options.max_entries,
        options.max_entries_per_seed,
        options.walk_coinjoins,
        graph.tx_first_input,
        graph.tx_first_output,
        graph.input_spent_output,
        value,
        graph.output_address,
        graph.output_spent_by_tx,
        *_stop_clusters(Path(store_dir), stop_clusters, cluster_of),
        coinjoin.astype(np.bool_, copy=False),
        graph.tx_height,
        -1 if options.min_height is None else int(options.min_height),
        (1 << 31) if options.max_height is None else int(options.max_height),
        fence if backward else np.zeros(2, np.uint32),
        shift,
        *_links(mix_change),
        *(rows if backward else tracerows.EMPTY_ROWS),
        *_work(),
        *entries,
    )
    _keep_work(work)
    at_creator = r_tx == kernels.STOP_AT_CREATOR
    if at_creator.any():
        first_output = graph.tx_first_output
        r_tx[at_creator] = (
            np.searchsorted(first_output, e_output[r_entry[at_creator]], side="right") - 1
        )
    result = TraceResult(
        direction="back" if backward else "forward",
        policy=policy,
        seeds=seed_arr,
        seed=e_seed[r_entry].astype(np.int64),
        output=e_output[r_entry],
        tx=r_tx,
        amount=e_amount[r_entry],
        hops=e_hops[r_entry],
        kind=r_kind,
        flags=e_flags[r_entry],
        entry=r_entry,
        entry_parent=e_parent,
        entry_tx=e_tx,
        entry_output=e_output,
        entry_hops=e_hops,
        dropped=dropped,
    )
    _give_back(entries)  # handed out again once `result` and its views are gone
    return result


def trace_back(
    store_dir: Path,
    seeds: Collection[int] | np.ndarray,
    options: TraceOptions | None = None,
    *,
    stop_clusters: Collection[int] | np.ndarray | AddressStops | None = None,
    is_coinjoin: np.ndarray | None = None,
    cluster_of: np.ndarray | None = None,
    mix_change: tuple[np.ndarray, np.ndarray] | None = None,
    **settings: Any,
) -> TraceResult:
    """Where did the value of the seed outputs come from? One row per source reached.

    seeds: output ids (their full values are traced). options: the policy and the limits
    (`TraceOptions`; default `TraceOptions()`); `settings` are `TraceOptions` fields by name
    (`policy="poison", max_hops=3`) that replace those of `options`. stop_clusters: cluster ids
    (a collection, or a bool array over cluster ids, or an `AddressStops` worked out once for
    many traces) whose outputs end the walk as kind "cluster"; cluster ids come from `cluster_of` (default: the store's clustering,
    `Clusters(store_dir).cluster_of`). is_coinjoin: bool per tx; such txs end the walk (kind
    "coinjoin") unless `options.walk_coinjoins`. A time window (`min_height` / `max_height`)
    leaves rows of kind "time_window": the value was there before the window opened, or was
    still held when it closed. mix_change: (change output ids, sorted; input ids) of CoinJoins'
    change linked to the one input that paid it (`trace.mix_change.mix_change_links`): the
    walk goes on through that input alone where the CoinJoin would stop it (rows flagged
    `kernels.FLAG_MIX_CHANGE`).

    >>> r = trace_back(data, outputs_of_tx(store, hal_tx)[:1])  # doctest: +SKIP
    >>> r.kind_names(), r.amount.tolist()                       # doctest: +SKIP
    (['coinbase'], [1000000000])
    """
    return _trace(
        True,
        store_dir,
        seeds,
        _options(options, settings),
        stop_clusters,
        is_coinjoin,
        cluster_of,
        mix_change,
    )


def trace_forward(
    store_dir: Path,
    seeds: Collection[int] | np.ndarray,
    options: TraceOptions | None = None,
    *,
    stop_clusters: Collection[int] | np.ndarray | AddressStops | None = None,
    is_coinjoin: np.ndarray | None = None,
    cluster_of: np.ndarray | None = None,
    **settings: Any,
) -> TraceResult:
    """Where did the value of the seed outputs go? One row per destination reached.

    Arguments as `trace_back`; destinations are unspent outputs (kind "unspent"), outputs of a
    stop cluster ("cluster"), CoinJoins spending the traced output ("coinjoin") and outputs
    reached at `max_hops` ("max_hops").

    >>> r = trace_forward(data, outputs_of_tx(store, block9_coinbase))  # doctest: +SKIP
    >>> r.total_by_kind()                                              # doctest: +SKIP
    """
    return _trace(
        False,
        store_dir,
        seeds,
        _options(options, settings),
        stop_clusters,
        is_coinjoin,
        cluster_of,
    )


def _links(mix_change: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's link arrays (int64; empty when none are given)."""
    if mix_change is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    outs, ins = mix_change
    return np.asarray(outs, np.int64), np.asarray(ins, np.int64)


def txid_hex(store: Store, tx_ids: np.ndarray) -> list[str]:
    """Display txids (reversed byte order hex) of tx ids."""
    txids: list[str] = store.txids(tx_ids).to_pylist()
    return txids


def path_txids(store: Store, result: TraceResult, row: int) -> list[str]:
    """The txids walked from the seed to row `row` of `result`."""
    return txid_hex(store, result.path(row))
