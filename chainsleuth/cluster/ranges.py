"""Clustering one range of transactions: the union-find, the rules' per-tx analysis, merging.

Both the clustering engine (`engine.cluster_store`, which publishes) and the learned change
rule (`learned.py`, which trains on and decides from the same analysis) build on this module;
it imports neither, so they do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numba
import numpy as np

from chainsleuth.cluster import kernels
from chainsleuth.cluster.rules import Policy
from chainsleuth.store.graph import ChainGraph

#: Transactions processed per range: the range's rule arrays (~45 B per tx: votes, fresh flags,
#: hot counts) and its unions' evidence buffers (40 B per union) are what a run holds beyond the
#: union-find, ≈ 25 MB at 2^18 txs (2^20 held ≈ 100 MB; issue 13, item 1).
CHUNK_TXS = 1 << 18

#: The per-tx analysis is split over threads (its numba kernel releases the GIL) in pieces of
#: at least this many txs; the merges that follow are sequential (chain order is the contract).
MIN_PARALLEL_TXS = 1 << 15


def threads() -> int:
    """Threads for the parallel steps: numba's thread count (NUMBA_NUM_THREADS, default the
    CPUs), so one setting sizes both numba and these pools."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def in_parallel(work: Callable[[int, int], None], t0: int, t1: int) -> None:
    """Run work(a, b) over [t0, t1) cut into pieces of at least MIN_PARALLEL_TXS txs, up to
    PIECES_PER_THREAD per thread, handed out to `threads()` threads as they come free;
    returns when every piece is done, raising the first error."""
    n = threads()
    pieces = max(1, min(n * PIECES_PER_THREAD, (t1 - t0) // MIN_PARALLEL_TXS))
    cuts = np.linspace(t0, t1, pieces + 1).astype(np.int64).tolist()
    on_threads(work, cuts, n)


def pipelined(
    analyze: Callable[[int, int], None],
    in_order: Callable[[int, int], None],
    then: Callable[[int, int], None],
    t0: int,
    t1: int,
) -> None:
    """analyze(a, b) on pieces of [t0, t1) (as `in_parallel` cuts them) on `threads()` - 1
    threads, while this thread calls in_order(a, b) then then(a, b) for each piece in chain
    order as soon as its analysis is done; a piece no thread has started yet it analyses
    itself rather than wait (a thread the OS holds back does not hold up the merges). With
    one thread: analyze, in_order and then, one piece after the other."""
    n = threads()
    pieces = max(1, min(n * PIECES_PER_THREAD, (t1 - t0) // MIN_PARALLEL_TXS))
    cuts = np.linspace(t0, t1, pieces + 1).astype(np.int64).tolist()
    if n <= 1 or pieces <= 1:
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            analyze(a, b)
            in_order(a, b)
            then(a, b)
        return
    with ThreadPoolExecutor(max_workers=n - 1) as pool:
        jobs = [pool.submit(analyze, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        try:
            for job, a, b in zip(jobs, cuts[:-1], cuts[1:], strict=True):
                if job.cancel():  # not started: analyse it here
                    analyze(a, b)
                else:
                    job.result()
                in_order(a, b)
                then(a, b)
        finally:
            for job in jobs:
                job.cancel()


def on_threads(work: Callable[[int, int], Any], cuts: list[int], n_threads: int) -> list[Any]:
    """[work(cuts[i], cuts[i + 1]) for every i] on `n_threads` threads, this one among them:
    n_threads - 1 take the pieces from the front as they come free, this thread from the
    back (nogil kernels; a thread the OS holds back takes fewer pieces). Raises the first
    error."""
    pieces = len(cuts) - 1
    if n_threads <= 1 or pieces <= 1:
        return [work(cuts[i], cuts[i + 1]) for i in range(pieces)]
    out: list[Any] = [None] * pieces
    with ThreadPoolExecutor(max_workers=min(n_threads - 1, pieces)) as pool:
        jobs = [pool.submit(work, cuts[i], cuts[i + 1]) for i in range(pieces)]
        try:
            here = set()
            for i in reversed(range(pieces)):
                if jobs[i].cancel():
                    out[i] = work(cuts[i], cuts[i + 1])
                    here.add(i)
            for i in range(pieces):
                if i not in here:
                    out[i] = jobs[i].result()
        finally:
            for job in jobs:
                job.cancel()
    return out


def _cuts(n: int, pieces: int) -> list[int]:
    return np.linspace(0, n, pieces + 1).astype(np.int64).tolist()  # type: ignore[no-any-return]


#: Edge lists (and address ranges) shorter than this are done by one thread.
MIN_PARALLEL_EDGES = 1 << 16
#: Pieces per thread of the parallel union-find and flatten, handed out as threads come free.
PIECES_PER_THREAD = 8
#: Pieces per thread checked when a link was lost: a lost link costs its piece redone.
CHECK_PIECES_PER_THREAD = 64


def union_edges_parallel(
    edge_a: np.ndarray, edge_b: np.ndarray, parent: np.ndarray, n_threads: int | None = None
) -> int:
    """`kernels.union_edges` on `n_threads` threads (default `threads()`): the same partition
    and the same cluster ids (a root is the smallest address id of its tree whatever the order
    of the unions, since every link points a larger id at a smaller one).

    The threads union pieces of the edges at once, without locks
    (`kernels.link_edges_unlocked`): two threads can link the same root at once and one link
    is lost, leaving an edge unjoined. Each link written removes one root unless it was lost,
    so the roots are counted before and after (a pass over `parent`, 4 B per address): when
    as many are gone as links were written, every edge is joined. Else the threads count, per
    piece of edges (CHECK_PIECES_PER_THREAD per thread), the edges whose ends still have
    different roots, reading only; those pieces are unioned again by one thread, which
    nothing undoes. Returns the pieces redone (0 when no link was lost).
    """
    n_threads = threads() if n_threads is None else max(1, n_threads)
    m = int(edge_a.shape[0])
    if n_threads == 1 or m < MIN_PARALLEL_EDGES:
        kernels.union_edges(edge_a, edge_b, parent)
        return 0
    n = int(parent.shape[0])
    by_address = _cuts(n, n_threads)
    roots_before = sum(on_threads(partial(kernels.count_roots, parent), by_address, n_threads))
    links = sum(
        on_threads(
            partial(kernels.link_edges_unlocked, edge_a, edge_b, parent),
            _cuts(m, n_threads * PIECES_PER_THREAD),
            n_threads,
        )
    )
    roots_after = sum(on_threads(partial(kernels.count_roots, parent), by_address, n_threads))
    if roots_after == roots_before - links:
        return 0
    pieces = n_threads * CHECK_PIECES_PER_THREAD
    cuts = np.asarray(_cuts(m, pieces), np.int64)
    bad = np.zeros(pieces, np.int64)
    on_threads(
        partial(kernels.count_unjoined, edge_a, edge_b, parent, cuts, bad),
        _cuts(pieces, n_threads),
        n_threads,
    )
    redo = np.flatnonzero(bad).tolist()
    for c in redo:
        kernels.union_edges(edge_a, edge_b, parent, int(cuts[c]), int(cuts[c + 1]))
    return len(redo)


def flatten_parallel(parent: np.ndarray, out: np.ndarray, n_threads: int | None = None) -> None:
    """`publish.flatten` (cluster id of every address, every path compressed to one step) on
    `n_threads` threads (default `threads()`), ascending ranges of addresses handed out as
    threads come free (`kernels.flatten_range`): the same `out` and `parent`."""
    n_threads = threads() if n_threads is None else max(1, n_threads)
    n = int(parent.shape[0])
    if n_threads == 1 or n < MIN_PARALLEL_EDGES:
        kernels.flatten_range(parent, out, 0, n)
        return
    on_threads(
        partial(kernels.flatten_range, parent, out),
        _cuts(n, n_threads * PIECES_PER_THREAD),
        n_threads,
    )


@dataclass
class UnionFind:
    """Union-find over address ids: parent and size (uint32) and actor (int32): 12 B/address,
    plus whether the address spent in a batch so far (bool, 1 B/address; see kernels.hot_outputs).
    """

    parent: np.ndarray
    size: np.ndarray
    attribution: np.ndarray
    max_address: int = -1  # highest address id seen in an output so far (for fresh-address)
    batch_spent: np.ndarray | None = None
    #: False: no address carries an attribution (all -1), so the merges need not read them
    attributed: bool = True

    @classmethod
    def singletons(cls, n_addresses: int) -> UnionFind:
        return cls(
            np.arange(n_addresses, dtype=np.uint32),
            np.ones(n_addresses, np.uint32),
            np.full(n_addresses, -1, np.int32),
            -1,
            np.zeros(n_addresses, np.bool_),
            attributed=False,
        )


@dataclass
class RangeResult:
    """What clustering one range of transactions did."""

    merge_a: np.ndarray  # u4 address ids, one per union (the evidence rows)
    merge_b: np.ndarray  # u4
    merge_tx: np.ndarray  # i8
    merge_rule: np.ndarray  # u1 evidence rule code (kernels.RULE_*)
    merge_votes: np.ndarray  # u1 change vote mask
    coinjoin_tx: np.ndarray
    coinjoin_rule: np.ndarray
    quarantined: np.ndarray
    quarantine_reason: np.ndarray
    change_output: np.ndarray  # per tx of the range: the output merged as change, or -1

    @property
    def n_merges(self) -> int:
        return int(self.merge_a.shape[0])


@dataclass
class Analysis:
    """Per-transaction rule results for a range [t0, t1) (see kernels.analyze_txs)."""

    fresh: np.ndarray  # per output of the range: pays an address never seen before
    coinjoin: np.ndarray  # CoinJoin rule code per tx, 0 none
    payjoin: np.ndarray  # PayJoin suspicion per tx
    votes: list[np.ndarray]  # output id each change rule picks per tx (-1 none), CHANGE_BITS order
    hot: np.ndarray  # per tx: outputs paying an address that spent in a batch before (0 no votes)


def analyze_range(
    arrays: ChainGraph,
    t0: int,
    t1: int,
    max_address: int,
    want_votes: bool = True,
    batch_spent: np.ndarray | None = None,
    want_fresh: bool = True,
    then: Callable[[Analysis, int, int], None] | None = None,
) -> tuple[Analysis, int]:
    """CoinJoin rules and change votes for txs [t0, t1); returns them and the new max address.

    `max_address` is the highest address id paid before t0 (-1 at the start of the chain).
    `batch_spent` (bool per address) is what txs before t0 spent in batches, updated in place;
    None works it out from the chain before t0. Without `want_votes` the votes and hot counts
    are empty arrays (33 B per tx not written), without `want_fresh` the fresh flags too (1 B
    per output): multi-input alone reads neither. With `then`, then(analysis, a, b) is called for
    consecutive pieces [a, b) of the range, in chain order, each as soon as its analysis is
    done, while other threads analyse the pieces after it (`pipelined`): the merges of the
    range overlap its analysis.
    """
    fo = arrays.tx_first_output
    o0 = int(fo[t0])
    o1 = int(fo[t1]) if t1 < arrays.n_txs else arrays.n_outputs
    if want_fresh or want_votes:
        fresh = np.empty(o1 - o0, np.bool_)
        max_address = int(kernels.fresh_outputs(arrays.output_address, o0, max_address, fresh))
    else:
        fresh = np.zeros(0, np.bool_)
        max_address = int(kernels.max_address_paid(arrays.output_address, o0, o1, max_address))
    m = t1 - t0
    coinjoin = np.zeros(m, np.int16)
    payjoin = np.zeros(m, np.bool_)
    votes = [np.empty(m if want_votes else 0, np.int64) for _ in range(4)]

    def analyze(a: int, b: int) -> None:
        """Txs [a, b) of the range: each tx's analysis reads only its own rows."""
        k0, k1 = a - t0, b - t0
        kernels.analyze_txs(
            a,
            b,
            arrays.tx_first_input,
            fo,
            arrays.n_inputs,
            arrays.n_outputs,
            arrays.input_spent_output,
            arrays.input_address,
            arrays.output_value,
            arrays.output_address,
            arrays.output_script_type,
            fresh,
            o0,
            coinjoin[k0:k1],
            payjoin[k0:k1],
            *(v[k0:k1] if want_votes else v for v in votes),
            want_votes,
        )

    hot = np.zeros(m if want_votes else 0, np.int32)
    if want_votes and batch_spent is None:
        batch_spent = batch_spenders_before(arrays, t0)

    def count_hot(a: int, b: int) -> None:
        """Hot counts of txs [a, b), in chain order (they update `batch_spent`)."""
        if want_votes:
            k0, k1 = a - t0, b - t0
            kernels.hot_outputs(
                a,
                b,
                arrays.tx_first_input,
                fo,
                arrays.n_inputs,
                arrays.n_outputs,
                arrays.input_address,
                arrays.output_address,
                coinjoin[k0:k1],
                batch_spent,
                hot[k0:k1],
            )

    analysis = Analysis(fresh, coinjoin, payjoin, votes, hot)
    if then is None:
        in_parallel(analyze, t0, t1)
        count_hot(t0, t1)
    else:
        pipelined(analyze, count_hot, partial(then, analysis), t0, t1)
    return analysis, max_address


def batch_spenders_before(arrays: ChainGraph, t: int) -> np.ndarray:
    """Bool per address: it spent in a batch (3+ outputs, not a CoinJoin) in txs [0, t)."""
    n_addr = arrays.n_addresses or int(np.asarray(arrays.output_address).max(initial=-1)) + 1
    batch_spent = np.zeros(n_addr, np.bool_)
    step = CHUNK_TXS
    max_address = -1
    for a in range(0, t, step):
        b = min(t, a + step)
        analysis, max_address = analyze_range(
            arrays, a, b, max_address, want_votes=False, want_fresh=False
        )
        kernels.hot_outputs(
            a,
            b,
            arrays.tx_first_input,
            arrays.tx_first_output,
            arrays.n_inputs,
            arrays.n_outputs,
            arrays.input_address,
            arrays.output_address,
            analysis.coinjoin,
            batch_spent,
            np.zeros(b - a, np.int32),
        )
    return batch_spent


def process_range(
    arrays: ChainGraph,
    unions: UnionFind,
    policy: Policy,
    t0: int,
    t1: int,
    learned: Any = None,
) -> RangeResult:
    """Cluster transactions [t0, t1) into `unions` (which must already hold [0, t0)).

    `learned` (learned.Decisions, optional): learned change merges; those due in [t0, t1) are
    applied at their due position.
    """
    if learned is None:
        l_tx = l_out = l_due = np.zeros(0, np.int64)
    else:
        due = learned.slice(t0, t1)
        l_tx, l_out, l_due = due.tx, due.out, due.due
    o0 = int(arrays.tx_first_output[t0])
    m = t1 - t0
    n_in_range = (int(arrays.tx_first_input[t1]) if t1 < arrays.n_txs else arrays.n_inputs) - int(
        arrays.tx_first_input[t0]
    )
    cap = max(n_in_range + m + l_tx.shape[0], 16)  # a union needs an input or a change output
    # Evidence rows: address a, address b (u4, the store's address ids), tx (i8), rule and
    # change votes (u1): 18 B per union, written as they are made.
    ev = [np.empty(cap, t) for t in (np.uint32, np.uint32, np.int64, np.uint8, np.uint8)]
    q_tx = np.empty(m + l_tx.shape[0], np.int64)
    q_reason = np.empty(m + l_tx.shape[0], np.int64)
    change_chosen = np.empty(m, np.int64)
    # Multi-input alone needs no change votes: skipping them skips most random reads.
    want_votes = (policy.change_mask() | policy.veto_mask()) != 0
    done = [0, 0]  # evidence rows and quarantined txs so far

    def merge(an: Analysis, a: int, b: int) -> None:
        """The merges of txs [a, b) (chain order), once their analysis `an` is done; the
        learned merges due in [a, b) with them."""
        k0, k1 = a - t0, b - t0
        la, lb = np.searchsorted(l_due, [a, b])
        done[0], done[1] = kernels.apply_merges(
            a,
            b,
            arrays.tx_first_input,
            arrays.n_inputs,
            arrays.input_spent_output,
            arrays.input_address,
            arrays.output_address,
            an.fresh,
            o0,
            an.coinjoin[k0:k1],
            an.payjoin[k0:k1],
            *(v[k0:k1] if want_votes else v for v in an.votes),
            policy.change_mask(),
            policy.veto_mask(),
            policy.required_mask(),
            policy.any_mask(),
            policy.min_change_votes,
            an.hot[k0:k1] if want_votes else an.hot,
            policy.hot_mask(),
            policy.multi_input,
            policy.merge_payjoin_suspects,
            policy.large_cluster,
            policy.growth_factor,
            unions.parent,
            unions.size,
            unions.attribution,
            *ev,
            done[0],
            q_tx,
            q_reason,
            done[1],
            change_chosen[k0:k1],
            l_tx[la:lb],
            l_out[la:lb],
            l_due[la:lb],
            unions.attributed,
        )

    analysis, unions.max_address = analyze_range(
        arrays,
        t0,
        t1,
        unions.max_address,
        want_votes=want_votes,
        want_fresh=want_votes,
        # The flags kept with the state (updated in place); without them every range
        # recomputed them from the start of the chain: O(the chain) per run.
        batch_spent=unions.batch_spent,
        then=merge,
    )
    coinjoin = analysis.coinjoin
    n_ev, n_q = done
    cj = np.flatnonzero(coinjoin)
    return RangeResult(
        ev[0][:n_ev],
        ev[1][:n_ev],
        ev[2][:n_ev],
        ev[3][:n_ev],
        ev[4][:n_ev],
        (t0 + cj).astype(np.int64),
        coinjoin[cj].astype(np.int64),
        q_tx[:n_q],
        q_reason[:n_q],
        change_chosen,
    )
