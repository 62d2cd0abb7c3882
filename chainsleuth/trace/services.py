"""Clusters that behave like custodial services but carry no tag (`unidentified_service`).

An exchange whose wallet is not tagged is still an exchange: it sweeps customer deposits into
its hot wallet and pays customers in batched withdrawals. A backward trace that walks through
such a wallet soon reaches whoever funded *its* deposits (often another exchange), and naming
that one would send a subpoena to the wrong exchange (issue 11). So a trace stops at a cluster
that behaves like a service, and the case reports it as `unidentified_service` with its cluster
id and example addresses: an investigator can then identify the operator.

Behaviour, counted per cluster from the store's arrays in a few vectorized passes (no Python
object per transaction; 8 B per address for each count, 3 counts):

- **batches**: transactions the cluster pays with at least `BATCH_MIN_PAYEES` payees and no
  more than half of them of one value (not a CoinJoin, not a Whirlpool Tx0);
- **sweeps received**: transactions with at least `SWEEP_MIN_INPUTS` inputs and a single output
  that pays the cluster;
- a cluster that paid at least `MIN_EVENTS` batches is service-like. Sweeps received are
  reported, not used: an exchange's deposit addresses swept together form a cluster that
  receives customers' send-all deposits, and a forward trace must walk on from there to the
  hot wallet that names the exchange.

On the hard simulated world (small, seed 1) the 630 service-like clusters were 626 exchange
fragments and the 4 mining pools (their main owner by truth), and no ordinary user, merchant or
CoinJoin participant; on the easy one, 200 exchange clusters and the 4 pools. The seized
service's own clusters are left out by the case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numba import njit

from chainsleuth.core.scratch import Scratch, scratch_array
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

__all__ = [
    "BATCH_MIN_PAYEES",
    "change_spend_links",
    "payout_cospend_evidence",
    "deposit_cospenders",
    "paid_in_counts",
    "PaidInReads",
    "StyleReads",
    "COSPEND_SHARE",
    "sweep_into_evidence",
    "ClusterCounts",
    "ClusterSet",
    "MIN_EVENTS",
    "SWEEP_MIN_INPUTS",
    "ServiceStats",
    "TxShapes",
    "funder_links",
    "hot_change_links",
    "sendall_receivers",
    "service_entities",
    "service_stats",
    "style_matches",
    "style_compatible",
    "tx_shapes",
    "ClusterGroups",
    "wallet_styles",
    "WalletStyles",
    "PeriodStyles",
    "STYLE_PERIOD_MONTHS",
    "block_periods",
    "blind_styles",
    "received_deposits",
    "STYLE_HABITS",
    "STYLE_MIN_CANDIDATES",
    "style_habits",
    "habit_rows",
    "habits_changed",
    "style_lookalikes",
    "style_reads",
]

#: Payees of a batched withdrawal. Wallets paying a few people at once with change have 3-5
#: outputs; at 5, links from people's multi-payee payments crept in on the hard simulated world
#: (31 wrong of 1,107), at 6 none did (0 of 962).
BATCH_MIN_PAYEES = 6

#: Payees of each of two small batches that `small_batch_links` may join.
SMALL_BATCH_PAYEES = 3

#: A tx where more than this share of the payees pay one value is a CoinJoin or a Whirlpool Tx0,
#: not a batch. (A cap of 3 equal outputs, tried first, took most of the medium worlds' big
#: batches for CoinJoins: customers withdraw the same round amounts.)
EQUAL_SHARE = 0.5

#: Inputs of a sweep of deposits into one output.
SWEEP_MIN_INPUTS = 3

#: Inputs of a send-all paid to another owner (`sendall_receivers`).
SENDALL_MIN_INPUTS = 2

#: Batches a cluster must have paid to be taken for a service. 2 let exchanges' one-batch
#: fragments through, and walks went on past them to name whoever funded their deposits (hard
#: worlds: 480 wrong lead rows at 2, 44 at 1).
MIN_EVENTS = 1


#: Txs per slice of the passes over every output (~4 outputs each, ~40 B per output while in
#: use: ~40 MB a slice).
TX_SLICE = 1 << 18

#: Addresses per slice of a pass over the cluster ids (~24 B each while in use).
SLICE = 1 << 20


class ClusterCounts:
    """A count per cluster id, kept for the clusters that have one (sorted ids and counts,
    16 B per counted cluster, not 8 B per address). `counts[ids]` reads like the dense int64
    array per address id it stands for: 0 where a cluster has none."""

    def __init__(self, keys: np.ndarray, n: int) -> None:
        """Count the occurrences of each cluster id in `keys` (ids in [0, n))."""
        self.ids, self.counts = np.unique(np.asarray(keys, np.int64), return_counts=True)
        self.n = int(n)

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __getitem__(self, key: np.ndarray) -> np.ndarray:
        ids = np.asarray(key, np.int64)
        out = np.zeros(ids.shape, np.int64)
        if self.ids.shape[0]:
            pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.shape[0] - 1)
            hit = self.ids[pos] == ids
            out[hit] = self.counts[pos[hit]]
        return out

    def at_least(self, k: int) -> np.ndarray:
        """Sorted cluster ids whose count is at least k (k >= 1)."""
        return self.ids[self.counts >= k]


class ClusterSet:
    """A few cluster ids read like a bool mask over every cluster id: the ids sorted and
    distinct, 8 B per member, where the mask is 1 B per address (1.5 GB at mainnet, each).
    `s[ids]` is a bool per id of an int array (a bool for one int), `s.shape` the mask's
    (n,); an id outside [0, n) is not a member."""

    def __init__(self, ids: np.ndarray, n: int) -> None:
        self.ids = np.unique(np.asarray(ids, np.int64))
        self.n = int(n)

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __contains__(self, cluster: int) -> bool:
        i = int(np.searchsorted(self.ids, cluster))
        return i < self.ids.shape[0] and int(self.ids[i]) == cluster

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return np.bool_(int(key) in self)
        ids = np.asarray(key, np.int64)
        if self.ids.shape[0] == 0:
            return np.zeros(ids.shape, np.bool_)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.shape[0] - 1)
        out: np.ndarray = self.ids[pos] == ids
        return out


@dataclass(frozen=True)
class ServiceStats:
    """Per cluster id: batches paid and sweeps received (`ClusterCounts`)."""

    batches: ClusterCounts
    sweeps_in: ClusterCounts

    def service_like(self, min_events: int = MIN_EVENTS) -> np.ndarray:
        """Sorted cluster ids that paid at least `min_events` batches."""
        return self.batches.at_least(max(min_events, 1))


class PerOutput:
    """A column per output computed where it is indexed, not held (the chain has ~3 G
    outputs: 4 B each would be 12 GB). Indexing takes a slice, an int array or a bool mask."""

    def __init__(self, n: int, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        self.n = int(n)
        self.compute = compute

    @property
    def shape(self) -> tuple[int]:
        return (self.n,)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            return self.compute(np.arange(*key.indices(self.n), dtype=np.int64))
        ids = np.asarray(key)
        if ids.dtype == np.bool_:
            ids = np.flatnonzero(ids)
        return self.compute(ids.astype(np.int64))


@dataclass(frozen=True)
class TxShapes:
    """Per tx: payees, spender cluster (-1 for coinbases), batch or not; per output: its tx.

    Held per tx: `n_inputs` and `n_payees` (u1, capped at 255: only compared with small
    thresholds), `spender` (int32 cluster id, or int64 past 2^31 addresses) and four flags:
    10 B per tx. Per output nothing is held: `made_by` and `payable` are `PerOutput` columns,
    `spent_by` and `output_address` the store's mapped arrays (`spent_by` seen as int32, so
    unspent reads -1). Passes over every output go a slice of txs at a time (`tx_slices`)."""

    n_inputs: np.ndarray
    n_payees: np.ndarray
    spender: np.ndarray
    batch: np.ndarray
    made_by: PerOutput
    spent_by: np.ndarray  # spending tx per output, -1 unspent
    first_output: np.ndarray
    output_address: np.ndarray
    payable: PerOutput
    plain: np.ndarray  # per tx: at most EQUAL_SHARE of its payees pay one value
    coinjoin: np.ndarray  # per tx: flagged as a CoinJoin by the cluster stage
    small_batch: np.ndarray  # per tx: a plain payout of SMALL_BATCH_PAYEES+, not a CoinJoin
    output_value: np.ndarray

    def tx_slices(self) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
        """(t0, t1, o0, o1, made): txs [t0, t1) and their outputs [o0, o1), with the tx of
        each of those outputs (`made`, int64)."""
        n_txs, n_outputs = self.n_payees.shape[0], self.output_address.shape[0]
        for t0 in range(0, n_txs, TX_SLICE):
            t1 = min(n_txs, t0 + TX_SLICE)
            o0 = int(self.first_output[t0])
            o1 = int(self.first_output[t1]) if t1 < n_txs else n_outputs
            widths = np.diff(np.asarray(self.first_output[t0:t1]), append=o1)
            made = np.repeat(np.arange(t0, t1, dtype=np.int64), widths)
            yield t0, t1, o0, o1, made


def _sweep_shaped(shapes: TxShapes, txs: np.ndarray) -> np.ndarray:
    """Per tx of `txs` (int64 ids): a sweep (`SWEEP_MIN_INPUTS`+ inputs into one payee) that is
    not a CoinJoin."""
    return (
        (shapes.n_inputs[txs] >= SWEEP_MIN_INPUTS)
        & (shapes.n_payees[txs] == 1)
        & ~shapes.coinjoin[txs]
    )


def _swept_on(shapes: TxShapes, lo: int, hi: int) -> np.ndarray:
    """Per output of [lo, hi): payable and spent by a sweep (`_sweep_shaped`).

    A sweep's output that is swept again is a deposit: the sweep was someone's send-all into
    an exchange's deposit address, which its owner then swept with the others. A wallet's own
    sweep pays its hot (or cold) wallet, whose coins go out in payouts: on the simulated hard
    worlds no exchange sweep's output was spent by a sweep (0 of 842 on hard medium 7, 0 of
    216 on hard small 1), while 1,335 of 1,754 customers' send-alls into deposits were
    (docs/accuracy-log.md "Send-alls into deposits are no sweeps of the wallet's own").
    `cases.cashouts` reads a payee spent by a sweep as a deposit in the same way. ~10 B per
    output of the range while in use."""
    spent_by = np.asarray(shapes.spent_by[lo:hi]).astype(np.int64)
    out = np.asarray(shapes.payable[lo:hi]) & (spent_by >= 0)
    out[out] = _sweep_shaped(shapes, spent_by[out])
    return out


def _paid_into_deposit(
    shapes: TxShapes, t0: int, t1: int, lo: int, hi: int, made: np.ndarray
) -> np.ndarray:
    """Per tx of [t0, t1) (its outputs [lo, hi), `made` their txs): an output of it is swept
    on (`_swept_on`): a payment into someone's deposit, not a sweep of the wallet's own."""
    onward = _swept_on(shapes, lo, hi)
    return np.bincount(made[onward] - t0, minlength=t1 - t0) > 0


def _payable(output_address: np.ndarray, output_value: np.ndarray) -> PerOutput:
    def compute(ids: np.ndarray) -> np.ndarray:
        addr, value = np.asarray(output_address[ids]), np.asarray(output_value[ids])
        result: np.ndarray = (addr != NONE32) & (value > 0)
        return result

    return PerOutput(output_address.shape[0], compute)


def _made_by(first_output: np.ndarray, n_outputs: int) -> PerOutput:
    def compute(ids: np.ndarray) -> np.ndarray:
        made: np.ndarray = np.searchsorted(first_output, ids, side="right") - 1
        return made

    return PerOutput(n_outputs, compute)


@njit(cache=True, nogil=True)
def _per_tx_outputs(first_output, n_outputs, output_address, output_value, none, equal_share,
                    n_payees, plain):  # fmt: skip
    """Per tx: outputs paying an address with a value (payees, capped at 255: u1), and whether
    at most `equal_share` of them pay one value (`plain`; the most outputs of one value, any
    output, against the payees); one pass over the mapped arrays, one tx's values sorted at a
    time. Written into `n_payees` (u1) and `plain` (bool), 2 B per tx the caller allocates."""
    n_txs = first_output.shape[0]
    for t in range(n_txs):
        o0 = first_output[t]
        o1 = first_output[t + 1] if t + 1 < n_txs else n_outputs
        payees = 0
        for o in range(o0, o1):
            if output_address[o] != none and output_value[o] > 0:
                payees += 1
        n_payees[t] = min(payees, 255)
        best = 0
        if o1 > o0:
            values = np.sort(output_value[o0:o1])
            best = 1
            run = 1
            for k in range(1, values.shape[0]):
                run = run + 1 if values[k] == values[k - 1] else 1
                if run > best:
                    best = run
        plain[t] = best <= equal_share * max(payees, 1)


def tx_shapes(
    store: Store,
    cluster_of: np.ndarray,
    is_coinjoin: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> TxShapes | None:
    """The shapes of every tx (None for an empty store): 10 B per tx held (see TxShapes), and
    a slice's temporaries while they are worked out. CoinJoins (`is_coinjoin`, bool per tx)
    are neither batches nor small batches. With `scratch` (core.scratch) the per-tx arrays
    are file-backed: page cache, not anonymous memory."""
    first_input = np.asarray(store.graph.tx_first_input)
    first_output = np.asarray(store.graph.tx_first_output)
    output_address = store.graph.output_address
    output_value = store.graph.output_value
    input_address = store.graph.input_address
    n_txs, n_outputs = first_input.shape[0], output_address.shape[0]
    n_in_total = input_address.shape[0]
    if n_txs == 0 or n_in_total == 0 or n_outputs == 0:
        return None
    n_payees = scratch_array(scratch, n_txs, np.uint8)
    plain = scratch_array(scratch, n_txs, np.bool_)
    _per_tx_outputs(
        first_output, n_outputs, output_address, output_value, NONE32, EQUAL_SHARE, n_payees, plain
    )
    n_inputs = scratch_array(scratch, n_txs, np.uint8)
    wide = cluster_of.shape[0] >= 1 << 31
    spender = scratch_array(scratch, n_txs, np.int64 if wide else np.int32, -1)
    coinjoin = scratch_array(scratch, n_txs, np.bool_) if is_coinjoin is None else is_coinjoin
    small_batch = scratch_array(scratch, n_txs, np.bool_)
    batch = scratch_array(scratch, n_txs, np.bool_)
    # a slice of txs at a time: the int64 temporaries and the flags' bool temporaries stay
    # ~30 B per tx of one slice
    for t0 in range(0, n_txs, TX_SLICE):
        t1 = min(n_txs, t0 + TX_SLICE)
        firsts = first_input[t0:t1]
        end = int(first_input[t1]) if t1 < n_txs else n_in_total
        n_inputs[t0:t1] = np.minimum(np.diff(firsts, append=end), 255)
        first_addr = np.asarray(input_address[np.minimum(firsts, n_in_total - 1)])
        here = (n_inputs[t0:t1] > 0) & (first_addr != NONE32)
        spender[t0:t1][here] = cluster_of[first_addr[here].astype(np.int64)]
        payees = n_payees[t0:t1]
        small = here & (payees >= SMALL_BATCH_PAYEES) & plain[t0:t1] & ~coinjoin[t0:t1]
        small_batch[t0:t1] = small
        batch[t0:t1] = small & (payees >= BATCH_MIN_PAYEES)
    # the mapped u4 array seen as int32: NONE32 (unspent) reads as -1, no copy; tx ids fit
    # (mainnet has 1.1 G txs)
    spent_by = np.asarray(store.graph.output_spent_by_tx).view(np.int32)
    return TxShapes(n_inputs, n_payees, spender, batch, _made_by(first_output, n_outputs),
                    spent_by, first_output, output_address,
                    _payable(output_address, output_value), plain, coinjoin, small_batch,
                    output_value)  # fmt: skip


def service_stats(shapes: TxShapes | None, cluster_of: np.ndarray) -> ServiceStats:
    """Batches paid and sweeps received by every cluster of `cluster_of` (address -> cluster)."""
    n_addresses = cluster_of.shape[0]
    none = np.zeros(0, np.int64)
    if shapes is None or n_addresses == 0:
        return ServiceStats(ClusterCounts(none, n_addresses), ClusterCounts(none, n_addresses))
    batches = ClusterCounts(shapes.spender[shapes.batch], n_addresses)
    # the one payable output of each sweep, a slice of txs at a time
    targets = [none]
    for t0, t1, o0, o1, made in shapes.tx_slices():
        sweep = (shapes.spender[t0:t1] >= 0) & (shapes.n_inputs[t0:t1] >= SWEEP_MIN_INPUTS)
        sweep &= shapes.n_payees[t0:t1] == 1
        sweep_output = shapes.payable[o0:o1] & sweep[made - t0]
        target = np.asarray(shapes.output_address[o0:o1])[sweep_output].astype(np.int64)
        targets.append(np.asarray(cluster_of[target], np.int64))
    return ServiceStats(batches, ClusterCounts(np.concatenate(targets), n_addresses))


@njit(cache=True, nogil=True)
def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Component label (smallest member) of each of n nodes joined by edges a[i]-b[i]."""
    parent = np.arange(n)
    for i in range(a.shape[0]):
        x = a[i]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        y = b[i]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y
    for i in range(n):
        x = i
        while parent[x] != x:
            x = parent[x]
        parent[i] = x
    return parent


def _first_input_type(store: Store, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Per tx of [lo, hi) (every tx by default): the script type of the output its first
    input spends (1 B per tx), read in slices of `TX_SLICE` txs so that no per-input array is
    copied."""
    output_type = store.graph.output_script_type
    spent_output = store.graph.input_spent_output
    first_input = store.graph.tx_first_input
    hi = first_input.shape[0] if hi is None else hi
    out = np.zeros(hi - lo, output_type.dtype)
    last_input = max(spent_output.shape[0] - 1, 0)
    if spent_output.shape[0] == 0:
        return out
    for t0 in range(lo, hi, TX_SLICE):
        t1 = min(hi, t0 + TX_SLICE)
        firsts = np.minimum(np.asarray(first_input[t0:t1]), last_input)
        out[t0 - lo : t1 - lo] = output_type[np.maximum(spent_output[firsts], 0)]
    return out


def small_batch_links(
    store: Store, shapes: TxShapes | None, fingerprint: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Links between small batches (at least `SMALL_BATCH_PAYEES` payees each): a batch T's
    output spent by another batch S joins their input clusters when the output is T's largest,
    has the script type of T's first input, T and S carry the same wallet fingerprint
    (version, locktime set or not, nSequence class) and no other output of T is spent so.
    That is an exchange paying its next small batch from the last one's change; a customer
    spending a withdrawal in a payment of their own rarely matches all four. Returns (a, b)
    cluster pairs. `fingerprint`: `cluster.learned.read_fingerprints` of every tx, read from
    the store's tables here when None (1 B per tx)."""
    from chainsleuth.cluster.learned import read_fingerprints

    none = np.zeros(0, np.int64)
    if shapes is None:
        return none, none
    n_txs = shapes.n_payees.shape[0]
    small = shapes.small_batch
    if fingerprint is None:
        fingerprint = read_fingerprints(store, 0, n_txs, TX_SLICE)
    output_value = store.graph.output_value
    output_type = store.graph.output_script_type
    spent_output = store.graph.input_spent_output
    first_input = store.graph.tx_first_input
    last_input = max(spent_output.shape[0] - 1, 0)
    made_by = shapes.made_by
    found = [np.zeros(0, np.int64)]
    for t0, t1, lo, hi, made in shapes.tx_slices():
        # the script type of the output each tx of the slice spends first
        firsts = np.minimum(np.asarray(first_input[t0:t1]), last_input)
        first_type = np.asarray(output_type[np.maximum(spent_output[firsts], 0)])
        value = np.where(shapes.payable[lo:hi], np.asarray(output_value[lo:hi]), -1)
        # the largest payable value of each tx of the slice (-1 with none)
        largest = np.full(t1 - t0, -1, np.int64)
        if hi > lo:
            np.maximum.at(largest, made - t0, value)
        spent_by = np.asarray(shapes.spent_by[lo:hi])
        spent = spent_by >= 0
        by = np.where(spent, spent_by, 0)
        candidate = spent & small[by] & small[made]
        candidate &= fingerprint[made] == fingerprint[by]
        candidate &= np.asarray(output_type[lo:hi]) == first_type[made - t0]
        candidate &= value == largest[made - t0]
        found.append(np.flatnonzero(candidate) + lo)
    candidates = np.concatenate(found)
    # no other output of T is spent so
    txs, per_tx = np.unique(made_by[candidates], return_counts=True)
    once = np.isin(made_by[candidates], txs[per_tx == 1])
    link = candidates[once]
    by_link = shapes.spent_by[link].astype(np.int64)
    return shapes.spender[made_by[link]], shapes.spender[by_link]


def hot_change_links(
    shapes: TxShapes | None, cluster_of: np.ndarray, stats: ServiceStats
) -> tuple[np.ndarray, np.ndarray]:
    """Links from a one-input, two-payee tx to the service whose hot wallet one output pays.

    A service that reuses its hot addresses sends the change of everything it pays back to
    them, so a tx whose other output lands in a cluster that pays batches (a hot wallet) is
    most often the service's own spend: a customer deposit it forwarded straight to a buyer
    (issue 11's `exchange_forward`), or a refill from cold storage. Customers pay deposit
    addresses, not the hot wallet. Without this link a backward walk went on through such a
    forwarded deposit to whoever funded it and named the wrong exchange. Returns (a, b) cluster
    pairs: the tx's input cluster and the hot wallet's. The tx must not itself be a batch or a
    CoinJoin, and its spender must be a lone address that is not service-like. Memory: 9 B per
    output of a slice, 16 B per link while found (int32 ids), 16 B per distinct spender.
    """
    none = np.zeros(0, np.int64)
    if shapes is None or cluster_of.shape[0] == 0:
        return none, none
    # the links are gathered in the spenders' width (int32 below 2^31 addresses): 8 B a link
    # and 8 B more while concatenated, where int64 lists took 16 and 32 (≈ 0.6 links per tx on
    # bench-scale's chains: the case's peak from 5 M to 10 M txs)
    width = shapes.spender.dtype
    spenders, receivers = [none.astype(width)], [none.astype(width)]
    for _t0, _t1, lo, hi, made in shapes.tx_slices():
        payable = shapes.payable[lo:hi]
        addr = np.asarray(shapes.output_address[lo:hi]).astype(np.int64)
        out_cluster = np.full(hi - lo, -1, np.int64)
        out_cluster[payable] = cluster_of[addr[payable]]
        spender = shapes.spender[made]
        link = payable & (out_cluster >= 0)
        link[link] = stats.batches[out_cluster[link]] >= MIN_EVENTS
        link &= spender >= 0
        link[link] = stats.batches[spender[link]] < MIN_EVENTS
        link &= (shapes.n_payees[made] == 2) & (shapes.n_inputs[made] == 1)
        link &= ~shapes.coinjoin[made] & ~shapes.small_batch[made]
        spenders.append(spender[link])
        receivers.append(out_cluster[link].astype(width))
    spender, receiver = np.concatenate(spenders), np.concatenate(receivers)
    del spenders, receivers
    # a lone address (a forwarded deposit, a cold coin): on the hard worlds 2% of such links
    # joined two owners, against 38% from clusters of 2+ addresses (customers paying a hot
    # wallet that a base-cluster merge put beside a deposit)
    lone = _cluster_sizes(cluster_of, np.unique(spender).astype(np.int64))
    keep = lone[np.searchsorted(lone[:, 0], spender), 1] == 1 if spender.shape[0] else none
    return spender[keep].astype(np.int64), receiver[keep].astype(np.int64)


@njit(cache=True, nogil=True)
def _change_spends(txs, hot_type, first_output, n_outputs, output_address, output_value,
                   output_type, spent_by, spender, coinjoin, n_payees, candidates, none,
                   largest_only, same_type, n_inputs, min_inputs, batch, payers,
                   payer_group):  # fmt: skip
    """For each tx of `txs`: its payable outputs (of the script type `hot_type` gives for it
    where `same_type`; its one largest payable output only, and only when that is larger than
    all its other payable outputs together, where `largest_only`) that a tx of 2+ payees and
    `min_inputs`+ inputs not flagged as a CoinJoin spends, whose spender is one of the sorted
    `candidates` and not the tx's own spender. Where `largest_only`, a tx none of whose
    outputs links when a `batch` spends another of its outputs from the payer's own wallet
    (the tx's own spender, or a cluster of the sorted `payers` of the payer's `payer_group`).
    Returns (payer tx, output) per link."""
    n_txs = first_output.shape[0]
    cap = 0
    for t in txs:
        o1 = first_output[t + 1] if t + 1 < n_txs else n_outputs
        cap += o1 - first_output[t]
    made = np.empty(cap, np.int64)
    outs = np.empty(cap, np.int64)
    k = 0
    n_cand = candidates.shape[0]
    n_payers = payers.shape[0]
    for i in range(txs.shape[0]):
        t = txs[i]
        o0 = first_output[t]
        o1 = first_output[t + 1] if t + 1 < n_txs else n_outputs
        best, ties, total, best_o = -1, 0, 0, -1
        for o in range(o0, o1):
            if output_address[o] != none and output_value[o] > 0:
                v = output_value[o]
                total += v
                if v > best:
                    best, ties, best_o = v, 1, o
                elif v == best:
                    ties += 1
        # the change keeps most of what the batch paid out: an output no larger than all the
        # others together may be one big withdrawal (another exchange's deposit) instead
        if largest_only and (ties != 1 or best <= total - best):
            continue
        if largest_only:
            # the payer's own batch spends another output: that one was its change, and the
            # largest a withdrawal (hard_swswitch small 7: an arcadia batch's largest output
            # was a borealis deposit that borealis forwarded, its change spent by arcadia's
            # next batch; docs/accuracy-log.md "Change read from a batch the payer spends")
            own = spender[t]
            pp = np.searchsorted(payers, own)
            group = payer_group[pp] if pp < n_payers and payers[pp] == own else -1
            mine = False
            for o in range(o0, o1):
                s = spent_by[o]
                if o == best_o or s < 0 or not batch[s]:
                    continue
                y = spender[s]
                if y == own:
                    mine = True
                    break
                pos = np.searchsorted(payers, y)
                if group < 0 or pos >= n_payers or payers[pos] != y:
                    continue
                if payer_group[pos] == group:
                    mine = True
                    break
            if mine:
                continue
        for o in range(o0, o1):
            if output_address[o] == none or output_value[o] <= 0:
                continue
            if largest_only and output_value[o] != best:
                continue
            if same_type and output_type[o] != hot_type[i]:
                continue
            s = spent_by[o]
            if s < 0 or coinjoin[s] or n_payees[s] < 2 or n_inputs[s] < min_inputs:
                continue
            x = spender[s]
            if x < 0 or x == spender[t] or n_cand == 0:
                continue
            pos = np.searchsorted(candidates, x)
            if pos < n_cand and candidates[pos] == x:
                made[k] = t
                outs[k] = o
                k += 1
    return made[:k], outs[:k]


def change_spend_links(
    store: Store,
    shapes: TxShapes | None,
    named: np.ndarray,
    candidates: np.ndarray,
    largest_only: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Links from a named wallet's batch to the untagged service that spends its change:
    (payer, spender) cluster pairs, `change_spend_evidence`'s first two arrays."""
    payer, spender, _batch, _spend = change_spend_evidence(
        store, shapes, named, candidates, largest_only
    )
    return payer, spender


def change_spend_evidence(
    store: Store,
    shapes: TxShapes | None,
    named: np.ndarray,
    candidates: np.ndarray,
    largest_only: bool = True,
    *,
    payouts: np.ndarray | None = None,
    same_type: bool = True,
    min_spend_inputs: int = 1,
    payer_groups: np.ndarray | None = None,
    round_sat: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Links from a named wallet's batch to the untagged service that spends its change.

    An exchange with the fresh-change habit pays each batch (`TxShapes.batch`: 6+ payees, not
    a CoinJoin) from one coin and sends the rest to a fresh address of its own: the batch's
    largest output. A customer's withdrawal is one of the many smaller ones. So when the
    largest output of a batch paid by a `named` cluster is spent (by a tx not flagged as a
    CoinJoin) whose first input is in one of the `candidates` clusters, that cluster is most
    likely the same wallet: its change spent by a tx that no batch rule joins (a withdrawal of
    one payee and change, a small payout). The largest-output condition is what makes it hold:
    without it most such links ran to whoever a withdrawal paid (docs/accuracy-log.md "Change
    spent by an untagged wallet"). A big withdrawal can be a batch's largest output too, paid
    into another exchange's deposit; two more conditions leave those out: the output has the
    script type of the coin the batch spends first (the change goes back to the hot wallet's
    type; the other exchange's deposit was of another type on the hard worlds where this went
    wrong), and its spend pays 2+ payees (a one-payee spend is a sweep or a send-all, what an
    exchange does with a deposit). And the change must hold most of what the batch paid out:
    its largest output larger than all its other payable outputs together. A withdrawal that
    only tops the others can be that other exchange's deposit, forwarded straight to a buyer in
    a one-input, two-output tx that looks like the wallet spending its own change (hard small 1:
    a cobalt batch's largest output, 2.1× the next, was an arcadia deposit, and arcadia's
    forward named an arcadia fragment cobalt; every right link of the hard and realistic small
    worlds 1-7 had a change larger than the rest, bar 3 of 98). A batch whose largest value
    appears twice makes no link. `named`, `candidates`: sorted cluster ids. Returns (payer,
    spender) cluster pairs, one per link (repeats kept), and each link's batch and spending tx
    ids (what a case cites for it). The converse, a `candidates` cluster's batch whose change a
    `named` cluster spends, is the same call with the two swapped (`cases.investigate.
    _lend_by_change`'s change returns). And a batch of which another output is spent by a
    batch of the payer's own wallet makes no link where `largest_only`: that output was the
    change (a wallet's batches spend its own coins, `service_entities`), and the largest a
    withdrawal, perhaps into another exchange's deposit that exchange forwards (hard_swswitch
    small 7: 2 wrong labels, 44 clusters; 0 of 756 right links on 65 cached worlds had it).
    The payer's own wallet: its own cluster, and the `named` clusters of its `payer_groups`
    code (one int per `named` cluster, a name or a label; None: each cluster its own wallet).
    `largest_only=False` takes every output of that type. `round_sat` > 0: no link through
    an output whose value is a multiple of it (a withdrawal's round amount, not change).
    `payouts` (a mask per tx; `shapes.batch` when None), `same_type` and `min_spend_inputs`
    (the spending tx's inputs) let `payout_cospend_evidence` and `sweep_into_evidence` read
    their links with the same pass. Memory: 1 B per tx (the payer mask) and 16 B per output of
    the named wallets' batches while in use."""
    none = np.zeros(0, np.int64)
    if shapes is None or named.shape[0] == 0 or candidates.shape[0] == 0:
        return none, none, none, none
    named = np.asarray(named, np.int64)
    spender = np.asarray(shapes.spender)
    lend = (shapes.batch if payouts is None else payouts).copy()
    pos = np.minimum(np.searchsorted(named, spender[lend]), named.shape[0] - 1)
    lend[lend] = named[pos] == spender[lend]
    txs = np.flatnonzero(lend).astype(np.int64)
    if txs.shape[0] == 0:
        return none, none, none, none
    n_outputs = shapes.output_address.shape[0]
    # the script type of the coin each of those batches spends first
    spent_output = store.graph.input_spent_output
    firsts = np.asarray(store.graph.tx_first_input[txs], np.int64)
    firsts = np.minimum(firsts, max(spent_output.shape[0] - 1, 0))
    output_type = store.graph.output_script_type
    hot_type = np.asarray(output_type[np.maximum(np.asarray(spent_output[firsts]), 0)])
    made, outs = _change_spends(
        txs,
        hot_type,
        np.asarray(shapes.first_output, np.int64),
        n_outputs,
        shapes.output_address,
        shapes.output_value,
        output_type,
        shapes.spent_by,
        spender,
        shapes.coinjoin,
        shapes.n_payees,
        np.asarray(candidates, np.int64),
        NONE32,
        largest_only,
        same_type,
        shapes.n_inputs,
        min_spend_inputs,
        np.asarray(shapes.batch),
        named,
        np.arange(named.shape[0], dtype=np.int64)
        if payer_groups is None
        else np.asarray(payer_groups, np.int64),
    )
    if round_sat > 0:
        plain = np.asarray(shapes.output_value[outs], np.int64) % round_sat != 0
        made, outs = made[plain], outs[plain]
    by = np.asarray(shapes.spent_by[outs]).astype(np.int64)
    return spender[made].astype(np.int64), spender[by].astype(np.int64), made, by


#: A name (an exchange's, or an unnamed service's label) whose wallet's multi-input payouts
#: spend more than this share of coins that other owners paid it spends its customers'
#: deposits straight in its payouts (`deposit_cospenders`). Read before any fragment link, on
#: the 50 cached worlds (hard/realistic small 1-14, hard_sw/realistic_sw small 1-10, hard
#: medium 1-2; no exchange there co-spends) the exchange names' shares were at most 0.15 (172
#: names) and the unnamed labels' at most 0.27 (213); on hard_cospend small 1-12 the
#: co-spending exchanges' at least 0.54 (21 names). docs/accuracy-log.md "Exchanges that
#: spend deposits in their payouts"
COSPEND_SHARE = 0.4
#: ... read over at least this many inputs (fewer tell nothing: 0.25-0.4 on 8-12 inputs of
#: sweeping wallets)
COSPEND_MIN_INPUTS = 20


def paid_in_counts(
    store: Store, shapes: TxShapes | None, clusters: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per group of the sorted `clusters` (`group`: its group per cluster, ints in
    [0, `n_groups`)): (inputs of its clusters' txs of 2+ inputs and 2+ payees that are not
    CoinJoins, those of them whose coin a tx of a cluster outside the group made, that tx
    neither a sweep, `SWEEP_MIN_INPUTS`+ inputs into one payee, nor a coinbase), an
    (n_groups, 2) int64 array (`deposit_cospenders` reads it). Memory: `PaidInReads`' (12 B
    per distinct pair of spending and paying cluster, 8 B per tx of theirs while it is read);
    the store's arrays are read mapped, in place."""
    if shapes is None:
        return np.zeros((n_groups, 2), np.int64)
    # the same read a case makes once and re-aggregates (`PaidInReads`), made for one grouping
    return PaidInReads(store, shapes).counts(clusters, group, n_groups)


@njit(cache=True, nogil=True)
def _paid_in_pairs(txs, spender, first_input, n_inputs_all, spent_output, first_output,
                   n_inputs, n_payees, sweep_inputs):  # fmt: skip
    """Per input of `txs` (`paid_in_counts`' reads, before any grouping): its tx's spender
    cluster, and the spender cluster of the tx that made its coin, -1 where that tx is a sweep
    or a coinbase (never another owner's coin); an input spending no output is left out."""
    n_txs = first_input.shape[0]
    n = 0
    for t in txs:
        i1 = first_input[t + 1] if t + 1 < n_txs else n_inputs_all
        for i in range(first_input[t], i1):
            if spent_output[i] >= 0:
                n += 1
    spend = np.empty(n, spender.dtype)
    paid = np.empty(n, spender.dtype)
    k = 0
    for t in txs:
        i1 = first_input[t + 1] if t + 1 < n_txs else n_inputs_all
        for i in range(first_input[t], i1):
            o = spent_output[i]
            if o < 0:
                continue
            f = np.searchsorted(first_output, o, side="right") - 1
            spend[k] = spender[t]
            if n_payees[f] == 1 and n_inputs[f] >= sweep_inputs:
                paid[k] = -1  # a sweep: the wallet's own deposits, swept by a cluster unnamed yet
            else:
                paid[k] = spender[f]  # -1 already for a coinbase: a pool's own coin
            k += 1
    return spend, paid


@njit(cache=True, nogil=True)
def _multi_input_txs_of(spender, n_inputs, n_payees, coinjoin, clusters):  # fmt: skip
    """The txs of 2+ inputs and 2+ payees, not CoinJoins, whose spender is one of the sorted
    `clusters`, in order: the shape tested first, the spender searched only then."""
    n_cl = clusters.shape[0]
    out = np.empty(0, np.int64)
    for fill in range(2):
        k = 0
        for t in range(spender.shape[0]):
            if n_inputs[t] < 2 or n_payees[t] < 2 or coinjoin[t]:
                continue
            pos = np.searchsorted(clusters, spender[t])
            if pos < n_cl and clusters[pos] == spender[t]:
                if fill:
                    out[k] = t
                k += 1
        if not fill:
            out = np.empty(k, np.int64)
    return out


class PaidInReads:
    """`paid_in_counts` for one case's many groupings of the same chain, read once per cluster.

    The case reads the names whose wallet spends deposits in its payouts
    (`deposit_cospenders`) up to five times while its rules lend names, each time over other
    clusters and groups; the per-input pass over the chain does not depend on the grouping.
    So it is kept per spending cluster, as its (spending cluster, paying cluster, inputs)
    triples (`_paid_in_pairs`, one per distinct pair; the paying cluster -1 where the coin
    came from a sweep or a coinbase), and each grouping re-aggregates them, with no pass over
    the chain: a grouping that asks for clusters not read yet reads only those (one pass over
    the txs' spenders, then the inputs of their txs alone). Memory: 12 B per distinct pair of
    the clusters read (int32 ids below 2^31 addresses, 20 B past them), while the case is
    prepared; 8 B per tx of the clusters asked while a pass reads."""

    def __init__(self, store: Store, shapes: TxShapes) -> None:
        self.store = store
        self.shapes = shapes
        ids = np.asarray(shapes.spender).dtype
        self.read = np.zeros(0, np.int64)  # the clusters read, sorted
        self.spend = np.zeros(0, ids)
        self.paid = np.zeros(0, ids)
        self.inputs = np.zeros(0, np.uint32)
        self.passes = 0  # passes over the chain so far (what the reuse saves, for benchmarks)

    def _read(self, clusters: np.ndarray) -> None:
        """Read the triples of the sorted `clusters` (none of them read yet)."""
        shapes, graph = self.shapes, self.store.graph
        spender = np.asarray(shapes.spender)
        # one scan of the per-tx arrays as mapped, nothing per tx held: 8 B per tx found
        txs = _multi_input_txs_of(
            spender,
            np.asarray(shapes.n_inputs),
            np.asarray(shapes.n_payees),
            np.asarray(shapes.coinjoin),
            np.asarray(clusters, spender.dtype),
        )
        spend, paid = _paid_in_pairs(
            txs,
            spender,
            np.asarray(graph.tx_first_input),
            graph.input_spent_output.shape[0],
            np.asarray(graph.input_spent_output),
            np.asarray(shapes.first_output),
            np.asarray(shapes.n_inputs),
            np.asarray(shapes.n_payees),
            SWEEP_MIN_INPUTS,
        )
        self.passes += 1
        # one triple per distinct pair: a hot wallet's spends of its own change are one
        pairs = np.unique(np.stack([spend, paid]), axis=1, return_counts=True)
        (spend, paid), inputs = pairs
        self.read = np.union1d(self.read, clusters)
        self.spend = np.concatenate([self.spend, spend.astype(self.spend.dtype)])
        self.paid = np.concatenate([self.paid, paid.astype(self.paid.dtype)])
        self.inputs = np.concatenate([self.inputs, inputs.astype(np.uint32)])

    def counts(self, clusters: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
        """`paid_in_counts(store, shapes, clusters, group, n_groups)`, the same (n_groups, 2)
        int64 array, from the triples (reading the clusters not read yet first)."""
        clusters = np.asarray(clusters, np.int64)
        group = np.asarray(group, np.int64)
        out = np.zeros((n_groups, 2), np.int64)
        if clusters.shape[0] == 0:
            return out
        missing = np.setdiff1d(clusters, self.read)
        if missing.shape[0]:
            self._read(missing)
        last = clusters.shape[0] - 1
        spend = self.spend.astype(np.int64)
        pos = np.minimum(np.searchsorted(clusters, spend), last)
        inside = clusters[pos] == spend
        g = group[pos[inside]]
        inputs = self.inputs[inside].astype(np.int64)
        paid = self.paid[inside].astype(np.int64)
        q = np.minimum(np.searchsorted(clusters, paid), last)
        own = (paid < 0) | ((clusters[q] == paid) & (group[q] == g))
        # integer weights below 2^53: float64 sums are exact
        out[:, 0] = np.bincount(g, weights=inputs, minlength=n_groups)[:n_groups].astype(np.int64)
        out[:, 1] = np.bincount(g[~own], weights=inputs[~own], minlength=n_groups)[
            :n_groups
        ].astype(np.int64)
        return out


def deposit_cospenders(
    store: Store,
    shapes: TxShapes | None,
    clusters: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    reads: PaidInReads | None = None,
) -> np.ndarray:
    """The groups (of `paid_in_counts`'s arguments: a name per cluster) whose wallet spends its
    customers' deposits straight in its payouts, together with its own coins, instead of
    sweeping them first, read from the chain: more than `COSPEND_SHARE` of the inputs of the
    group's txs of 2+ inputs and 2+ payees (not CoinJoins; its payouts and moves with change,
    read over `COSPEND_MIN_INPUTS`+ inputs) spend a coin that a cluster outside the group paid,
    in a tx that is neither a sweep nor a coinbase. A sweeping exchange's multi-input spends
    take coins its own sweeps, refills, forwards and change made: of its own name, or sweeps
    by deposit clusters no rule has named (left out for that), or a pool's coinbases. A
    co-spending one's take its deposits, which its customers' payments and other exchanges'
    withdrawals made. Such a wallet spends a withdrawal that another exchange paid into one of
    its deposits together with its own coins, so its spends of another wallet's outputs say
    nothing about whose change they were, and its deposits sit in its hot wallet's cluster.
    Returns the group ids, sorted. Memory: `paid_in_counts`'s. `reads` (`PaidInReads` of the
    same store and shapes): the counts re-aggregated from its per-cluster reads, the same."""
    if reads is not None:
        counts = reads.counts(clusters, group, n_groups)
    else:
        counts = paid_in_counts(store, shapes, clusters, group, n_groups)
    share = counts[:, 1] / np.maximum(counts[:, 0], 1)
    return np.flatnonzero((share > COSPEND_SHARE) & (counts[:, 0] >= COSPEND_MIN_INPUTS))


def payout_cospend_evidence(
    store: Store, shapes: TxShapes | None, candidates: np.ndarray, named: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Links from an untagged service's payout to the named wallet that spent one of its
    outputs together with coins of its own.

    A change return (`change_spend_evidence` with the two swapped) needs the batch's change to
    hold most of what it paid out; a batch with one big withdrawal, or of 3-5 payees, shows no
    such output, and its change goes back to the hot wallet all the same. What else can tell
    the change from a withdrawal is the spend: a named cluster that spends the output *with
    other coins* (2+ inputs) in a tx of 2+ payees holds it as a coin of its own wallet, a payout
    or a move to cold storage. A withdrawal into another exchange's deposit is swept (one
    payee) or forwarded alone (one input) instead. So: a payout (`TxShapes.small_batch`: 3+
    payees, not a CoinJoin) of a `candidates` cluster, an output of it of the script type of the
    coin it spends first, spent by a `named` cluster in a tx of 2+ inputs and 2+ payees, not a
    CoinJoin. On the cached worlds (docs/accuracy-log.md "Payout outputs co-spent by a named
    wallet") 31 of 31 such links right. What it cannot tell apart: an exchange that spends its
    customers' deposits straight in its payouts, with other coins, and a withdrawal of the
    batch's own script type into such a deposit (the simulator's exchanges never do; some real
    ones do). `candidates`, `named`: sorted cluster ids. Returns (payer, spender) cluster
    pairs, and each link's payout and spending tx ids."""
    if shapes is None:
        none = np.zeros(0, np.int64)
        return none, none, none, none
    return change_spend_evidence(
        store,
        shapes,
        candidates,
        named,
        largest_only=False,
        payouts=shapes.small_batch,
        min_spend_inputs=2,
    )


def sweep_into_evidence(
    store: Store, shapes: TxShapes | None, named: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Links from a named wallet's sweep to the untagged service that pays out what it swept.

    An exchange sweeps its deposits (`SWEEP_MIN_INPUTS`+ inputs, one payee) into its own
    wallet, and a refill from cold storage that takes every cold coin is the same shape. When
    a `named` cluster's sweep (not a CoinJoin) pays a coin that a `candidates` cluster spends in
    a tx of 2+ payees (a payout, a move with change: what a hot wallet does with a coin),
    that cluster is the wallet the sweep filled. A customer's send-all is the payer's, never the
    named exchange's; an exchange paying a third party with a send-all of 3+ coins is what it
    cannot tell apart. `named`, `candidates`: sorted cluster ids. Returns (payer, spender)
    cluster pairs, and each link's sweep and spending tx ids."""
    if shapes is None:
        none = np.zeros(0, np.int64)
        return none, none, none, none
    sweeps = np.zeros(shapes.n_payees.shape[0], np.bool_)
    for t0 in range(0, sweeps.shape[0], TX_SLICE):
        t1 = min(sweeps.shape[0], t0 + TX_SLICE)
        sweeps[t0:t1] = _sweep_shaped(shapes, np.arange(t0, t1, dtype=np.int64))
    return change_spend_evidence(store, shapes, named, candidates, payouts=sweeps, same_type=False)


def funder_links(
    shapes: TxShapes | None, cluster_of: np.ndarray, tagged: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Links from a tagged cluster back to the wallet that paid it its own coins.

    An exchange whose 3-5 tags fall on a cold-storage address or on the change of a batch shows
    nothing of its hot wallet through them: nothing it tags spends in a batch, so its wallet
    style is blind (`wallet_styles`, docs/accuracy-log.md "Blind tagged wallets"). The tx that
    paid such a tag is the exchange's own: a sweep of its deposits into cold storage, a batch
    whose change the tag is. A deposit address is paid by a customer instead, and that is why
    only outputs that are still unspent, or that a batch spends (a batch spends its owner's
    coins, a deposit is swept), make a link: a swept or forwarded deposit makes none. Returns
    (funder, tagged, payout): the paying tx's input cluster, the tagged cluster it paid, and
    whether the paying tx is a payout (`TxShapes.small_batch`, 3+ payees).
    `tagged`: sorted cluster ids. The paying tx must not be a CoinJoin. On the simulated hard
    and realistic small worlds (seeds 1-3) every such output's payer was the tag's owner
    (1,177 of 1,177 outputs, docs/investigations.md), but the simulator sweeps every deposit.
    A real chain's deposit address that was paid and not yet swept links its payer (a customer,
    another exchange): the caller (`cases.investigate._lend_to_funders`) lends a name through
    payouts only. Memory: 10 B per output of one slice while in use.
    """
    none = np.zeros(0, np.int64)
    if shapes is None or cluster_of.shape[0] == 0 or tagged.shape[0] == 0:
        return none, none, np.zeros(0, np.bool_)
    funders, paid, payouts = [none], [none], [np.zeros(0, np.bool_)]
    for _t0, _t1, lo, hi, made in shapes.tx_slices():
        payable = shapes.payable[lo:hi]
        addr = np.asarray(shapes.output_address[lo:hi]).astype(np.int64)
        receiver = np.full(hi - lo, -1, np.int64)
        receiver[payable] = cluster_of[addr[payable]]
        pos = np.minimum(np.searchsorted(tagged, receiver), tagged.shape[0] - 1)
        link = payable & (tagged[pos] == receiver)
        spent_by = np.asarray(shapes.spent_by[lo:hi]).astype(np.int64)
        kept = spent_by < 0
        kept[~kept] = shapes.batch[spent_by[~kept]]
        link &= kept & ~shapes.coinjoin[made]
        funder = shapes.spender[made].astype(np.int64)
        link &= (funder >= 0) & (funder != receiver)
        funders.append(funder[link])
        paid.append(receiver[link])
        payouts.append(shapes.small_batch[made[link]])
    return np.concatenate(funders), np.concatenate(paid), np.concatenate(payouts)


def _cluster_sizes(cluster_of: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """(cluster id, members) rows of the sorted `clusters`: one pass over `cluster_of` a
    slice at a time (memory: 16 B per cluster asked for)."""
    sizes = np.zeros(clusters.shape[0], np.int64)
    if clusters.shape[0]:
        for lo in range(0, cluster_of.shape[0], SLICE):
            part = np.asarray(cluster_of[lo : lo + SLICE], np.int64)
            pos = np.minimum(np.searchsorted(clusters, part), clusters.shape[0] - 1)
            hit = clusters[pos] == part
            sizes += np.bincount(pos[hit], minlength=clusters.shape[0])
    return np.stack([clusters, sizes], axis=1)


def sendall_receivers(shapes: TxShapes | None, cluster_of: np.ndarray) -> np.ndarray:
    """Clusters paid by another cluster's send-all of several coins, and that spent it on.

    Sending a whole wallet of several coins to one address of someone else is how customers pay
    an exchange deposit address (issue 11: a third of one-output payments pay another owner).
    An untagged exchange that forwards such a deposit straight to a buyer leaves a backward
    walk nothing else to stop at, and the walk named whoever funded the customer. On the
    simulated small worlds (seeds 1-6, before this rule) 15 of the 32 wrong deciding leads at
    >= 0.5 on the realistic and hard profiles walked back through such an address, against 3
    of 1,428 right ones (0 of 1,627 on the easy profile), so a backward walk stops there
    (`cases.investigate`: unidentified_service, leads only). Sorted cluster ids; 8 B per output
    while in use.
    """
    if shapes is None or cluster_of.shape[0] == 0:
        return np.zeros(0, np.int64)
    found = [np.zeros(0, np.int64)]
    for t0, t1, lo, hi, made in shapes.tx_slices():
        sendall = (shapes.n_inputs[t0:t1] >= SENDALL_MIN_INPUTS) & (shapes.n_payees[t0:t1] == 1)
        sendall &= (shapes.spender[t0:t1] >= 0) & ~shapes.coinjoin[t0:t1]
        pays = shapes.payable[lo:hi] & sendall[made - t0]
        pays &= np.asarray(shapes.spent_by[lo:hi]) >= 0
        addr = np.asarray(shapes.output_address[lo:hi])[pays].astype(np.int64)
        receiver = np.asarray(cluster_of[addr], np.int64)
        other = receiver != shapes.spender[made[pays]]
        found.append(np.unique(receiver[other]))
    return np.unique(np.concatenate(found))


#: Blocks between a coin's payment and the batch that spends it that read as "spent as soon
#: as it confirmed": a wallet that spends its customers' deposits straight in its payouts
#: takes them once they have their confirmations (1-2 blocks on the simulated worlds: 1,946
#: of the 2,046 links joining two owners on hard_cospend small 1), while its own coins (a
#: forward's remainder, a sweep, a refill) wait from 0 to many blocks (hard small 1: 104 of
#: 330 at 1-2). docs/accuracy-log.md "Service entities read per wallet".
COSPEND_LINK_BLOCKS = (1, 2)
#: A batch cluster whose links from txs that are not batches are at least this share at
#: `COSPEND_LINK_BLOCKS`, over at least `COSPEND_LINK_MIN` of them, reads as spending deposits.
COSPEND_LINK_SHARE = 0.6
COSPEND_LINK_MIN = 2
#: A batch cluster whose links from txs that are not batches come, at least this share of
#: them over at least `SENDALL_LINK_MIN`, from a tx of one payee that is no sweep (fewer than
#: `SWEEP_MIN_INPUTS` inputs) reads as spending deposits too. Such a tx has no change: its one
#: output pays the whole coin to someone, so a batch that spends it spends what others paid
#: it. It catches the co-spenders that wait many blocks before they spend a deposit (their
#: send-all share 0.26-0.28 on hard_cospend small 3; a sweeping wallet's 0-0.04 on the hard,
#: realistic and _sw worlds). docs/accuracy-log.md "Co-spender status inherited".
SENDALL_LINK_SHARE = 0.1
SENDALL_LINK_MIN = 5


def _batch_links(shapes: TxShapes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`service_entities`' links before any is dropped: per link, the tx that made its
    output, the batch that spent that output, and the batch's input cluster."""
    made_by = shapes.made_by
    found = [np.zeros(0, np.int64)]
    for _t0, _t1, lo, hi, _made in shapes.tx_slices():
        spent_by = np.asarray(shapes.spent_by[lo:hi])
        spent = spent_by >= 0
        spent_in_batch = np.zeros(hi - lo, np.bool_)
        spent_in_batch[spent] = shapes.batch[spent_by[spent]]
        found.append(np.flatnonzero(spent_in_batch) + lo)
    outputs = np.concatenate(found)
    # the only output of its creating tx that a batch spends
    txs, per_tx = np.unique(made_by[outputs], return_counts=True)
    outputs = outputs[np.isin(made_by[outputs], txs[per_tx == 1])]
    made = made_by[outputs]
    link = (shapes.spender[made] >= 0) & ~shapes.coinjoin[made]
    spend = shapes.spent_by[outputs[link]].astype(np.int64)
    return made[link], spend, np.asarray(shapes.spender[spend], np.int64)


def deposit_spending_batches(shapes: TxShapes | None, tx_height: np.ndarray) -> np.ndarray:
    """The batch clusters that `service_entities`' links show spending deposits as they come
    (sorted cluster ids).

    A wallet that spends its customers' deposits straight in its batches breaks the links'
    premise: each deposit it spends is the only output of the customer's payment (or of
    another exchange's withdrawal) that a batch spends, so the payer's cluster is joined to the
    exchange's. Read per batch cluster, over its links from txs that are not batches (a
    batch's own change spent by the next batch says nothing here): nearly all of them spent
    `COSPEND_LINK_BLOCKS` after they were paid (`COSPEND_LINK_SHARE`, over `COSPEND_LINK_MIN`+:
    "as soon as it confirmed"), or some of them paid by a send-all that is no sweep
    (`SENDALL_LINK_SHARE`, over `SENDALL_LINK_MIN`+). `tx_height`: the store's, per tx.
    Memory: 32 B per link while read."""
    if shapes is None:
        return np.zeros(0, np.int64)
    made, spend, b = _batch_links(shapes)
    if made.shape[0] == 0:
        return np.zeros(0, np.int64)
    gap = np.asarray(tx_height[spend], np.int64) - np.asarray(tx_height[made], np.int64)
    own = ~np.asarray(shapes.batch[made], np.bool_)
    ids, at = np.unique(b, return_inverse=True)
    n = np.bincount(at[own], minlength=ids.shape[0])
    quick = own & (gap >= COSPEND_LINK_BLOCKS[0]) & (gap <= COSPEND_LINK_BLOCKS[1])
    n_quick = np.bincount(at[quick], minlength=ids.shape[0])
    sendall = (
        own
        & (np.asarray(shapes.n_payees[made]) == 1)
        & (np.asarray(shapes.n_inputs[made]) < SWEEP_MIN_INPUTS)
    )
    n_sendall = np.bincount(at[sendall], minlength=ids.shape[0])
    bad = (n >= COSPEND_LINK_MIN) & (n_quick >= COSPEND_LINK_SHARE * n)
    bad |= (n >= SENDALL_LINK_MIN) & (n_sendall > 0) & (n_sendall >= SENDALL_LINK_SHARE * n)
    flagged: np.ndarray = ids[bad & (ids >= 0)]
    return flagged


def service_entities(
    shapes: TxShapes | None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    spenders: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters that one service's own transactions join: (cluster ids, entity of each).

    A custodial wallet that never reuses an address falls apart into many clusters (each
    batched withdrawal's fresh change is linked by no precise rule). Its own transactions still
    tie them: the service spends what it owns in its next batch. So when a batch spends an
    output, and that output is the only one of its creating transaction that any batch spends,
    the creating transaction's input cluster and the batch's input cluster are taken for one
    service: a batch's change spent by the next batch, a sweep of deposits spent by a batch, a
    forwarded deposit's remainder. Customers do not pay in batches, so what a customer withdrew
    is not spent by one. CoinJoins neither create nor spend such links. `extra`: more links
    (`small_batch_links`). `spenders` (sorted, `deposit_spending_batches`): batch clusters
    that spend deposits as they come; no link into one is kept (`extra` ones aside).

    Returns the clusters that take part in a link (sorted) and an entity label for each (the
    smallest cluster id of its component). Memory: 16 B per linked cluster and 24 B per link.
    On the hard simulated world (small, seed 1) 962 links were made and every one joined two
    clusters of the same owner (docs/investigations.md).
    """
    none = np.zeros(0, np.int64)
    if shapes is None:
        return none, none
    made, _spend, b = _batch_links(shapes)
    a = np.asarray(shapes.spender[made], np.int64)
    if spenders is not None and spenders.shape[0]:
        b = np.where(np.isin(b, spenders), -1, b)
    if extra is not None:
        a, b = np.concatenate([a, extra[0]]), np.concatenate([b, extra[1]])
    keep = (a >= 0) & (b >= 0) & (a != b)
    a, b = a[keep], b[keep]
    if a.shape[0] == 0:
        return none, none
    nodes = np.unique(np.concatenate([a, b]))
    label = _components(np.searchsorted(nodes, a), np.searchsorted(nodes, b), nodes.shape[0])
    return nodes, nodes[label]


def spender_change_links(
    store: Store,
    shapes: TxShapes,
    spenders: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    everyone: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(payer, spender) cluster pairs of `spender_change_chains`: the change spends
    (`change_spend_evidence`, round amounts left out) of the batches of the sorted `spenders`
    clusters, spent by any cluster. `groups` (sorted clusters, a wallet code
    each): a batch another output of which a batch of the payer's wallet spends makes no link
    (that output was its change). `everyone`: the sorted spender clusters of all txs (None:
    read here; one sort of a cluster id per tx)."""
    payers = spenders
    if everyone is None:
        everyone = np.unique(np.asarray(shapes.spender))
        everyone = everyone[everyone >= 0].astype(np.int64)
    codes = None
    if groups is not None:
        # each payer outside every group a wallet of its own
        codes = np.arange(payers.shape[0], dtype=np.int64) + int(groups[1].max(initial=0)) + 1
        pos = np.minimum(np.searchsorted(groups[0], payers), max(groups[0].shape[0] - 1, 0))
        inside = groups[0][pos] == payers if groups[0].shape[0] else np.zeros(0, np.bool_)
        codes[inside] = groups[1][pos[inside]]
    a, b, _batch, _spend = change_spend_evidence(
        store, shapes, payers, everyone, payer_groups=codes, round_sat=STYLE_ROUND_SAT
    )
    keep = a != b
    return a[keep], b[keep]


def spender_change_chains(
    store: Store, shapes: TxShapes | None, spenders: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The wallets of deposit-spending batch clusters, chained by their own change: (cluster
    ids, chain of each), as `service_entities` returns its entities.

    A wallet that spends its customers' deposits in its batches (`deposit_spending_batches`)
    loses every `service_entities` link into its batch clusters, the right ones too, and its
    batch's change, spent by its next batch, is seldom the only output of the batch that a
    batch spends anyway (a withdrawal into another co-spender's deposit is spent by a batch as
    well). Its batches fall apart into a fragment each, and few of them carry a tag. The
    change read of `change_spend_evidence` does not need that premise: the batch's largest
    output, larger than all its others together, of the script type of the coin it spends
    first, spent by a tx of 2+ payees, is its change. Links so read from a
    `spenders` cluster's batch to the cluster that spends that change (any cluster) chain the
    wallet's fragments. A round largest output (a multiple of `STYLE_ROUND_SAT`) is a
    withdrawal, not change: no link. The links are read twice: the second time, a batch
    another output of which a batch of the payer's first-read chain spends makes none (that
    output was its change, the largest a withdrawal into another co-spender's deposit).
    Measured by the truth on hard_cospend small 1, 4 and 8: 469 links, none joining two owners
    (docs/accuracy-log.md "Co-spenders' batches chained by their change"). `spenders`: sorted
    cluster ids; none, no chain. Memory: `change_spend_evidence`'s, and 24 B per link."""
    none = np.zeros(0, np.int64)
    if shapes is None or spenders.shape[0] == 0:
        return none, none
    nodes, chain = none, none
    groups = None
    everyone = np.unique(np.asarray(shapes.spender))
    everyone = everyone[everyone >= 0].astype(np.int64)
    for _ in range(2):
        # read twice: the second time a batch whose other output the first read's chain of
        # the payer spends makes no link (that other output was its change)
        a, b = spender_change_links(store, shapes, spenders, groups, everyone)
        if a.shape[0] == 0:
            return none, none
        nodes = np.unique(np.concatenate([a, b]))
        label = _components(np.searchsorted(nodes, a), np.searchsorted(nodes, b), nodes.shape[0])
        chain = nodes[label]
        groups = (nodes, chain)
    return nodes, chain


#: Distinct payers whose coins two deposit-spending fragments must both spend before the two are
#: taken for one wallet (`deposit_payer_bridges`). One is not enough: a customer who pays into two
#: co-spending exchanges bridges them (hard_cospend small 1-14: 104 of 1,610 payers whose coins
#: two or more fragments spend pay into two owners' fragments; on small 4 and 10, 12 of 618
#: bridges joined two owners at one payer; on small 1-14, 6 of 830 at two, each of them
#: refused by the two-name rule of `cases.investigate._bridge_pieces`).
BRIDGE_MIN_PAYERS = 2

#: A fragment whose batch clusters hold more batches than this (one of them) bridges nothing:
#: its wallet reuses addresses, so it is one cluster already (hard_cospend small 1, 4, medium 1:
#: a fresh-address co-spender's flagged clusters hold 1 batch each, a reusing one's 10+), and
#: that cluster is a hub most payers touch; left in, with the reusing exchange untagged, its
#: cluster took a tagged co-spender's name through shared customers (hard_cospend small 1,
#: dunmore untagged: 0 -> 66 of its deposits named cobalt).
BRIDGE_MAX_CLUSTER_BATCHES = 2

#: A payer whose coins more fragments than this spend bridges none: a service that pays many
#: wallets says nothing of which of them are one (and its pairs would grow as the square).
BRIDGE_MAX_PIECES = 8

#: ... and the payers two fragments share must be at least this share of the payers of the one
#: with fewer. A person with accounts at two exchanges pays deposits of both, so two exchanges'
#: strands share payers too, but few of each strand's payers: where 40% of the people pay
#: deposits at two or three exchanges (profile `hard_cospend_multi`, small 1-14), the 31
#: bridges that joined two owners shared 0.01-0.10 of the smaller strand's payers, the 564
#: within one owner 0.01-0.5 (docs/accuracy-log.md "Payer bridges under customers of several
#: exchanges"). 0: a count of `BRIDGE_MIN_PAYERS` alone (branch issue11-cprecall).
BRIDGE_MIN_OVERLAP = 0.1


def deposit_payer_bridges(
    shapes: TxShapes | None,
    spenders: np.ndarray,
    chains: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of deposit-spending fragments that spend the coins of the same payers: (piece a,
    piece b, distinct payers), sorted by payers, most first.

    A wallet that spends its customers' deposits straight in its batches, and never reuses an
    address, is a fragment per batch; `spender_change_chains` joins the batches whose change it
    can read, but the wallet's own spends do not join the rest: it keeps several hot coins, and
    each starts a strand of batches that no other strand's tx touches (hard_cospend small 1-14,
    by the truth: every own spend linked would reach 26 % of the missed deposits of its
    co-spenders). Its customers do: a customer pays several deposits into the exchange, and
    whichever strand's batch spends each, those strands share the payer. So two fragments (a
    change chain of `chains`, else a `spenders` cluster alone; a piece is named by the chain id
    or the cluster) whose batches spend outputs of `BRIDGE_MIN_PAYERS`+ distinct payer clusters,
    and of at least `BRIDGE_MIN_OVERLAP` of the payers of the one with fewer (a person with
    accounts at two exchanges pays deposits of both), are read as one wallet. A payer is the input cluster of a tx that is neither a batch, a
    CoinJoin nor a deposit-spending batch cluster's; one whose coins more than
    `BRIDGE_MAX_PIECES` pieces spend bridges none, and a piece with a cluster of more than
    `BRIDGE_MAX_CLUSTER_BATCHES` batches (a reusing wallet) takes no bridge. The caller refuses a bridge between two
    pieces whose tags carry two names (`cases.investigate._lend_by_chain`): a customer of both.
    Memory: 16 B per output a flagged batch spends while read, 16 B per (payer, piece) pair."""
    none = np.zeros(0, np.int64)
    if shapes is None or spenders.shape[0] == 0:
        return none, none, none
    spenders = np.asarray(spenders, np.int64)
    nodes, chain = chains if chains is not None else (none, none)
    payer_parts, piece_parts = [none], [none]
    for _t0, _t1, lo, hi, made in shapes.tx_slices():
        spent_by = np.asarray(shapes.spent_by[lo:hi]).astype(np.int64)
        ok = spent_by >= 0
        by = np.where(ok, spent_by, 0)
        by_cluster = np.asarray(shapes.spender[by], np.int64)
        ok &= np.asarray(shapes.batch[by]) & ~np.asarray(shapes.coinjoin[by])
        ok &= np.isin(by_cluster, spenders)
        payer = np.asarray(shapes.spender[made], np.int64)
        ok &= (payer >= 0) & ~np.asarray(shapes.batch[made]) & ~np.asarray(shapes.coinjoin[made])
        ok &= ~np.isin(payer, spenders)
        payer_parts.append(payer[ok])
        piece_parts.append(by_cluster[ok])
    payer = np.concatenate(payer_parts)
    piece = np.concatenate(piece_parts)
    # a cluster of more than BRIDGE_MAX_CLUSTER_BATCHES batches is a wallet that reuses its
    # addresses: one cluster already, and a hub most payers touch; its piece bridges nothing
    batch_spender = np.asarray(shapes.spender, np.int64)[np.asarray(shapes.batch)]
    ids, n_batches = np.unique(batch_spender[batch_spender >= 0], return_counts=True)
    hubs = ids[n_batches > BRIDGE_MAX_CLUSTER_BATCHES]
    if nodes.shape[0]:
        pos = np.minimum(np.searchsorted(nodes, piece), nodes.shape[0] - 1)
        inside = nodes[pos] == piece
        piece = np.where(inside, np.asarray(chain, np.int64)[pos], piece)
        hub_pos = np.minimum(np.searchsorted(nodes, hubs), nodes.shape[0] - 1)
        in_chain = nodes[hub_pos] == hubs
        hubs = np.union1d(hubs, np.asarray(chain, np.int64)[hub_pos[in_chain]])
    keep = ~np.isin(piece, hubs)
    payer, piece = payer[keep], piece[keep]
    pairs = np.unique(np.stack([payer, piece], axis=1), axis=0) if payer.shape[0] else None
    if pairs is None:
        return none, none, none
    piece_ids, piece_payers = np.unique(pairs[:, 1], return_counts=True)
    n_payers = dict(zip(piece_ids.tolist(), piece_payers.tolist(), strict=True))
    support: dict[tuple[int, int], int] = {}
    starts = np.flatnonzero(np.diff(pairs[:, 0], prepend=-1) != 0)
    ends = np.append(starts[1:], pairs.shape[0])
    for i0, i1 in zip(starts.tolist(), ends.tolist(), strict=True):
        if i1 - i0 < 2 or i1 - i0 > BRIDGE_MAX_PIECES:
            continue
        got = pairs[i0:i1, 1].tolist()  # sorted: np.unique sorted the rows
        for i in range(len(got)):
            for j in range(i + 1, len(got)):
                key = (got[i], got[j])
                support[key] = support.get(key, 0) + 1
    kept = sorted(((n, a, b) for (a, b), n in support.items()
                   if n >= BRIDGE_MIN_PAYERS
                   and n >= BRIDGE_MIN_OVERLAP * min(n_payers[a], n_payers[b])),
                  key=lambda x: (-x[0], x[1], x[2]))  # fmt: skip
    if not kept:
        return none, none, none
    arr = np.array(kept, np.int64)
    return arr[:, 1], arr[:, 2], arr[:, 0]


#: Batches whose change went last, with none elsewhere, before a wallet is taken to put its
#: change last (a wallet that shuffles its outputs puts it last in about 1 of 7 batches of 6+
#: payees, so three in a row happen by chance about once in 350 such wallets).
STYLE_MIN_LAST = 3

#: Batches whose change went elsewhere than last before a *tagged* exchange is taken to shuffle
#: its outputs (one could be a payee mistaken for change).
STYLE_MIN_SHUFFLED = 2

#: Batches whose change went to a fresh address (or to one seen before) before a *tagged*
#: exchange is taken to use fresh (reused) change addresses; a candidate needs one. Exchanges
#: that reuse their hot addresses pay every batch's change back to one of them; the others to
#: an address first seen in that batch (issue 11's "never reuse").
STYLE_MIN_CHANGE_ADDRESS = 2

#: ... and at least this many times as many one way as the other: a wallet that reuses a few
#: hot addresses shows each of them fresh once, the first time it pays change there (hard
#: medium 2: a tagged exchange's 854 reused and 1 fresh).
STYLE_CHANGE_ADDRESS_RATIO = 10

#: A payment output is a *round amount* when its value is a whole multiple of this (0.001 BTC:
#: three decimal digits or fewer). A wallet that sends the amount a customer asked for sends
#: round amounts whenever customers ask for them; one that takes its withdrawal fee out of the
#: amount sent (a fixed fee, e.g. 0.0005 BTC) almost never does.
STYLE_ROUND_SAT = 100_000

#: Round-amount habit (`WalletStyles.rounds`): a wallet sends round amounts when at least this
#: share of its batches' payments are round, and none when at most `STYLE_ROUND_LOW` are; in
#: between it is not known.
STYLE_ROUND_HIGH = 0.1
STYLE_ROUND_LOW = 0.03

#: Batch payments before a *tagged* exchange's round-amount habit counts (and round ones among
#: them before it is taken to send round amounts); a candidate needs `STYLE_MIN_PAYMENTS_SEEN`
#: (and `STYLE_MIN_ROUND_SEEN`).
STYLE_MIN_PAYMENTS = 40
STYLE_MIN_ROUND = 4
STYLE_MIN_PAYMENTS_SEEN = 20
STYLE_MIN_ROUND_SEEN = 3

#: Output order (`WalletStyles.output_order`): a batch is *unsorted* when its outputs' value falls
#: from one output to the next, which a wallet ordering by BIP69 (value, then script) never
#: does, and *sorted* when it never falls and rises at least `STYLE_ORDER_RISES` times (4+
#: distinct values): a wallet that shuffles its outputs or puts its change last leaves such a
#: batch sorted at most once in 24 (once in 720 at 6 distinct values); a batch of fewer
#: distinct values (equal payments, change last) tells nothing. Batches one way before a
#: *tagged* wallet's order is known; a candidate needs `STYLE_MIN_SORTED_SEEN` sorted ones (one
#: could be chance) or one unsorted (certain), with `STYLE_HABIT_RATIO` times as many as the
#: other way.
STYLE_MIN_ORDERED = 3
STYLE_MIN_SORTED_SEEN = 2
STYLE_ORDER_RISES = 3

#: Fee rate (`WalletStyles.fee_rate`): a batch or sweep pays a *whole* rate r when its fee is r
#: times its vsize, or r times up to 1 vB per input more (the size a signer estimated before
#: signing), as a wallet that rounds its rate pays; one paying an estimator's fractional rate
#: lands there about once in vsize / (r x inputs) txs. Txs under `STYLE_MIN_RATE` are not
#: counted either way. Txs one way before a
#: *tagged* wallet's habit is known; a candidate needs `STYLE_MIN_FEE_SEEN` whole ones (one could
#: be chance) or one fractional (which a wallet rounding its rate never pays).
STYLE_MIN_FEE = 3
STYLE_MIN_FEE_SEEN = 2

#: Fee rates below this (sat/vB, rounded down) are not read: the relay floor every wallet falls
#: back to, whole or not.
STYLE_MIN_RATE = 2

#: ... and for both, at least this many times as many one way as the other (a stray tx of another
#: wallet in a group does not flip its habit).
STYLE_HABIT_RATIO = 10

#: Style values: not seen, or more than one value seen.
STYLE_UNSEEN, STYLE_MIXED = -1, -2


@dataclass(frozen=True)
class WalletStyles:
    """Per group (a service entity, or the clusters one name covers): the wallet's habits.

    `hot`: the script type of the coins its batches spend (its hot wallet's type);
    `fingerprint`: its batches' wallet fingerprint (version, locktime set, nSequence class);
    `deposit`: the script type of the deposits its sweeps spend; each STYLE_UNSEEN or
    STYLE_MIXED where not one value. `change_last` / `change_elsewhere`: its batches whose change
    (the one output a later batch spends) is / is not the tx's last output. `coinbase`: it
    received a coinbase output (a mining pool pays batches too; it is not an exchange).
    `change_fresh` / `change_reused`: its batches whose change address is first seen in that
    tx / was paid before (None: not counted, read as none). `batches` / `deposit_reads`: the
    txs the hot type and fingerprint / the deposit type were read from (batches, or the payouts
    `blind_styles` read; sweeps, or the sweeps and deposits `received_deposits` read); None:
    not counted (`style_reads`). `sweep_fresh` / `sweep_reused`: its sweeps whose payee address
    is first seen in that tx / was paid before (None: not counted, read as none)."""

    hot: np.ndarray  # int64 per group
    fingerprint: np.ndarray
    deposit: np.ndarray
    change_last: np.ndarray
    change_elsewhere: np.ndarray
    coinbase: np.ndarray  # bool per group
    change_fresh: np.ndarray | None = None  # int64 per group
    change_reused: np.ndarray | None = None
    payments: np.ndarray | None = None  # int64 per group: its batches' payments (not change)
    round_payments: np.ndarray | None = None  # ... of a round amount (`STYLE_ROUND_SAT`)
    batches: np.ndarray | None = None  # int64 per group: txs its hot type was read from
    deposit_reads: np.ndarray | None = None  # ... and its deposit type
    sorted_batches: np.ndarray | None = None  # int64 per group: batches with values sorted
    unsorted_batches: np.ndarray | None = None  # ... and not
    whole_fees: np.ndarray | None = None  # int64 per group: batches and sweeps at whole sat/vB
    fractional_fees: np.ndarray | None = None  # ... and not (both above 1 sat/vB)
    periods: PeriodStyles | None = None  # the same read per window of blocks (`wallet_styles`)
    sweep_fresh: np.ndarray | None = None  # int64 per group: sweeps into an address first seen
    sweep_reused: np.ndarray | None = None  # ... and into one paid before (`sweep_address`)
    cospend_batches: np.ndarray | None = None  # int64 per group: batches spending a deposit coin
    # int64 per group: the batches `cospends` reads (None: `batches`); a named wallet's are its
    # own and its deposit-spending fragments' (`cases.investigate._lend_by_style`)
    cospend_reads: np.ndarray | None = None

    def rounds(self, min_payments: int, min_round: int) -> np.ndarray:
        """Per group: 1 = sends round amounts (`min_round`+ round payments and at least
        `STYLE_ROUND_HIGH` of them), 0 = does not (`min_payments`+ payments and at most
        `STYLE_ROUND_LOW` round), -1 = not known."""
        n = self.change_last.shape[0]
        out = np.full(n, -1, np.int64)
        if self.payments is None or self.round_payments is None:
            return out
        paid, whole = self.payments, self.round_payments
        out[(paid >= min_payments) & (whole <= STYLE_ROUND_LOW * paid)] = 0
        out[(whole >= min_round) & (whole >= STYLE_ROUND_HIGH * paid)] = 1
        return out

    def change_address(self, min_count: int) -> np.ndarray:
        """Per group: 1 = fresh change addresses, 0 = reused ones, -1 = not known (neither
        `min_count` one way and `STYLE_CHANGE_ADDRESS_RATIO` times as many as the other way,
        or not counted)."""
        return _majority(self.change_fresh, self.change_reused, min_count, min_count,
                         STYLE_CHANGE_ADDRESS_RATIO, self.change_last.shape[0])  # fmt: skip

    def sweep_address(self, min_count: int) -> np.ndarray:
        """Per group: 1 = sweeps into fresh addresses, 0 = into addresses paid before (a reused
        hot address), -1 = not known (as `change_address`, over its sweeps)."""
        return _majority(self.sweep_fresh, self.sweep_reused, min_count, min_count,
                         STYLE_CHANGE_ADDRESS_RATIO, self.change_last.shape[0])  # fmt: skip

    def cospends(self, min_count: int) -> np.ndarray:
        """Per group: 1 = its batches spend deposit coins straight (co-spend its customers'
        deposits with its hot coins: `min_count`+ such batches, `COSPEND_HABIT_SHARE` of its
        batches or more), 0 = they spend hot-wallet coins only (`min_count`+ batches that do
        not and `STYLE_HABIT_RATIO` times as many as those that do), -1 = not known or not
        counted. Asymmetric: a co-spending wallet's batch spends hot coins alone when no
        deposit is waiting (hard_cospend small 1: dunmore's group, 174 of 231)."""
        n = self.change_last.shape[0]
        out = np.full(n, -1, np.int64)
        if self.cospend_batches is None or self.batches is None:
            return out
        read = self.batches if self.cospend_reads is None else self.cospend_reads
        yes, no = self.cospend_batches, read - self.cospend_batches
        out[(no >= min_count) & (no >= STYLE_HABIT_RATIO * yes)] = 0
        out[(yes >= min_count) & (yes >= COSPEND_HABIT_SHARE * read)] = 1
        return out

    def output_order(self, min_sorted: int, min_unsorted: int) -> np.ndarray:
        """Per group: 1 = outputs sorted by value (BIP69), 0 = not, -1 = not known (neither
        `min_sorted` sorted batches nor `min_unsorted` others, with `STYLE_HABIT_RATIO` times
        as many as the other way)."""
        return _majority(self.sorted_batches, self.unsorted_batches, min_sorted, min_unsorted,
                         STYLE_HABIT_RATIO, self.change_last.shape[0])  # fmt: skip

    def fee_rate(self, min_whole: int, min_fractional: int) -> np.ndarray:
        """Per group: 1 = whole sat/vB fee rates, 0 = fractional ones, -1 = not known (as
        `output_order`, over batches and sweeps above 1 sat/vB)."""
        return _majority(self.whole_fees, self.fractional_fees, min_whole, min_fractional,
                         STYLE_HABIT_RATIO, self.change_last.shape[0])  # fmt: skip

    def change_position(self, min_last: int, min_elsewhere: int) -> np.ndarray:
        """Per group: 1 = change last, 0 = change elsewhere, -1 = not known."""
        last, other = self.change_last, self.change_elsewhere
        out = np.full(last.shape[0], -1, np.int64)
        out[(other == 0) & (last >= min_last)] = 1
        out[(other >= min_elsewhere) & (last <= other)] = 0
        return out


#: Window of the per-period habit reads (`wallet_styles`, `PeriodStyles`): calendar half-years
#: by block time. A wallet's software changes over the years: on the real shared blocks
#: Binance's batches sort their outputs (BIP69) and sign v1 with locktime 0 in block 481,829
#: (Aug 2017) and leave them unsorted and sign v2 with the locktime set in 514,485 (Mar 2018),
#: 7 months later; a calendar year would put them apart only by luck of the new year, a year's
#: window of blocks (52,560) puts both in one. Shorter windows split a wallet's batches into
#: fewer per window, and the named thresholds (`STYLE_MIN_ORDERED` ...) are then met in fewer
#: windows: less evidence, fewer names. By time, not height: the simulator spreads its chains
#: over 2018-2019 (`simulate.run.block_times`, 421 blocks at the small scale, 3,101 at large),
#: so its worlds span 4 windows as a real two years would (docs/design/trace.md "Habits per
#: period").
STYLE_PERIOD_MONTHS = 6


@dataclass(frozen=True)
class PeriodStyles:
    """`WalletStyles` per (group, calendar window of `months` months): row group x `n_periods` +
    window, window k being `block_periods` = `first` + k. Dense over the windows the chain
    spans: ~140 B per (group, window) (17 int64 counts and values, a bool), e.g. 10,000 groups
    x 34 half-years of mainnet = 48 MB. Only a group's own batches and sweeps are read per
    window: what `blind_styles` / `received_deposits` fill in carries no window (a group that
    shows nothing itself cannot show a change, and keeps its pooled read)."""

    styles: WalletStyles
    n_periods: int
    months: int
    first: int

    def active(self, groups: np.ndarray) -> np.ndarray:
        """Groups x windows (bool): where the group paid a batch or a sweep."""
        s = self.styles
        rows = groups[:, None] * self.n_periods + np.arange(self.n_periods)[None, :]
        n = np.zeros(rows.shape, np.int64)
        for counts in (s.batches, s.deposit_reads):
            if counts is not None:
                n += np.asarray(counts, np.int64)[rows]
        return n > 0


def _majority(
    yes: np.ndarray | None,
    no: np.ndarray | None,
    min_yes: int,
    min_no: int,
    ratio: int,
    n: int,
) -> np.ndarray:
    """Per group: 1 where `yes` counts `min_yes`+ and `ratio` times `no`, 0 where `no` counts
    `min_no`+ and `ratio` times `yes`, else -1 (also where not counted, None)."""
    out = np.full(n, -1, np.int64)
    if yes is None or no is None:
        return out
    out[(yes >= min_yes) & (yes >= ratio * no)] = 1
    out[(no >= min_no) & (no >= ratio * yes)] = 0
    return out


def _fee_rates(store: Store, shapes: TxShapes, txs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per tx of `txs` (sorted distinct ids, none a coinbase): whether it pays more than 1 sat/vB
    (counted), and whether its fee is a whole multiple of its vsize (whole sat/vB). The fee from
    the graph (inputs' spent values less outputs'), the vsize from `Store.tx_vsizes`: ~50 B per
    tx and input of `txs` while in use."""
    if txs.shape[0] == 0:
        empty = np.zeros(0, np.bool_)
        return empty, empty.copy()
    values = shapes.output_value
    spent = store.graph.input_spent_output

    def total(first: np.ndarray, n_items: int, spends: bool) -> np.ndarray:
        n_txs = first.shape[0]
        lo = np.asarray(first[txs], np.int64)
        hi = np.asarray(first[np.minimum(txs + 1, n_txs - 1)], np.int64)
        hi = np.where(txs + 1 < n_txs, hi, n_items)
        width = hi - lo
        ids = np.repeat(lo - np.concatenate(([0], np.cumsum(width)[:-1])), width)
        ids += np.arange(int(width.sum()), dtype=np.int64)
        if spends:
            ids = np.asarray(spent[ids], np.int64)
        value = np.where(ids >= 0, np.asarray(values[np.maximum(ids, 0)], np.int64), 0)
        per_tx = np.repeat(np.arange(txs.shape[0]), width)
        out = np.zeros(txs.shape[0], np.int64)
        np.add.at(out, per_tx, value)
        return out

    first_in = store.graph.tx_first_input
    fee = total(first_in, spent.shape[0], True)
    fee -= total(shapes.first_output, values.shape[0], False)
    last = txs + 1 >= first_in.shape[0]
    n_in = np.where(
        last, spent.shape[0], np.asarray(first_in[np.where(last, txs, txs + 1)], np.int64)
    )
    n_in -= np.asarray(first_in[txs], np.int64)
    return whole_fee_rates(fee, store.tx_vsizes(txs), n_in)


def whole_fee_rates(
    fee: np.ndarray, vsize: np.ndarray, n_in: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per tx (int64 arrays): whether its rate is read (`STYLE_MIN_RATE`+ sat/vB, rounded
    down), and whether it pays a whole sat/vB rate r: fee = r x the size the wallet paid for,
    which is the tx's vsize or up to 1 vB per input more (a signer that pays for 72-byte
    signatures and signs with 71), or r x its weight / 4 not rounded up to a whole vB, the
    product rounded either way: on real block 866,342 a family of 7 txs pays 4-5 sat/vB so
    (1,012 sat at 809 WU = 5 x 202.25), which the vsize of 203 alone read as fractional. The
    quarter vB are read only up to the vsize: read up to the vsize plus 1 per input, fractional
    wallets read whole 2.2% of the time on the simulated small worlds, not 0.6-1.0%, and
    hard_sw small 1 lost lead recall 0.931 -> 0.911 (its twins told apart by the fee habit).
    `bench.real_habits` reads it on the shared real blocks."""
    fee = np.asarray(fee, np.int64)
    vsize = np.asarray(vsize, np.int64)
    n_in = np.asarray(n_in, np.int64)
    rate = fee // np.maximum(vsize, 1)
    counted = (vsize > 0) & (rate >= STYLE_MIN_RATE)
    r = np.maximum(rate, 1)
    whole = (fee % r == 0) & (fee // r <= vsize + n_in)
    # the weight / 4 itself (4 x vsize - 3 .. 4 x vsize WU), paid at the floor rate or, the
    # size being under the vsize, one more
    lo, hi = 4 * vsize - 3, 4 * vsize
    for paid in (r, rate + 1):
        q = (4 * fee) // paid
        for qq in (q, q + 1):
            whole |= (qq >= lo) & (qq <= hi) & (np.abs(paid * qq - 4 * fee) < 4)
    return counted, counted & whole


def _one_value(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group: the one value its rows carry, STYLE_UNSEEN or STYLE_MIXED."""
    big = np.iinfo(np.int64).max
    lo = np.full(n_groups, big, np.int64)
    hi = np.full(n_groups, -1, np.int64)
    np.minimum.at(lo, group, value)
    np.maximum.at(hi, group, value)
    return np.where(hi < 0, STYLE_UNSEEN, np.where(lo == hi, hi, STYLE_MIXED))


#: The deposit type of a wallet (`WalletStyles.deposit`) is the script type of the deposits its
#: sweeps spend, weighed by swept inputs: one type when it holds at least this many times as
#: many swept inputs as every other type together (else mixed). An exchange sweeps tens of
#: deposits at a time; a customer's send-all of a few coins that a stray merge put in its group
#: (hard medium 6: 5 inputs of another type beside arcadia's sweeps) no longer hides its type.
STYLE_DEPOSIT_RATIO = 10


def _main_value(
    group: np.ndarray, value: np.ndarray, weight: np.ndarray, n_groups: int
) -> np.ndarray:
    """Per group: the value holding at least `STYLE_DEPOSIT_RATIO` times the weight of every
    other value of its rows together, STYLE_UNSEEN without rows, else STYLE_MIXED. `value`:
    small non-negative ints (script types); memory: 8 B per (group, value) pair seen."""
    out = np.full(n_groups, STYLE_UNSEEN, np.int64)
    if group.shape[0] == 0:
        return out
    pairs, inverse = np.unique(np.stack([group, value], axis=1), axis=0, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=weight, minlength=pairs.shape[0])
    per_group = np.bincount(pairs[:, 0], weights=total, minlength=n_groups)
    out[pairs[:, 0]] = STYLE_MIXED
    main = total >= STYLE_DEPOSIT_RATIO * (per_group[pairs[:, 0]] - total)
    out[pairs[main, 0]] = pairs[main, 1]
    return out


@dataclass(frozen=True)
class ClusterGroups:
    """A group id (0..n-1) for a few cluster ids, every other cluster none (-1): the pairs
    sorted by cluster, 16 B per grouped cluster, where an array over every cluster id would be
    8 B per address (12 GB at mainnet)."""

    clusters: np.ndarray  # int64, sorted, distinct
    groups: np.ndarray  # int64, the group of each of `clusters`

    @classmethod
    def of(cls, clusters: np.ndarray, groups: np.ndarray) -> ClusterGroups:
        order = np.argsort(clusters, kind="stable")
        return cls(np.asarray(clusters, np.int64)[order], np.asarray(groups, np.int64)[order])

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1 if self.groups.shape[0] else 0

    def lookup(self, cluster_ids: np.ndarray) -> np.ndarray:
        """The group of each cluster id (int64), -1 where it has none."""
        ids = np.asarray(cluster_ids, np.int64)
        if self.clusters.shape[0] == 0:
            return np.full(ids.shape[0], -1, np.int64)
        pos = np.minimum(np.searchsorted(self.clusters, ids), self.clusters.shape[0] - 1)
        return np.where(self.clusters[pos] == ids, self.groups[pos], -1)


def wallet_styles(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    group: ClusterGroups,
    fingerprint: np.ndarray | None = None,
    period_months: int | None = None,
) -> WalletStyles:
    """The wallet style of each group; `group` gives some cluster ids a group id (0..n-1).
    `fingerprint`: `cluster.learned.read_fingerprints` of every tx (read here when None).
    `period_months` (`STYLE_PERIOD_MONTHS` when None; 0: never): where the chain spans more
    than one calendar window of that many months (by block time), the styles are also read per
    (group, window), `WalletStyles.periods`: `style_compatible` compares a wallet whose
    signing software changed within the windows both sides were active in.

    Read from the batches (`TxShapes.batch`), sweeps (`SWEEP_MIN_INPUTS`+ inputs into one
    payee, whose output is not swept on: `_swept_on`) and coinbase outputs whose spender (or
    payee) cluster has a group. Nothing per tx of the chain: a slice of `TX_SLICE` txs at a
    time (~56 B per output of one slice while in use), 57 B per group and 24 B per
    grouped batch or sweep; per window, `PeriodStyles` and 4 B per block while read."""
    from chainsleuth.cluster.learned import read_fingerprints

    if shapes is not None and fingerprint is None:
        fingerprint = read_fingerprints(store, 0, shapes.n_payees.shape[0], TX_SLICE)
    pooled = _read_styles(store, shapes, cluster_of, group, fingerprint)
    months = STYLE_PERIOD_MONTHS if period_months is None else int(period_months)
    if shapes is None or group.n_groups == 0 or months <= 0:
        return pooled
    window = block_periods(np.asarray(store.graph.block_time), months)
    if window.shape[0] == 0:
        return pooled
    first = int(window.min())
    n_periods = int(window.max()) - first + 1
    if n_periods <= 1:
        return pooled  # one window: the pooled read is the window's
    per = _read_styles(store, shapes, cluster_of, group, fingerprint,
                       (store.graph.tx_height, window - first, n_periods))  # fmt: skip
    periods = PeriodStyles(per, n_periods, months, first)
    return replace(pooled, periods=periods)


def block_periods(block_time: np.ndarray, months: int) -> np.ndarray:
    """Per block (int32): its calendar window of `months` months, counted from January 1970 by
    its block time (UTC): with 6, 2017 H2 is 95 and 2018 H1 is 96."""
    t = np.asarray(block_time, np.int64).astype("datetime64[s]").astype("datetime64[M]")
    return (t.astype(np.int64) // months).astype(np.int32)


@dataclass(frozen=True)
class StyleItems:
    """What `_read_styles` reads of the chain before any grouping: per batch, sweep, batch
    change, fee-rated tx and coinbase output of a keyed spender (or payee), its key (a group id,
    or a cluster's index in `StyleReads.clusters`), its calendar window (0 when not read per
    window) and the values the styles take of it, in tx order. `_styles_of` groups them.
    Memory (int32 keys and windows, 1 B types and fingerprints): per batch 20 B, per sweep
    10 B, per batch change 10 B, per batch or sweep 10 B more for its fee, per coinbase output
    8 B."""

    batch_key: np.ndarray  # int32
    batch_window: np.ndarray  # int32
    batch_type: np.ndarray  # the script type of its first input's coin
    batch_fp: np.ndarray  # its wallet fingerprint (`read_fingerprints` code)
    batch_pay: np.ndarray  # uint32: its payments (payable outputs but the change)
    batch_round: np.ndarray  # uint32: the round ones (`STYLE_ROUND_SAT`)
    batch_ordered: np.ndarray  # bool: values sorted (BIP69-like)
    batch_unsorted: np.ndarray  # bool: a value falls
    batch_cospends: np.ndarray  # bool: it spends a deposit coin (`_deposit_coins_spent`)
    sweep_key: np.ndarray
    sweep_window: np.ndarray
    sweep_type: np.ndarray
    sweep_width: np.ndarray  # its inputs
    sweep_fresh: np.ndarray  # bool: its payee's address is first seen there
    change_key: np.ndarray
    change_window: np.ndarray
    change_last: np.ndarray  # bool: the change is the tx's last output
    change_fresh: np.ndarray  # bool: its address is first seen there
    fee_key: np.ndarray
    fee_window: np.ndarray
    fee_counted: np.ndarray  # bool (`_fee_rates`)
    fee_whole: np.ndarray  # bool (`_fee_rates`)
    coinbase_key: np.ndarray
    coinbase_window: np.ndarray


def _style_items(
    store: Store,
    shapes: TxShapes,
    cluster_of: np.ndarray,
    keys: ClusterGroups,
    fingerprint: np.ndarray,
    period: tuple[np.ndarray, np.ndarray] | None = None,
) -> StyleItems:
    """The `StyleItems` of the spenders (payees of coinbases) that `keys` keys, read once over
    the chain, a slice of `TX_SLICE` txs at a time (~56 B per output of one slice while in
    use); `period`: (tx heights, each block's window from 0), else every window 0."""
    i32 = np.int32
    none = np.zeros(0, i32)
    parts: dict[str, list[np.ndarray]] = {f: [] for f in StyleItems.__dataclass_fields__}
    fee_tx: list[np.ndarray] = [np.zeros(0, np.int64)]
    n_outputs = shapes.spent_by.shape[0]
    seen_max = -1
    n_txs = int(shapes.n_payees.shape[0])
    batch_txs: list[np.ndarray] = [np.zeros(0, np.int64)]
    cospend_txs: list[np.ndarray] = [np.zeros(0, np.int64)]
    cospend_makers: list[np.ndarray] = [np.zeros(0, np.int64)]
    for t0, t1, lo, hi, made in shapes.tx_slices():
        spender = np.asarray(shapes.spender[t0:t1])
        tx_key = np.where(spender >= 0, keys.lookup(np.maximum(spender, 0)), -1).astype(i32)
        tx_period = np.zeros(t1 - t0, i32)
        if period is not None:
            heights, window = period
            tx_period = window[np.asarray(heights[t0:t1], np.int64)].astype(i32)
        first_type = _first_input_type(store, t0, t1)
        batch = shapes.batch[t0:t1] & (tx_key >= 0)
        parts["batch_key"].append(tx_key[batch])
        batch_txs.append(np.flatnonzero(batch) + t0)
        parts["batch_window"].append(tx_period[batch])
        parts["batch_type"].append(first_type[batch])
        parts["batch_fp"].append(np.asarray(fingerprint[t0:t1])[batch])
        sweep = (shapes.n_inputs[t0:t1] >= SWEEP_MIN_INPUTS) & (shapes.n_payees[t0:t1] == 1)
        sweep &= (tx_key >= 0) & ~shapes.coinjoin[t0:t1]
        # a send-all into a deposit that its owner swept on is no sweep of the group's own: a
        # customer's coins a stray merge put in the group would vote their type (hard medium 7)
        sweep &= ~_paid_into_deposit(shapes, t0, t1, lo, hi, made)
        parts["sweep_key"].append(tx_key[sweep])
        parts["sweep_window"].append(tx_period[sweep])
        parts["sweep_type"].append(first_type[sweep])
        parts["sweep_width"].append(np.asarray(shapes.n_inputs[t0:t1])[sweep])
        # a batch's change: its one output a later batch spends (as `service_entities` links).
        # Each tx's outputs lie in one slice, so its count of batch-spent outputs is the slice's.
        spent_by = np.asarray(shapes.spent_by[lo:hi])
        spent = spent_by >= 0
        in_batch = np.zeros(hi - lo, np.bool_)
        in_batch[spent] = shapes.batch[spent_by[spent]]
        local = made - t0
        per_tx = np.bincount(local[in_batch], minlength=t1 - t0)
        spend, maker = _deposit_coins_spent(shapes, spent_by, in_batch, made)
        cospend_txs.append(spend)
        cospend_makers.append(maker)
        change = in_batch & (per_tx[local] == 1) & batch[local]
        outputs = np.flatnonzero(change)
        ends = np.append(np.asarray(shapes.first_output[t0 + 1 : t1 + 1]), n_outputs)[: t1 - t0]
        parts["change_key"].append(tx_key[local[outputs]])
        parts["change_window"].append(tx_period[local[outputs]])
        parts["change_last"].append(outputs + lo == ends[local[outputs]] - 1)
        # and whether its address is first seen there: address ids are given in order of first
        # appearance (docs/design/clustering.md), so an output's address is fresh when its id
        # is above every id paid before it (a running maximum carried from slice to slice)
        paid = np.asarray(shapes.output_address[lo:hi]).astype(np.int64)
        paid[paid == int(NONE32)] = -1
        before = np.maximum.accumulate(np.concatenate(([seen_max], paid)))
        seen_max = int(before[-1])
        parts["change_fresh"].append(paid[outputs] > before[outputs])
        # and each sweep's payee: into a fresh address, or one paid before (a reused hot
        # address); a sweep pays one payable output (`n_payees` 1), in tx order as `sweep_key`
        into = np.flatnonzero(np.asarray(shapes.payable[lo:hi]) & sweep[local])
        fresh_into = np.ones(t1 - t0, np.bool_)
        fresh_into[local[into]] = paid[into] > before[into]
        parts["sweep_fresh"].append(fresh_into[sweep])
        # its batches' payments (every payable output but the change), and the round ones
        pay = np.asarray(shapes.payable[lo:hi]) & batch[local] & ~change
        whole = np.asarray(shapes.output_value[lo:hi])[pay] % STYLE_ROUND_SAT == 0
        at = np.flatnonzero(batch)
        parts["batch_pay"].append(np.bincount(local[pay], minlength=t1 - t0)[at].astype(np.uint32))
        parts["batch_round"].append(
            np.bincount(local[pay][whole], minlength=t1 - t0)[at].astype(np.uint32)
        )
        # output order: its batches whose outputs' values are sorted (BIP69), and the others
        value = np.asarray(shapes.output_value[lo:hi])
        same_tx = local[:-1] == local[1:]
        falls = np.bincount(local[:-1][same_tx & (value[:-1] > value[1:])], minlength=t1 - t0)
        rises = np.bincount(local[:-1][same_tx & (value[:-1] < value[1:])], minlength=t1 - t0)
        parts["batch_ordered"].append(((falls == 0) & (rises >= STYLE_ORDER_RISES))[at])
        parts["batch_unsorted"].append((falls > 0)[at])
        # fee rate: its batches and sweeps, read after the pass
        paying = np.flatnonzero(batch | sweep)
        fee_tx.append(paying + t0)
        parts["fee_key"].append(tx_key[paying])
        parts["fee_window"].append(tx_period[paying])
        coinbase_out = shapes.payable[lo:hi] & (spender[local] < 0)
        addresses = np.asarray(shapes.output_address[lo:hi])[coinbase_out].astype(np.int64)
        paid_key = keys.lookup(np.asarray(cluster_of[addresses])).astype(i32)
        took = paid_key >= 0
        parts["coinbase_key"].append(paid_key[took])
        parts["coinbase_window"].append(tx_period[local[coinbase_out]][took])
    counted, whole_fee = _fee_rates(store, shapes, np.concatenate(fee_tx))
    parts["batch_cospends"] = [
        np.isin(
            np.concatenate(batch_txs),
            _cospending(np.concatenate(cospend_txs), np.concatenate(cospend_makers), n_txs),
        )
    ]
    parts["fee_counted"] = [counted]
    parts["fee_whole"] = [whole_fee]
    return StyleItems(**{f: np.concatenate(v) if v else none for f, v in parts.items()})


#: A batch co-spends deposits (`WalletStyles.cospends`) when it spends the coins of at least this
#: many deposit payments (`_deposit_coins_spent`). One is not enough: a wallet that keeps its
#: reserve in cold storage refills its hot wallet by a payment with change (hard_cospend small
#: 1: arcadia's 150 cold moves pay 2 outputs, as a customer's deposit does, and 29 of its 159
#: batches spend one and nothing else), while a wallet that co-spends takes in several deposits
#: per batch (cobalt: 154 of its 157 batches spend 2-14).
COSPEND_MIN_DEPOSITS = 2

#: ... and a wallet co-spends when at least this share of its batches do (`WalletStyles.cospends`).
COSPEND_HABIT_SHARE = 0.5


def _cospending(spend: np.ndarray, maker: np.ndarray, n_txs: int) -> np.ndarray:
    """Batches (sorted tx ids) of `spend` that spend coins of `COSPEND_MIN_DEPOSITS`+ distinct
    txs of `maker` (per deposit coin spent, its batch and the tx that paid it)."""
    pairs = np.unique(spend * n_txs + maker)
    batches, n = np.unique(pairs // max(n_txs, 1), return_counts=True)
    out: np.ndarray = batches[n >= COSPEND_MIN_DEPOSITS]
    return out


def _deposit_coins_spent(
    shapes: TxShapes, spent_by: np.ndarray, in_batch: np.ndarray, made: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per deposit coin among one slice's outputs (`spent_by`, `in_batch`: spent by a batch,
    `made`: each one's tx) that a batch spends: the batch and the tx that paid the coin (tx
    ids, int64). A deposit coin is one paid by another spender's payment of two payees or more
    (a payment and its change), neither a batch, a CoinJoin nor a coinbase. A wallet's own hot coins come from its sweeps, forwards
    (send-alls) and its batches' change; a customer's payment spent straight in a batch is the
    wallet co-spending its deposits (`WalletStyles.cospends`)."""
    at = np.flatnonzero(in_batch)
    if at.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    maker = made[at]
    spend = spent_by[at].astype(np.int64)
    payer = np.asarray(shapes.spender[maker], np.int64)
    deposit = (payer >= 0) & ~np.asarray(shapes.batch[maker], np.bool_)
    # a send-all (one payee: a sweep, or a deposit forwarded to the hot wallet alone, as the
    # simulated exchanges that do not co-spend forward theirs) moves the wallet's own coins;
    # a customer's payment pays its change too
    deposit &= (np.asarray(shapes.n_payees[maker]) >= 2) & ~np.asarray(shapes.coinjoin[maker])
    deposit &= payer != np.asarray(shapes.spender[spend], np.int64)
    return spend[deposit], maker[deposit]


def _styles_of(
    items: StyleItems, key_group: np.ndarray, n_base: int, n_periods: int, per_window: bool
) -> WalletStyles:
    """The `WalletStyles` of `items` with each key's group `key_group[key]` (-1: none), of
    `n_base` groups; `per_window`: keyed group x `n_periods` + window."""
    n_groups = n_base * n_periods

    def grouped(key: np.ndarray, window: np.ndarray) -> np.ndarray:
        g = key_group[np.asarray(key, np.int64)] if key.shape[0] else np.zeros(0, np.int64)
        if per_window:
            g = np.where(g >= 0, g * n_periods + np.asarray(window, np.int64), -1)
        return np.asarray(g, np.int64)

    def count(g: np.ndarray) -> np.ndarray:
        return np.bincount(g, minlength=n_groups).astype(np.int64)

    def total(g: np.ndarray, n: np.ndarray) -> np.ndarray:
        # integer weights below 2^53: float64 sums are exact
        return np.rint(np.bincount(g, weights=n, minlength=n_groups)).astype(np.int64)

    gb = grouped(items.batch_key, items.batch_window)
    b = gb >= 0
    g_batch = gb[b]
    hot = _one_value(g_batch, items.batch_type[b].astype(np.int64), n_groups)
    fp = _one_value(g_batch, items.batch_fp[b].astype(np.int64), n_groups)
    gs = grouped(items.sweep_key, items.sweep_window)
    s = gs >= 0
    deposit = _main_value(
        gs[s], items.sweep_type[s].astype(np.int64), items.sweep_width[s].astype(np.int64),
        n_groups,
    )  # fmt: skip
    gc = grouped(items.change_key, items.change_window)
    c = gc >= 0
    last, fresh = items.change_last[c], items.change_fresh[c]
    g_change = gc[c]
    gf = grouped(items.fee_key, items.fee_window)
    f = gf >= 0
    g_fee = gf[f]
    counted, whole = items.fee_counted[f], items.fee_whole[f]
    sweep_fresh = items.sweep_fresh[s]
    coinbase = np.zeros(n_groups, np.bool_)
    gcb = grouped(items.coinbase_key, items.coinbase_window)
    coinbase[gcb[gcb >= 0]] = True
    return WalletStyles(
        hot, fp, deposit, count(g_change[last]), count(g_change[~last]), coinbase,
        count(g_change[fresh]), count(g_change[~fresh]),
        total(g_batch, items.batch_pay[b].astype(np.float64)),
        total(g_batch, items.batch_round[b].astype(np.float64)),
        count(g_batch), count(gs[s]), count(g_batch[items.batch_ordered[b]]),
        count(g_batch[items.batch_unsorted[b]]), count(g_fee[whole]),
        count(g_fee[counted & ~whole]), sweep_fresh=count(gs[s][sweep_fresh]),
        sweep_reused=count(gs[s][~sweep_fresh]),
        cospend_batches=count(g_batch[items.batch_cospends[b]]),
    )  # fmt: skip


def _read_styles(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    group: ClusterGroups,
    fingerprint: np.ndarray | None,
    period: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> WalletStyles:
    """`wallet_styles` read once over the chain: per group, or with `period` (tx heights, each
    block's window from 0, windows) per (group, window), keyed group x windows + window."""
    from chainsleuth.cluster.learned import read_fingerprints

    n_periods = 1 if period is None else period[2]
    n_groups = group.n_groups * n_periods
    empty = np.zeros(n_groups, np.int64)
    if shapes is None or n_groups == 0:
        unseen = np.full(n_groups, STYLE_UNSEEN, np.int64)
        return WalletStyles(unseen, unseen.copy(), unseen.copy(), empty, empty.copy(),
                            np.zeros(n_groups, np.bool_), empty.copy(), empty.copy())  # fmt: skip
    if fingerprint is None:
        fingerprint = read_fingerprints(store, 0, shapes.n_payees.shape[0], TX_SLICE)
    items = _style_items(
        store, shapes, cluster_of, group, fingerprint, None if period is None else period[:2]
    )
    same = np.arange(group.n_groups, dtype=np.int64)
    return _styles_of(items, same, group.n_groups, n_periods, period is not None)


class StyleReads:
    """`wallet_styles` for one case's many groupings of the same clusters, read once.

    The style rounds (`cases.investigate._lend_by_style`) read the styles of the attributed
    clusters once per round, each grouped by the names lent by then, and rule 6b's rows read
    them once more on the final names: each read a pass over the chain (two where the chain
    spans several windows). Nothing a pass reads depends on the grouping but which spender it
    keys, so the pass is made once over every cluster of `clusters` (`StyleItems`, keyed by its
    index there, with its window) and each grouping re-aggregates the items. Memory:
    `StyleItems`' bytes per batch, sweep, change and coinbase output of those clusters, while
    the case is prepared; 8 B per cluster of `clusters`."""

    def __init__(
        self,
        store: Store,
        shapes: TxShapes,
        cluster_of: np.ndarray,
        clusters: np.ndarray,
        fingerprint: np.ndarray,
        period_months: int | None = None,
    ) -> None:
        self.clusters = np.unique(np.asarray(clusters, np.int64))
        self.months = STYLE_PERIOD_MONTHS if period_months is None else int(period_months)
        self.n_periods, self.first = 1, 0
        period = None
        if self.months > 0:
            window = block_periods(np.asarray(store.graph.block_time), self.months)
            if window.shape[0]:
                self.first = int(window.min())
                self.n_periods = int(window.max()) - self.first + 1
            if self.n_periods > 1:
                period = (store.graph.tx_height, window - self.first)
        keys = ClusterGroups(self.clusters, np.arange(self.clusters.shape[0], dtype=np.int64))
        self.items = _style_items(store, shapes, cluster_of, keys, fingerprint, period)

    def covers(self, group: ClusterGroups, period_months: int | None = None) -> bool:
        """Whether `styles` can read `group` (its clusters all read here, the same window)."""
        months = STYLE_PERIOD_MONTHS if period_months is None else int(period_months)
        return months == self.months and bool(np.isin(group.clusters, self.clusters).all())

    def styles(self, group: ClusterGroups) -> WalletStyles:
        """`wallet_styles(store, shapes, cluster_of, group, fingerprint, months)`, the same,
        for a `group` that `covers` allows."""
        n_base = group.n_groups
        if n_base == 0:
            empty = np.zeros(0, np.int64)
            unseen = np.full(0, STYLE_UNSEEN, np.int64)
            return WalletStyles(unseen, unseen.copy(), unseen.copy(), empty, empty.copy(),
                                np.zeros(0, np.bool_), empty.copy(), empty.copy())  # fmt: skip
        key_group = group.lookup(self.clusters)
        pooled = _styles_of(self.items, key_group, n_base, 1, False)
        if self.n_periods <= 1:
            return pooled
        per = _styles_of(self.items, key_group, n_base, self.n_periods, True)
        return replace(pooled, periods=PeriodStyles(per, self.n_periods, self.months, self.first))


def blind_styles(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    styles: WalletStyles,
    group: ClusterGroups,
    named: np.ndarray,
    fingerprint: np.ndarray,
) -> WalletStyles:
    """`styles` with the hot type and fingerprint of each blind named group read from the small
    payouts that spend its coins.

    A named group is blind when its batches (`BATCH_MIN_PAYEES`+ payees whose first input it
    owns) show neither its hot wallet's script type nor its fingerprint: its tags fell on cold
    storage, deposits, or hot addresses that paid only a few people at once or sat beside
    another input. Such a group stays compatible with every candidate, and `style_matches` names
    none that it cannot be told from. A payout of `SMALL_BATCH_PAYEES`+ payees that spends one
    of a named group's coins (any input, not only the first) is that wallet's own spend of its
    hot coins: a swept or forwarded deposit pays one or two outputs. So are the payouts the
    cluster stage flagged as CoinJoins: an exchange does not join CoinJoins, and on the
    simulated medium worlds every tx flagged `equal_output` was an exchange's batch. The script
    type of the coins the group spends there and the tx's fingerprint are taken, where one value
    of each is seen, for blind named groups only (`named`); candidates keep what their batches
    show. Memory: nothing per tx of the chain; ~40 B per input of the payouts of one slice of
    `TX_SLICE` txs while in use."""
    if shapes is None or named.shape[0] == 0:
        return styles
    n_groups = styles.hot.shape[0]
    blind = np.zeros(n_groups, np.bool_)
    blind[named] = (styles.hot[named] == STYLE_UNSEEN) & (styles.fingerprint[named] == STYLE_UNSEEN)
    if not blind.any():
        return styles
    first_input = store.graph.tx_first_input
    input_address = store.graph.input_address
    spent_output = store.graph.input_spent_output
    output_type = store.graph.output_script_type
    n_txs, n_inputs = first_input.shape[0], input_address.shape[0]
    n_outputs = shapes.output_address.shape[0]
    groups, types, prints, read_txs = (
        [np.zeros(0, np.int64)],
        [np.zeros(0, np.int64)],
        [np.zeros(0, np.int64)],
        [np.zeros(0, np.int64)],
    )
    # a slice of `TX_SLICE` txs at a time: nothing per tx of the chain is held here
    for t0 in range(0, n_txs, TX_SLICE):
        t1 = min(n_txs, t0 + TX_SLICE)
        payout = shapes.small_batch[t0:t1] | (
            shapes.coinjoin[t0:t1] & (shapes.n_payees[t0:t1] >= SMALL_BATCH_PAYEES)
        )
        txs = np.flatnonzero(payout) + t0
        starts = np.asarray(first_input[txs], np.int64)
        after = txs + 1
        ends = np.full(txs.shape[0], n_inputs, np.int64)
        inner = after < n_txs
        ends[inner] = np.asarray(first_input[after[inner]], np.int64)
        widths = ends - starts
        tx_of = np.repeat(txs, widths)
        offset = np.arange(tx_of.shape[0]) - np.repeat(np.cumsum(widths) - widths, widths)
        inputs = np.repeat(starts, widths) + offset
        addr = np.asarray(input_address[inputs]).astype(np.int64)
        known = addr != int(NONE32)
        g = np.full(inputs.shape[0], -1, np.int64)
        g[known] = group.lookup(np.asarray(cluster_of[addr[known]], np.int64))
        mine = g >= 0
        mine[mine] = blind[g[mine]]
        if mine.any():
            groups.append(g[mine])
            spent = np.maximum(np.asarray(spent_output[inputs[mine]], np.int64), 0)
            types.append(np.asarray(output_type[spent]).astype(np.int64))
            prints.append(np.asarray(fingerprint[tx_of[mine]]).astype(np.int64))
            read_txs.append(tx_of[mine].astype(np.int64))
        # the next spend of what a blind group's sweep made: its one output is the wallet's
        # own coin (hot, or cold storage whose type then mixes with the hot one's and yields
        # nothing)
        spender = np.asarray(shapes.spender[t0:t1])
        sweeper = np.where(spender >= 0, group.lookup(np.maximum(spender, 0)), -1)
        sweep = (shapes.n_inputs[t0:t1] >= SWEEP_MIN_INPUTS) & (shapes.n_payees[t0:t1] == 1)
        sweep &= ~shapes.coinjoin[t0:t1] & (sweeper >= 0)
        sweep[sweep] = blind[sweeper[sweep]]
        sweeps = np.flatnonzero(sweep) + t0
        if sweeps.shape[0] == 0:
            continue
        o0 = np.asarray(shapes.first_output[sweeps], np.int64)
        o1 = np.full(sweeps.shape[0], n_outputs, np.int64)
        inner = sweeps + 1 < n_txs
        o1[inner] = np.asarray(shapes.first_output[sweeps[inner] + 1], np.int64)
        widths = o1 - o0
        outs = (
            np.repeat(o0, widths)
            + np.arange(widths.sum())
            - np.repeat(np.cumsum(widths) - widths, widths)
        )
        by = np.repeat(sweeps, widths)
        spender_tx = np.asarray(shapes.spent_by[outs]).astype(np.int64)
        keep = np.asarray(shapes.payable[outs]) & (spender_tx >= 0)
        groups.append(sweeper[by[keep] - t0])
        types.append(np.asarray(output_type[outs[keep]]).astype(np.int64))
        prints.append(np.asarray(fingerprint[spender_tx[keep]]).astype(np.int64))
        read_txs.append(spender_tx[keep])
    g_all = np.concatenate(groups)
    if g_all.shape[0] == 0:
        return styles
    hot = _one_value(g_all, np.concatenate(types), n_groups)
    fp = _one_value(g_all, np.concatenate(prints), n_groups)
    take = blind & (hot >= 0) & (fp >= 0)
    return replace(
        styles,
        hot=np.where(take, hot, styles.hot),
        fingerprint=np.where(take, fp, styles.fingerprint),
        batches=_taken_reads(styles.batches, take, g_all, np.concatenate(read_txs)),
    )


def _taken_reads(
    before: np.ndarray | None, take: np.ndarray, group: np.ndarray, tx: np.ndarray
) -> np.ndarray | None:
    """`before` (txs read per group) with the groups of `take` counting the distinct txs of
    their rows (`group`, `tx`: one row per input or output read) instead."""
    if before is None:
        return None
    pairs = np.unique(np.stack([group, tx], axis=1), axis=0)
    return np.where(take, np.bincount(pairs[:, 0], minlength=take.shape[0]), before)


def _forwarded_deposit(
    store: Store, shapes: TxShapes, hot: np.ndarray, outputs: np.ndarray
) -> np.ndarray:
    """Per output of `outputs` (int64 ids; `hot`: the hot type of the group it pays, or
    STYLE_UNSEEN): not of the hot type, spent, and its spender pays no output of its type.

    A wallet's own sweep pays its hot wallet (the hot type), or its cold one, whose coins go out
    in refills that return their change to cold storage: a coin of the cold type again. A
    deposit of another type than the hot wallet's that its exchange forwards pays a customer's
    withdrawal and returns the rest to the hot wallet. Where the withdrawal's address happens
    to be of the deposit's type the coin reads as the wallet's own sweep, as before. ~30 B per
    output of the spenders asked while in use (`received_deposits` asks only the sweep-shaped
    payments into a group, a few per slice)."""
    output_type = store.graph.output_script_type
    first_output = shapes.first_output
    n_txs, n_outputs = shapes.n_payees.shape[0], shapes.output_address.shape[0]
    own = np.asarray(output_type[outputs]).astype(np.int64)
    by = np.asarray(shapes.spent_by[outputs]).astype(np.int64)
    out = (hot >= 0) & (own != hot) & (by >= 0)
    if not out.any():
        return out
    rows = np.flatnonzero(out)
    s = by[rows]
    o0 = np.asarray(first_output[s]).astype(np.int64)
    nxt = np.minimum(s + 1, n_txs - 1)
    o1 = np.where(s + 1 < n_txs, np.asarray(first_output[nxt]).astype(np.int64), n_outputs)
    width = o1 - o0
    row = np.repeat(np.arange(rows.shape[0]), width)
    start = np.repeat(np.cumsum(width) - width, width)
    paid = np.repeat(o0, width) + (np.arange(row.shape[0]) - start)
    again = np.asarray(output_type[paid]).astype(np.int64) == own[rows][row]
    out[rows[np.bincount(row[again], minlength=rows.shape[0]) > 0]] = False
    return out


def received_deposits(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    styles: WalletStyles,
    group: ClusterGroups,
    groups_asked: np.ndarray,
) -> WalletStyles:
    """`styles` with the deposit type of each of `groups_asked` that shows none read from the
    sweeps that pay it and the deposits it received from others and spent.

    A tagged wallet whose tags fell on a forwarded deposit, a forward's change and a few hot
    addresses sweeps nothing in its group (hard medium 4's dunmore), and so does an untagged
    fragment of a hot wallet whose batches spend what a sweep paid it (the sweep's deposit
    cluster is then outside its entity): their deposit type is unseen, so a tagged one can
    neither be told from a wallet of another deposit type nor lend its name to one of its own,
    and a fragment cannot be told from a tagged wallet of another deposit type. Two kinds of
    coins the group received show it. A sweep (`SWEEP_MIN_INPUTS`+ inputs into one payee) by
    a cluster outside the group that pays the group is its own sweep of deposits into its wallet
    (a customer's send-all into one of its deposits is swept on, `_swept_on`, and counts as
    a deposit below): the sweep's first input type counts, one vote per swept input. And a
    deposit address is paid by someone else (a customer, another exchange's withdrawal) and
    spent by its exchange in a sweep or a forward, while a hot coin is paid by the wallet's
    own txs (sweeps, change, refills) and spent in payouts: an
    output paying the group, made by a tx of a spender outside the group that is neither shaped
    like a sweep nor a payout (`TxShapes.small_batch`: a payout's change is the wallet's own
    hot coin), and spent by a tx of the group that is no payout, counts its script type, one
    vote per output. One type must hold `STYLE_DEPOSIT_RATIO` times the votes of every other
    (`_main_value`). A group whose own sweeps show its deposit type keeps it. Memory: nothing
    per tx of the chain; ~40 B per output of one slice of `TX_SLICE` txs while in use, 1 B per
    group."""
    if shapes is None or groups_asked.shape[0] == 0:
        return styles
    n_groups = styles.deposit.shape[0]
    unseen = np.zeros(n_groups, np.bool_)
    unseen[groups_asked] = styles.deposit[groups_asked] == STYLE_UNSEEN
    if not unseen.any():
        return styles
    output_type = store.graph.output_script_type
    spender = np.asarray(shapes.spender)
    spent_output = store.graph.input_spent_output
    first_input = store.graph.tx_first_input
    none = np.zeros(0, np.int64)
    groups, types, weights, read_txs = [none], [none], [none], [none]
    for _t0, _t1, lo, hi, made in shapes.tx_slices():
        addr = np.asarray(shapes.output_address[lo:hi]).astype(np.int64)
        pay = np.asarray(shapes.payable[lo:hi]).copy()
        g = np.full(hi - lo, -1, np.int64)
        g[pay] = group.lookup(np.asarray(cluster_of[addr[pay]], np.int64))
        pay &= g >= 0
        pay[pay] = unseen[g[pay]]
        if not pay.any():
            continue
        idx = np.flatnonzero(pay)
        m_tx = made[idx]
        m_group = np.where(spender[m_tx] >= 0, group.lookup(np.maximum(spender[m_tx], 0)), -1)
        outside = (m_group != g[idx]) & (spender[m_tx] >= 0) & ~shapes.coinjoin[m_tx]
        # a sweep into a coin the group sweeps on is a send-all into its deposit: the coin
        # votes its own type below, as a deposit paid by someone else, not the payer's coins'
        onward = _swept_on(shapes, lo, hi)[idx]
        # and so is one into a coin not of the group's hot type that its spender pays no coin of
        # that type again: a send-all into a deposit its owner forwarded (one deposit paying a
        # withdrawal, the rest back to the hot wallet), not swept on. A wallet's own sweep pays
        # its hot wallet, or its cold one, whose spends (refills) return their change to it
        # (docs/accuracy-log.md "Send-alls into a forwarded deposit")
        shaped = _sweep_shaped(shapes, m_tx)
        asked_hot = np.where(shaped, styles.hot[g[idx]], STYLE_UNSEEN)  # sweep-shaped ones only
        onward |= _forwarded_deposit(store, shapes, asked_hot, idx + lo)
        swept = shaped & ~onward
        # a sweep from a deposit cluster outside the group into its wallet: the deposits' type,
        # one vote per swept input
        into = outside & swept
        groups.append(g[idx[into]])
        firsts = np.asarray(first_input[m_tx[into]], np.int64)
        spent = np.maximum(np.asarray(spent_output[firsts], np.int64), 0)
        types.append(np.asarray(output_type[spent]).astype(np.int64))
        weights.append(np.asarray(shapes.n_inputs[m_tx[into]]).astype(np.int64))
        read_txs.append(m_tx[into].astype(np.int64))
        # a deposit: paid by someone else's tx that is neither a sweep nor a payout (a payout's
        # change spent by the group is its own hot coin), spent by the group in no payout
        by = np.asarray(shapes.spent_by[lo:hi]).astype(np.int64)[idx]
        paid = outside & ~swept & ~shapes.small_batch[m_tx] & (by >= 0)
        s_tx = np.maximum(by, 0)
        s_group = np.where(spender[s_tx] >= 0, group.lookup(np.maximum(spender[s_tx], 0)), -1)
        paid &= (s_group == g[idx]) & ~shapes.small_batch[s_tx] & ~shapes.coinjoin[s_tx]
        groups.append(g[idx[paid]])
        types.append(np.asarray(output_type[idx[paid] + lo]).astype(np.int64))
        weights.append(np.ones(int(paid.sum()), np.int64))
        read_txs.append(m_tx[paid].astype(np.int64))
    g_all = np.concatenate(groups)
    if g_all.shape[0] == 0:
        return styles
    deposit = _main_value(g_all, np.concatenate(types), np.concatenate(weights), n_groups)
    take = unseen & (deposit >= 0)
    return replace(
        styles,
        deposit=np.where(take, deposit, styles.deposit),
        deposit_reads=_taken_reads(styles.deposit_reads, take, g_all, np.concatenate(read_txs)),
    )


def style_matches(styles: WalletStyles, named: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For each candidate group, the named group whose wallet style it alone matches, else -1.

    `named`: groups that carry a name (one group per name); `candidate`: untagged service
    groups. Four habits are compared where both sides show them: the hot wallet's script type,
    the batches' fingerprint, the change position (known for a named group after
    `STYLE_MIN_LAST` batches with change last and none elsewhere, or `STYLE_MIN_SHUFFLED`
    elsewhere and no more last than elsewhere; for a candidate one batch with change elsewhere
    is enough) and the script type of swept deposits. A fifth habit only rules out: whether the
    batches' change goes to fresh or to reused addresses (known for a named group after
    `STYLE_MIN_CHANGE_ADDRESS` batches one way and `STYLE_CHANGE_ADDRESS_RATIO` times as many
    as the other way, for a candidate after one); it is no evidence of its own. A named group
    that contradicts none is compatible (one whose habits are not seen is compatible with
    everything, so a tag that shows nothing of its wallet blocks every match). A candidate
    matches when exactly one named group is compatible, both show the hot type and
    fingerprint and at least one of change position or deposit type, and it received no
    coinbase (a pool pays batches too)."""
    out = np.full(candidate.shape[0], -1, np.int64)
    if named.shape[0] == 0 or candidate.shape[0] == 0:
        return out
    compatible, evidence = style_compatible(styles, named, candidate)
    one = (compatible.sum(axis=1) == 1) & ~styles.coinbase[candidate]
    pick = np.argmax(compatible, axis=1)
    one &= evidence[np.arange(candidate.shape[0]), pick]
    if VETO_SWEEP_ADDRESS:
        one &= ~_sweep_contradicts(styles, candidate, named[pick])
    if VETO_COSPEND:
        one &= ~_cospend_contradicts(styles, candidate, named[pick])
    out[one] = named[pick[one]]
    return out


def _sweep_contradicts(
    styles: WalletStyles, candidate: np.ndarray, named: np.ndarray
) -> np.ndarray:
    """Per candidate (bool): its sweeps (one is enough) pay the other kind of address than its
    named group's (at the change-address thresholds): fresh against reused hot addresses."""
    return known_and_different(
        styles.sweep_address(1)[candidate], styles.sweep_address(STYLE_MIN_CHANGE_ADDRESS)[named]
    )


def _cospend_contradicts(
    styles: WalletStyles, candidate: np.ndarray, named: np.ndarray
) -> np.ndarray:
    """Per candidate (bool): its batches co-spend deposit coins and its named group's spend
    hot coins only, or the other way round (`WalletStyles.cospends`, `COSPEND_MIN_BATCHES`
    batches one way and `STYLE_HABIT_RATIO` times as many as the other, on both sides)."""
    return known_and_different(
        styles.cospends(COSPEND_MIN_CANDIDATE)[candidate],
        styles.cospends(COSPEND_MIN_BATCHES)[named],
    )


def known_and_different(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per row (bool): both sides know the habit (>= 0; -1 = not known, as `WalletStyles`
    reads it) and read it differently. A habit one side does not show contradicts nothing."""
    out: np.ndarray = (mine >= 0) & (theirs >= 0) & (mine != theirs)
    return out


def style_orphan_vetoes(
    styles: WalletStyles,
    named: np.ndarray,
    candidate: np.ndarray,
    match: np.ndarray,
    min_orphans: int,
) -> np.ndarray:
    """Candidates (bool): style matches (`style_matches`' `match` >= 0) to leave unnamed because
    an unnamed wallet could be theirs as well (docs/design/trace.md "Orphan groups").

    An orphan is a candidate group that received no coinbase, shows the habits a match needs as
    evidence (hot type, fingerprint, and change position or deposit type) and whose habits rule
    out every named group both as a candidate's are read (`style_compatible`) and as a tag's
    are (the named thresholds, pooled): a service wallet the tags miss. A matched candidate is
    vetoed when at least `min_orphans` orphans are look-alikes of its match (the same hot type
    and fingerprint, pooled, both shown) and no habit of it contradicts theirs (read as named
    groups, with the evidence a match needs): a fragment of an untagged exchange that does not
    show the habit its other fragments differ in would otherwise take the one tagged
    look-alike's name. Two orphans, not one, so a single stray cluster vetoes nothing. `named`
    sorted (as `np.flatnonzero` gives it). Candidates × orphans bools: a few hundred by a few
    hundred."""
    out = np.zeros(candidate.shape[0], np.bool_)
    matched = match >= 0
    if not matched.any():
        return out
    compatible, _evidence = style_compatible(styles, named, candidate)
    # the evidence a candidate shows of itself: its habits against a group that shows them all
    habits = style_habits(styles, candidate, seen=True)
    shows = (habits[0] >= 0) & (habits[1] >= 0) & ((habits[2] >= 0) | (habits[3] >= 0))
    # and read as a tag is (its counted habits over the named thresholds, pooled over the
    # chain): a habit one stray batch shows does not make a tagged wallet's own fragment one
    strict, _shown = _alike(style_habits(styles, candidate), style_habits(styles, named))
    # a named wallet that puts its change elsewhere yet has put it last in a batch shuffles its
    # outputs and its change lands last by chance: a fragment whose batches all put it last
    # rules it out only where the wallet put its change elsewhere in at least as many batches
    # as the fragment put it last (hard_cospend
    # medium 1: the tagged borealis read "elsewhere" from 1 batch last and 2 elsewhere, and three
    # of its own fragments, 3-4 batches all last, were orphans that vetoed 120 of its right
    # names; an untagged exchange's fragments, change last in 3-40 batches, stay orphans against
    # a tagged wallet with 28-52 elsewhere; docs/design/trace.md "Orphan groups")
    position = styles.change_position(STYLE_MIN_LAST, STYLE_MIN_SHUFFLED)
    shuffled = (position[named] == 0) & (styles.change_last[named] > 0)
    surer = styles.change_last[candidate][:, None] > styles.change_elsewhere[named][None, :]
    weak = shuffled[None, :] & surer
    if weak.any():
        blank = np.zeros(styles.change_last.shape[0], np.bool_)
        blank[named[shuffled]] = True
        loose = replace(
            styles,
            change_last=np.where(blank, 0, styles.change_last),
            change_elsewhere=np.where(blank, 0, styles.change_elsewhere),
        )
        compatible |= weak & style_compatible(loose, named, candidate)[0]
        strict |= weak & _alike(style_habits(styles, candidate), style_habits(loose, named))[0]
    orphan = ~(compatible | strict).any(axis=1) & shows & ~styles.coinbase[candidate]
    if int(orphan.sum()) < min_orphans:
        return out
    fits, evidence = style_compatible(styles, candidate[orphan], candidate[matched])
    fits &= evidence
    # a look-alike of the match: the same hot type and fingerprint as the named wallet, read
    # pooled over the chain on both sides (a wallet whose signing software changed reads
    # mixed, and its new software's fragments, orphans by its old habits, veto nothing)
    mine = style_habits(styles, candidate[orphan])
    theirs = style_habits(styles, named[np.searchsorted(named, match[matched])])
    for h in (0, 1):
        fits &= (theirs[h][:, None] >= 0) & (theirs[h][:, None] == mine[h][None, :])
    out[np.flatnonzero(matched)[fits.sum(axis=1) >= min_orphans]] = True
    return out


#: The habits `style_rival_vetoes` compares matched groups on: those read pooled over the chain,
#: and only by groups that read the same software (`PERIOD_HABITS` alike, the fingerprint shown
#: by both). `PERIOD_HABITS` change with a wallet's software, and its fragments of two periods
#: differ in them (hard_swswitch small 1's tagged recall fell 0.89-0.94 -> 0.51-0.75 when they
#: were compared). Not the change position either: a wallet that sorts its outputs (BIP69) or
#: shuffles them puts the change last in some batches and elsewhere in others, and its own
#: fragments read both (hard_swswitch small 2: 6 last / 0 elsewhere against 2 / 2, both sorted;
#: lead recall 0.846 -> 0.638 when it was compared).
RIVAL_HABITS = ("deposit_type", "change_address", "round_amounts")

#: Fewest payments from which a named wallet's own round-amount read (none round, or
#: `STYLE_MIN_ROUND_SEEN` round) settles a contest its lenient read (`STYLE_MIN_PAYMENTS_SEEN`)
#: leaves open (`style_rival_vetoes`). A tagged wallet read from one or two batches shows too few
#: payments for the lenient read (realistic_untagged small 10: dunmore's tags, 13 payments, none
#: round, against the untagged arcadia's fragments, a third of theirs round). 0 turns it off.
RIVAL_ROUNDS_SEEN = 10

#: ... and where the groups' sweeps pay, fresh addresses or ones paid before
#: (`WalletStyles.sweep_address`): an exchange that sweeps into a few reused hot addresses is not
#: one that takes a fresh hot address per sweep, however alike their batches (realistic small
#: 12: cobalt and dunmore differ in nothing else). Read pooled and at the change-address
#: thresholds. Off: the rule as before (docs/design/trace.md "Sweep address as a rival habit").
RIVAL_SWEEP_ADDRESS = True

#: ... and the same as a habit that rules a named wallet out (`_more_habits`): a candidate
#: whose one sweep paid a fresh address is not a named wallet that sweeps into a few reused
#: hot addresses, and the other way round.
FIT_SWEEP_ADDRESS = False

#: ... and as a veto only (`style_matches`): the match is made without it, then dropped where
#: the candidate's sweeps contradict its named wallet's. It can only unname: as a habit that
#: rules out (`FIT_SWEEP_ADDRESS`) it narrowed fragments of an untagged exchange compatible
#: with two tagged look-alikes down to one, and named them (hard small 12, borealis untagged:
#: 1 -> 56 deposits named wrong).
VETO_SWEEP_ADDRESS = True

#: Whether a wallet's batches spend its customers' deposit coins straight, with its hot coins
#: (`WalletStyles.cospends`), as a veto only (`style_matches`): a match is dropped where the
#: candidate's habit (read over `COSPEND_MIN_CANDIDATE`+ batches) and its named wallet's
#: (`COSPEND_MIN_BATCHES`+) differ. It can only unname. A co-spending wallet's batches sit in
#: its deposit-spending fragments, which take no style part, so a named wallet's habit is read
#: over its own batches and those fragments' (`cases.investigate._cospend_kin`: the change
#: chains its tags root). On at 3 and 2: 94 untagged variants 399 -> 378 wrong of 10,906
#: (hard_cospend small 1 arcadia untagged 34 -> 13), held-out hard_cospend small 2-4 and 11-13
#: (arcadia or borealis untagged) 21 -> 15, the 101 cached worlds identical. A candidate read
#: from one batch: 376, but recall fell on 7 all-tagged worlds (hard small 7 0.930 -> 0.919)
#: and lead precision on hard_swswitch small 1 (0.993 -> 0.992) (docs/accuracy-log.md
#: "Co-spending read over a named exchange's fragments"). Off since: on realistic large 1
#: (every exchange tagged, no co-spender) it unnamed fragments read from two batches and cost
#: 74 right leads (recall 0.9938 -> 0.9896), a cost the 21 wrong names it saves on one
#: hard_cospend variant do not settle; a candidate read of 3+ batches saves none.
VETO_COSPEND = False
COSPEND_MIN_BATCHES = 3
COSPEND_MIN_CANDIDATE = 2


def style_rival_vetoes(
    styles: WalletStyles,
    candidate: np.ndarray,
    match: np.ndarray,
    min_rivals: int,
    ratio: int = STYLE_HABIT_RATIO,
) -> np.ndarray:
    """Candidates (bool): style matches (`style_matches`' `match` >= 0) to leave unnamed because
    their named wallet is *contested* (docs/design/trace.md "Contested style names").

    A match says "compatible with this named wallet alone": a habit the named wallet does not
    show at the tag thresholds rules nothing out. Two groups matched to one wallet that read
    the same software and differ in such a habit, each showing it at the tag thresholds
    (`RIVAL_HABITS`, pooled), cannot both be that wallet: at least one is a wallet the tags
    miss (on the simulated worlds: an untagged exchange that reuses its change addresses, one
    large group, against the fragments of a tagged look-alike that never does). Where the named wallet itself
    shows the habit as a candidate's is read (one batch: `style_habits(seen=True)`), the groups
    that contradict it are the rivals and are left unnamed; where that does not settle it (the
    wallet shows nothing of the habit, or groups that agree with it still differ among
    themselves) every match to the wallet in the round is left unnamed: a thin group,
    compatible with both sides, could be either. A contest needs `2 * min_rivals` groups that
    each differ from `min_rivals` others (1: any one pair). Groups x groups of one name: a few
    hundred squared bools."""
    out = np.zeros(candidate.shape[0], np.bool_)
    matched = np.flatnonzero(match >= 0)
    if matched.shape[0] < 2:
        return out
    pick = [STYLE_HABITS.index(h) for h in RIVAL_HABITS]
    strict = style_habits(styles, candidate[matched])
    names = np.unique(match[matched])
    habits = tuple(strict[i] for i in pick)
    software = tuple(strict[STYLE_HABITS.index(h)] for h in PERIOD_HABITS)
    lenient = style_habits(styles, names, seen=True)
    if RIVAL_SWEEP_ADDRESS:
        # and where its sweeps pay (`WalletStyles.sweep_address`), a rival habit only
        habits += (styles.sweep_address(STYLE_MIN_CHANGE_ADDRESS)[candidate[matched]],)
        lenient += (styles.sweep_address(1)[names],)
        pick = [*pick, len(lenient) - 1]
    # the named wallet's round amounts read from fewer payments (`RIVAL_ROUNDS_SEEN`): only to
    # settle a contest its lenient read leaves open, never to match
    wide = list(lenient)
    wide[STYLE_HABITS.index("round_amounts")] = styles.rounds(
        RIVAL_ROUNDS_SEEN, STYLE_MIN_ROUND_SEEN
    )[names]
    for k, m in enumerate(names.tolist()):
        mine = np.flatnonzero(match[matched] == m)
        if mine.shape[0] < 2:
            continue
        rows = tuple(h[mine] for h in habits)
        alike, shown = _alike(rows, rows)
        same, seen = _alike(*(tuple(h[mine] for h in software),) * 2)
        same &= seen[PERIOD_HABITS.index("fingerprint")]
        alike |= ~same
        if int(((~alike).sum(axis=1) >= min_rivals).sum()) < 2 * min_rivals:
            continue
        # the wallet's own lenient read settles it where it shows a habit they differ in; else
        # a group that `ratio` times as many groups contradict as agree with it (itself
        # counted) is the rival
        own = tuple(np.array([lenient[i][k]], np.int64) for i in pick)
        agree = _alike(rows, own)[0][:, 0]
        if agree.all() and RIVAL_ROUNDS_SEEN:
            # the wallet's widened read settles it where it shows a habit the lenient one does
            # not and groups contradict it: those groups are the rivals, and a group that shows
            # none of the habits so added could be either side and stays unnamed
            ours = tuple(np.array([wide[i][k]], np.int64) for i in pick)
            added = [o[0] >= 0 and w[0] < 0 for o, w in zip(ours, own, strict=True)]
            near, told = _alike(rows, ours)
            near = near[:, 0]
            left = np.flatnonzero(near)
            if any(added) and not near.all():
                sub = alike[np.ix_(left, left)]
                if int(((~sub).sum(axis=1) >= min_rivals).sum()) < 2 * min_rivals:
                    shows = np.logical_or.reduce(
                        [t[:, 0] for t, a in zip(told, added, strict=True) if a]
                    )
                    out[matched[mine[~(near & shows)]]] = True
                    continue
        if agree.all():
            # agreeing on a habit no two groups differ in backs nothing
            split = [
                b & same & (r[:, None] != r[None, :]) for b, r in zip(shown, rows, strict=True)
            ]
            told = np.logical_or.reduce([b for b, d in zip(shown, split, strict=True) if d.any()])
            backed = (alike & same & told).sum(axis=1)
            differ = (~alike).sum(axis=1)
            agree = (differ == 0) | (differ < ratio * backed)
        left = np.flatnonzero(agree)
        sub = alike[np.ix_(left, left)]
        settled = int(((~sub).sum(axis=1) >= min_rivals).sum()) < 2 * min_rivals
        out[matched[mine[~agree]] if settled else matched[mine]] = True
    return out


#: Fewest named wallets a `style_candidates` set lists: one compatible wallet the rule did not
#: name lacks the evidence a match needs (or received a coinbase), and on the simulated worlds
#: it was another owner's 7 times in 24 (docs/accuracy-log.md "Candidate exchanges").
STYLE_MIN_CANDIDATES = 2


def style_candidates(
    styles: WalletStyles,
    named: np.ndarray,
    candidate: np.ndarray,
    listed: np.ndarray,
    min_candidates: int = STYLE_MIN_CANDIDATES,
) -> np.ndarray:
    """Candidates × named (bool): the named groups each unmatched candidate group could be, as
    an investigator's list of whom to ask, never its name (docs/design/trace.md).

    `listed` (bool per named group): the ones that may be listed (the exchanges). A candidate
    gets a set when it received no coinbase (a pool), is compatible with at least
    `min_candidates` listed groups (`style_compatible`, the same comparison
    `style_matches` makes) and its habits rule out at least one listed group (a set of every
    exchange narrows nothing; a group that shows no habit is compatible with all). Other rows
    are all False. Candidates × named bools: a few hundred by a handful of names.

    `min_candidates` 1 (`cases.investigate._lend_by_style` with style names off): a group
    that fits exactly one listed group gets a set of one, a request to that exchange, where
    with style names on the style rule names it or leaves it for want of evidence."""
    out = np.zeros((candidate.shape[0], named.shape[0]), np.bool_)
    if named.shape[0] == 0 or candidate.shape[0] == 0:
        return out
    compatible, _evidence = style_compatible(styles, named, candidate)
    compatible &= listed[None, :]
    k = compatible.sum(axis=1)
    keep = ~styles.coinbase[candidate] & (k >= min_candidates) & (k < int(listed.sum()))
    out[keep] = compatible[keep]
    return out


def style_compatible(
    styles: WalletStyles, named: np.ndarray, candidate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates × named (bool, both): whether no habit of either rules the named group out
    (`style_matches`), and whether both show the habits a match needs as evidence (hot type,
    fingerprint, and change position or deposit type)."""
    # the first five habits rule out and the first four are evidence; the round-amount habit
    # only rules out, through `_more_habits` (which bench.habit_ablation swaps)
    compatible, shown = _alike(style_habits(styles, candidate, seen=True)[:5],
                               style_habits(styles, named)[:5])  # fmt: skip
    evidence = shown[0] & shown[1] & (shown[2] | shown[3])
    # more habits that only rule out (docs/accuracy-log.md "More wallet habits")
    compatible &= _more_habits(styles, named, candidate)
    if styles.periods is not None:
        compatible, evidence = _period_compatible(styles, named, candidate, compatible, evidence)
    return compatible, evidence


#: The habits a change of signing software shows in (`_period_habits`): the hot wallet's script
#: type, the fingerprint (version, locktime, nSequence), the output order and the fee rate, as
#: Binance's batches changed between 2017 and 2018 on the real blocks. The others (change
#: position and address, deposit type, round amounts) are read pooled: read per window, their
#: smaller counts met the thresholds by chance (realistic_sw small 6: a tagged wallet whose
#: change position is not known over the chain read "last" in one half-year and 5 lead
#: rows fewer were named; realistic_sw small 10 lead precision 0.989 -> 0.971).
PERIOD_HABITS = ("hot_type", "fingerprint", "output_order", "fee_rate")


def _period_habits(
    styles: WalletStyles, groups: np.ndarray, seen: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per habit of `STYLE_HABITS`, groups x windows: what each group shows in each window; and
    per group whether it *changed*: two windows show two values of one of `PERIOD_HABITS`,
    read by the candidate's thresholds (`seen=True`: one unsorted batch, one fractional fee
    ...) so that a change shows as soon as it can. A group that did not change shows its
    pooled habits in every window (the pooled read's counts are the surer); one that changed
    shows the `PERIOD_HABITS` as each window reads them (`style_habits` on
    `PeriodStyles.styles`) and the others pooled."""
    ps = styles.periods
    assert ps is not None
    k = ps.n_periods
    n = groups.shape[0]
    rows = (groups[:, None] * k + np.arange(k)[None, :]).ravel()
    own = style_habits(ps.styles, rows, seen=seen)
    lenient = style_habits(ps.styles, rows, seen=True)
    pooled = style_habits(styles, groups, seen=seen)
    changed = np.zeros(n, np.bool_)
    big = np.iinfo(np.int64).max
    for name in PERIOD_HABITS:
        values = lenient[STYLE_HABITS.index(name)].reshape(n, k)
        known = values >= 0  # a window of two values (`STYLE_MIXED`) is noise, not a change
        lo = np.where(known, values, big).min(axis=1)
        hi = np.where(known, values, -1).max(axis=1)
        changed |= (hi >= 0) & (lo != hi)
    habits = [np.repeat(p[:, None], k, axis=1) for p in pooled]
    for name in PERIOD_HABITS:
        i = STYLE_HABITS.index(name)
        habits[i] = np.where(changed[:, None], own[i].reshape(n, k), habits[i])
    if STYLE_PERIOD_CHANGE_POSITION:
        # only where the pooled read shows no one position: a window's fewer batches meet the
        # thresholds less often, and a known pooled position is evidence a window may lack
        i = STYLE_HABITS.index("change_position")
        per_window = changed[:, None] & (pooled[i] < 0)[:, None]
        habits[i] = np.where(per_window, own[i].reshape(n, k), habits[i])
    return habits, changed


#: True: where a named wallet that changed reads mixed in a window (its switch fell inside
#: it), a candidate's hot type or fingerprint counts as evidence there when the named wallet
#: shows that value alone in the nearest window before or after (`_period_compatible`).
STYLE_STRADDLE_EVIDENCE = False
#: True: a wallet whose software changed (`_period_habits`: one of `PERIOD_HABITS` read two
#: values in two windows) shows its change position per window too, not pooled: where its
#: software sorts outputs (BIP69) in one era and not in the other, the change sits where its
#: value falls in one and where the signer puts it in the other, and the pooled read is mixed
#: (no evidence for the new software's fragments; hard_swswitch small 3 borealis). Read so only
#: where the pooled position is not known (a window's fewer batches can lose evidence the
#: pooled read had: tests/trace/test_period_habits.py). Not part of
#: the "changed" test: a change position that differs by window alone does not mark a change
#: (read per window for every wallet it met the thresholds by chance, realistic_sw small 6).
STYLE_PERIOD_CHANGE_POSITION = True


def _nearest_known(habits: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per habit (groups x windows): the value each group shows alone in the nearest window
    before and after each window (-1 none)."""
    out = []
    for h in habits:
        before = np.full_like(h, -1)
        after = np.full_like(h, -1)
        for k in range(1, h.shape[1]):
            before[:, k] = np.where(h[:, k - 1] >= 0, h[:, k - 1], before[:, k - 1])
        for k in range(h.shape[1] - 2, -1, -1):
            after[:, k] = np.where(h[:, k + 1] >= 0, h[:, k + 1], after[:, k + 1])
        out.append((before, after))
    return out


#: True: every pair of wallets active in some window is compared per window, changed or not
#: (pairs sharing no window never); on the simulated worlds, whose exchanges never change
#: software, that cost lead recall where a tagged wallet's few tags fall in other windows than
#: its fragments (hard small 14 0.495 -> 0.360, realistic small 10 0.875 -> 0.785;
#: docs/accuracy-log.md "Wallet habits read per period"). False (the default): only pairs
#: where either wallet changed.
STYLE_PERIOD_STRICT = False


def _period_compatible(
    styles: WalletStyles,
    named: np.ndarray,
    candidate: np.ndarray,
    pooled: np.ndarray,
    pooled_evidence: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`style_compatible` read per window (`PeriodStyles`), for the pairs where either side
    changed its software (`_period_habits`); the others keep the pooled read (`pooled`,
    `pooled_evidence`). Where the two both paid batches or sweeps in a window, the named group
    is ruled out only by a habit both show in one such window, and each habit of the evidence a
    match needs must be shown by both in one. Where they share no window: neither a rule-out
    nor evidence. Candidates x named x windows of bools, one window at a time."""
    ps = styles.periods
    assert ps is not None
    act_c, act_n = ps.active(candidate), ps.active(named)
    hc, changed_c = _period_habits(styles, candidate, True)
    hn, changed_n = _period_habits(styles, named, False)
    compatible = np.ones_like(pooled)
    seen = [np.zeros_like(pooled_evidence) for _ in range(4)]
    near = _nearest_known(hn[:2]) if STYLE_STRADDLE_EVIDENCE else None
    for k in np.flatnonzero(act_c.any(axis=0) & act_n.any(axis=0)).tolist():
        alike, shown = _alike(tuple(h[:, k] for h in hc), tuple(h[:, k] for h in hn))
        both = act_c[:, k, None] & act_n[None, :, k]
        compatible &= ~both | alike
        if near is not None:
            # the window the switch fell in reads mixed for the named wallet: a candidate's
            # value that the named wallet shows alone in the nearest window before or after
            # it is evidence there (the rule-outs are unchanged: a mixed read rules nothing out)
            for i in range(2):
                mine = hc[i][:, k, None]
                straddled = (hn[i][:, k] == STYLE_MIXED)[None, :]
                fits = (mine == near[i][0][None, :, k]) | (mine == near[i][1][None, :, k])
                shown[i] = shown[i] | ((mine >= 0) & straddled & fits)
        for i in range(4):
            seen[i] |= both & shown[i]
    evidence = seen[0] & seen[1] & (seen[2] | seen[3])
    timed = changed_c[:, None] | changed_n[None, :]
    if STYLE_PERIOD_STRICT:
        timed = np.asarray(act_c.any(axis=1))[:, None] & np.asarray(act_n.any(axis=1))[None, :]
    return np.where(timed, compatible, pooled), np.where(timed, evidence, pooled_evidence)


#: The habits the style rules read (`style_habits`), in their order: the first four are
#: evidence for a match (`style_compatible`), the others only rule out (the last three through
#: `_more_habits`).
STYLE_HABITS = (
    "hot_type",
    "fingerprint",
    "change_position",
    "deposit_type",
    "change_address",
    "round_amounts",
    "output_order",
    "fee_rate",
)


def style_habits(
    styles: WalletStyles, groups: np.ndarray, seen: bool = False
) -> tuple[np.ndarray, ...]:
    """Per habit of `STYLE_HABITS`, the value each of `groups` shows (int64; negative: not
    known, `STYLE_UNSEEN` or `STYLE_MIXED` for the script types and fingerprint, -1 for the
    counted habits). A named (tagged) group's counted habits need the named thresholds
    (`STYLE_MIN_LAST`, `STYLE_MIN_SHUFFLED`, `STYLE_MIN_CHANGE_ADDRESS`, `STYLE_MIN_PAYMENTS`
    ...); `seen=True` reads them as a candidate's (one batch with change elsewhere, one change
    address, `STYLE_MIN_PAYMENTS_SEEN`)."""
    position = (
        styles.change_position(STYLE_MIN_LAST, 1)
        if seen
        else styles.change_position(STYLE_MIN_LAST, STYLE_MIN_SHUFFLED)
    )
    address = styles.change_address(1 if seen else STYLE_MIN_CHANGE_ADDRESS)
    rounds = (
        styles.rounds(STYLE_MIN_PAYMENTS_SEEN, STYLE_MIN_ROUND_SEEN)
        if seen
        else styles.rounds(STYLE_MIN_PAYMENTS, STYLE_MIN_ROUND)
    )
    order = (
        styles.output_order(STYLE_MIN_SORTED_SEEN, 1)
        if seen
        else styles.output_order(STYLE_MIN_ORDERED, STYLE_MIN_ORDERED)
    )
    fee = (
        styles.fee_rate(STYLE_MIN_FEE_SEEN, 1)
        if seen
        else styles.fee_rate(STYLE_MIN_FEE, STYLE_MIN_FEE)
    )
    return (styles.hot[groups], styles.fingerprint[groups], position[groups],
            styles.deposit[groups], address[groups], rounds[groups], order[groups],
            fee[groups])  # fmt: skip


def habits_changed(styles: WalletStyles, groups: np.ndarray) -> np.ndarray:
    """Per group (bool): its software changed, two windows showing two values of one of
    `PERIOD_HABITS` (`_period_habits`); all False where the styles were read pooled."""
    groups = np.asarray(groups, np.int64)
    if styles.periods is None or groups.shape[0] == 0:
        return np.zeros(groups.shape[0], np.bool_)
    return _period_habits(styles, groups, False)[1]


def habit_rows(styles: WalletStyles, groups: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The habits `names` (of `STYLE_HABITS`, named thresholds) of each of `groups` as rows,
    (k, len(names) + 1) int64, the last column the calendar window (`block_periods`) the row
    holds in, -1 for the whole chain: one pooled row per group that shows all of them, and,
    for a group whose software changed (`_period_habits`: two windows show two values of one
    of `PERIOD_HABITS`), one row per window in which it shows all of them as that window reads
    them (its pooled fingerprint of such a wallet is `STYLE_MIXED`: no pooled row). Groups
    that did not change give exactly their pooled row (cash-outs' rule 6b, `cases.cashouts`).
    """
    width = len(names) + 1
    groups = np.asarray(groups, np.int64)
    if groups.shape[0] == 0:
        return np.zeros((0, width), np.int64)
    pooled = style_habits(styles, groups)
    values = np.stack([pooled[STYLE_HABITS.index(h)] for h in names], axis=1)
    keep = (values >= 0).all(axis=1)
    parts = [np.column_stack([values[keep], np.full(int(keep.sum()), -1, np.int64)])]
    ps = styles.periods
    if ps is not None:
        per, changed = _period_habits(styles, groups, False)
        for w in range(ps.n_periods):
            values = np.stack([per[STYLE_HABITS.index(h)][:, w] for h in names], axis=1)
            keep = changed & (values >= 0).all(axis=1)
            parts.append(
                np.column_stack([values[keep], np.full(int(keep.sum()), ps.first + w, np.int64)])
            )
    rows: np.ndarray = np.unique(np.concatenate(parts).astype(np.int64), axis=0)
    return rows.reshape(-1, width)


def style_lookalikes(styles: WalletStyles, named: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Named × named (bool): the pairs of named groups that no habit of `STYLE_HABITS` both show
    tells apart (read with the named thresholds on both sides, as `style_habits`), and per
    named group whether it shows any habit at all.

    Two such wallets are style twins as the rules see them: an untagged fragment that shows
    one's habits is compatible with the other too (what one does not show rules nothing out),
    so `style_matches` names it after neither (docs/design/cases.md "Look-alike exchanges")."""
    habits = style_habits(styles, named)
    alike, _shown = _alike(habits, habits)
    shows = np.zeros(named.shape[0], np.bool_)
    for h in habits:
        shows |= h >= 0
    return alike, shows


def style_reads(styles: WalletStyles, groups: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per habit of `STYLE_HABITS`, what each of `groups` was read from (int64): txs for the
    hot type and fingerprint (batches, or what `blind_styles` read) and the deposit type
    (sweeps, or what `received_deposits` read); batches whose change was found for the change
    position and address; batch payments for round amounts. -1 where not counted."""
    n = groups.shape[0]

    def of(values: np.ndarray | None) -> np.ndarray:
        return np.full(n, -1, np.int64) if values is None else np.asarray(values, np.int64)[groups]

    def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
        return of(None) if a is None or b is None else of(a) + of(b)

    changes = styles.change_last[groups] + styles.change_elsewhere[groups]
    return (of(styles.batches), of(styles.batches), changes.astype(np.int64),
            of(styles.deposit_reads), changes.astype(np.int64), of(styles.payments),
            both(styles.sorted_batches, styles.unsorted_batches),
            both(styles.whole_fees, styles.fractional_fees))  # fmt: skip


def _alike(
    a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows of `a` × rows of `b` (`style_habits` of each): True where no habit both show
    differs, and per habit where both show it. A habit one side does not show rules nothing
    out: a wallet that shows none is alike with every other. Rows × rows: a few hundred by a
    handful of names."""
    alike = np.ones((a[0].shape[0], b[0].shape[0]), np.bool_)
    shown = []
    for ha, hb in zip(a, b, strict=True):
        both = (ha[:, None] >= 0) & (hb[None, :] >= 0)
        alike &= ~both | (ha[:, None] == hb[None, :])
        shown.append(both)
    return alike, shown


def _more_habits(styles: WalletStyles, named: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Candidates × named: False where the round-amount habit, the output order or the fee rate
    rules the named group out; they only rule out and are no evidence of their own. (A batch or
    sweep cadence counted in blocks was measured and dropped: docs/accuracy-log.md "More
    wallet habits", why.)"""
    compatible, _shown = _alike(style_habits(styles, candidate, seen=True)[5:],
                                style_habits(styles, named)[5:])  # fmt: skip
    if FIT_SWEEP_ADDRESS:
        # where its sweeps pay: a candidate read at one sweep, a named wallet at the
        # change-address thresholds (docs/design/trace.md "Sweep address as a habit")
        compatible &= _alike((styles.sweep_address(1)[candidate],),
                             (styles.sweep_address(STYLE_MIN_CHANGE_ADDRESS)[named],))[0]  # fmt: skip
    return compatible
