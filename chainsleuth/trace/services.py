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

from dataclasses import dataclass

import numpy as np
from numba import njit

from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

__all__ = [
    "BATCH_MIN_PAYEES",
    "MIN_EVENTS",
    "SWEEP_MIN_INPUTS",
    "ServiceStats",
    "TxShapes",
    "hot_change_links",
    "sendall_receivers",
    "service_entities",
    "service_stats",
    "style_matches",
    "tx_shapes",
    "wallet_styles",
    "WalletStyles",
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


@dataclass(frozen=True)
class ServiceStats:
    """Per address id (read at a cluster's id): batches paid and sweeps received."""

    batches: np.ndarray  # int64 per address id, counted at the cluster id
    sweeps_in: np.ndarray

    def service_like(self, min_events: int = MIN_EVENTS) -> np.ndarray:
        """Sorted cluster ids that paid at least `min_events` batches."""
        return np.flatnonzero(self.batches >= min_events)


@dataclass(frozen=True)
class TxShapes:
    """Per tx: payees, spender cluster (-1 for coinbases), batch or not; per output: its tx."""

    n_inputs: np.ndarray
    n_payees: np.ndarray
    spender: np.ndarray
    batch: np.ndarray
    made_by: np.ndarray
    spent_by: np.ndarray  # spending tx per output, -1 unspent
    first_output: np.ndarray
    output_address: np.ndarray
    payable: np.ndarray
    plain: np.ndarray  # per tx: at most EQUAL_SHARE of its payees pay one value
    coinjoin: np.ndarray  # per tx: flagged as a CoinJoin by the cluster stage
    small_batch: np.ndarray  # per tx: a plain payout of SMALL_BATCH_PAYEES+, not a CoinJoin


def tx_shapes(
    store: Store, cluster_of: np.ndarray, is_coinjoin: np.ndarray | None = None
) -> TxShapes | None:
    """The shapes of every tx (None for an empty store). About 42 B per tx and 17 B per output
    while in use. CoinJoins (`is_coinjoin`, bool per tx) are neither batches nor small batches."""
    first_input = store.graph.tx_first_input.astype(np.int64)
    first_output = store.graph.tx_first_output.astype(np.int64)
    output_address = store.graph.output_address
    output_value = store.graph.output_value
    input_address = store.graph.input_address.astype(np.int64)
    n_txs, n_outputs = first_input.shape[0], output_address.shape[0]
    if n_txs == 0 or input_address.shape[0] == 0 or n_outputs == 0:
        return None
    made_by = np.searchsorted(first_output, np.arange(n_outputs), side="right") - 1
    payable = (output_address != NONE32) & (output_value > 0)
    n_payees = np.bincount(made_by[payable], minlength=n_txs)
    # the most outputs of one value in each tx (runs of equal (tx, value))
    order = np.lexsort((output_value, made_by))
    tx_sorted, value_sorted = made_by[order], output_value[order]
    new_run = np.ones(n_outputs, np.bool_)
    new_run[1:] = (tx_sorted[1:] != tx_sorted[:-1]) | (value_sorted[1:] != value_sorted[:-1])
    starts = np.flatnonzero(new_run)
    most_equal = np.zeros(n_txs, np.int64)
    np.maximum.at(most_equal, tx_sorted[starts], np.diff(np.append(starts, n_outputs)))
    n_inputs = np.diff(np.append(first_input, input_address.shape[0]))
    first_addr = input_address[np.minimum(first_input, input_address.shape[0] - 1)]
    owned = (n_inputs > 0) & (first_addr != int(NONE32))
    spender = np.where(owned, cluster_of[np.where(owned, first_addr, 0)], -1)
    plain = most_equal <= EQUAL_SHARE * np.maximum(n_payees, 1)
    coinjoin = np.zeros(n_txs, np.bool_) if is_coinjoin is None else is_coinjoin
    small_batch = owned & (n_payees >= SMALL_BATCH_PAYEES) & plain & ~coinjoin
    batch = small_batch & (n_payees >= BATCH_MIN_PAYEES)
    spent_by = store.graph.output_spent_by_tx.astype(np.int64)
    spent_by = np.where(spent_by != int(NONE32), spent_by, -1)
    return TxShapes(n_inputs, n_payees, spender, batch, made_by, spent_by, first_output,
                    output_address, payable, plain, coinjoin, small_batch)  # fmt: skip


def service_stats(shapes: TxShapes | None, cluster_of: np.ndarray) -> ServiceStats:
    """Batches paid and sweeps received by every cluster of `cluster_of` (address -> cluster)."""
    n_addresses = cluster_of.shape[0]
    if shapes is None or n_addresses == 0:
        empty = np.zeros(n_addresses, np.int64)
        return ServiceStats(empty, empty.copy())
    batches = np.bincount(shapes.spender[shapes.batch], minlength=n_addresses).astype(np.int64)
    sweep = (shapes.spender >= 0) & (shapes.n_inputs >= SWEEP_MIN_INPUTS) & (shapes.n_payees == 1)
    # the one payable output of each sweep
    sweep_output = shapes.payable & sweep[shapes.made_by]
    target = shapes.output_address[sweep_output].astype(np.int64)
    sweeps_in = np.bincount(cluster_of[target], minlength=n_addresses).astype(np.int64)
    return ServiceStats(batches, sweeps_in)


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


def _first_input_type(store: Store) -> np.ndarray:
    """Per tx: the script type of the output its first input spends (1 B per tx)."""
    output_type = store.graph.output_script_type
    spent_output = store.graph.input_spent_output.astype(np.int64)
    first_input = store.graph.tx_first_input.astype(np.int64)
    where = spent_output[np.minimum(first_input, spent_output.shape[0] - 1)]
    out: np.ndarray = output_type[np.maximum(where, 0)]
    return out


def small_batch_links(store: Store, shapes: TxShapes | None) -> tuple[np.ndarray, np.ndarray]:
    """Links between small batches (at least `SMALL_BATCH_PAYEES` payees each): a batch T's
    output spent by another batch S joins their input clusters when the output is T's largest,
    has the script type of T's first input, T and S carry the same wallet fingerprint
    (version, locktime set or not, nSequence class) and no other output of T is spent so.
    That is an exchange paying its next small batch from the last one's change; a customer
    spending a withdrawal in a payment of their own rarely matches all four. Returns (a, b)
    cluster pairs. Reads the fingerprints from the store's tables once (1 B per tx)."""
    from chainsleuth.cluster.learned import read_fingerprints

    none = np.zeros(0, np.int64)
    if shapes is None:
        return none, none
    n_txs = shapes.n_payees.shape[0]
    small = shapes.small_batch
    fingerprint = read_fingerprints(store, 0, n_txs)
    output_value = store.graph.output_value
    output_type = store.graph.output_script_type
    first_type = _first_input_type(store)
    made_by = shapes.made_by
    value = np.where(shapes.payable, output_value, -1)
    largest = np.full(n_txs, -1, np.int64)
    np.maximum.at(largest, made_by, value)
    spent = shapes.spent_by >= 0
    by = np.where(spent, shapes.spent_by, 0)
    candidate = spent & small[by] & small[made_by]
    candidate &= fingerprint[made_by] == fingerprint[by]
    candidate &= output_type == first_type[made_by]
    candidate &= value == largest[made_by]
    per_tx = np.bincount(made_by[candidate], minlength=n_txs)
    link = candidate & (per_tx[made_by] == 1)
    return shapes.spender[made_by[link]], shapes.spender[by[link]]


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
    CoinJoin, and its spender must be a lone address that is not service-like. Memory: 8 B per
    address (cluster sizes) and 9 B per output while in use.
    """
    none = np.zeros(0, np.int64)
    if shapes is None or cluster_of.shape[0] == 0:
        return none, none
    made = shapes.made_by
    payable = shapes.payable
    out_cluster = np.where(payable, cluster_of[np.where(payable, shapes.output_address, 0)], -1)
    hot = stats.batches >= MIN_EVENTS
    spender = shapes.spender[made]
    link = payable & (out_cluster >= 0) & hot[np.maximum(out_cluster, 0)]
    link &= (spender >= 0) & ~hot[np.maximum(spender, 0)]
    # a lone address (a forwarded deposit, a cold coin): on the hard worlds 2% of such links
    # joined two owners, against 38% from clusters of 2+ addresses (customers paying a hot
    # wallet that a base-cluster merge put beside a deposit)
    size = np.bincount(cluster_of, minlength=cluster_of.shape[0])
    link &= size[np.maximum(spender, 0)] == 1
    link &= (shapes.n_payees[made] == 2) & (shapes.n_inputs[made] == 1)
    link &= ~shapes.coinjoin[made] & ~shapes.small_batch[made]
    return spender[link], out_cluster[link]


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
    made = shapes.made_by
    sendall = (shapes.n_inputs >= SENDALL_MIN_INPUTS) & (shapes.n_payees == 1)
    sendall &= (shapes.spender >= 0) & ~shapes.coinjoin
    pays = shapes.payable & sendall[made] & (shapes.spent_by >= 0)
    receiver = cluster_of[shapes.output_address[pays].astype(np.int64)]
    other = receiver != shapes.spender[made[pays]]
    return np.unique(receiver[other])


def service_entities(
    shapes: TxShapes | None, extra: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters that one service's own transactions join: (cluster ids, entity of each).

    A custodial wallet that never reuses an address falls apart into many clusters (each
    batched withdrawal's fresh change is linked by no precise rule). Its own transactions still
    tie them: the service spends what it owns in its next batch. So when a batch spends an
    output, and that output is the only one of its creating transaction that any batch spends,
    the creating transaction's input cluster and the batch's input cluster are taken for one
    service: a batch's change spent by the next batch, a sweep of deposits spent by a batch, a
    forwarded deposit's remainder. Customers do not pay in batches, so what a customer withdrew
    is not spent by one. CoinJoins neither create nor spend such links.

    Returns the clusters that take part in a link (sorted) and an entity label for each (the
    smallest cluster id of its component). Memory: 16 B per linked cluster and 8 B per link.
    On the hard simulated world (small, seed 1) 962 links were made and every one joined two
    clusters of the same owner (docs/investigations.md).
    """
    none = np.zeros(0, np.int64)
    if shapes is None:
        return none, none
    n_txs = shapes.n_payees.shape[0]
    spent = shapes.spent_by >= 0
    spent_in_batch = np.zeros(shapes.spent_by.shape[0], np.bool_)
    spent_in_batch[spent] = shapes.batch[shapes.spent_by[spent]]
    made_by = shapes.made_by
    per_tx = np.bincount(made_by[spent_in_batch], minlength=n_txs)
    link = spent_in_batch & (per_tx[made_by] == 1) & (shapes.spender[made_by] >= 0)
    link &= ~shapes.coinjoin[made_by]
    a = shapes.spender[made_by[link]]
    b = shapes.spender[shapes.spent_by[link]]
    if extra is not None:
        a, b = np.concatenate([a, extra[0]]), np.concatenate([b, extra[1]])
    keep = (a >= 0) & (b >= 0) & (a != b)
    a, b = a[keep], b[keep]
    if a.shape[0] == 0:
        return none, none
    nodes = np.unique(np.concatenate([a, b]))
    label = _components(np.searchsorted(nodes, a), np.searchsorted(nodes, b), nodes.shape[0])
    return nodes, nodes[label]


#: Batches whose change went last, with none elsewhere, before a wallet is taken to put its
#: change last (a wallet that shuffles its outputs puts it last in about 1 of 7 batches of 6+
#: payees, so three in a row happen by chance about once in 350 such wallets).
STYLE_MIN_LAST = 3

#: Batches whose change went elsewhere than last before a *tagged* exchange is taken to shuffle
#: its outputs (one could be a payee mistaken for change).
STYLE_MIN_SHUFFLED = 2

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
    received a coinbase output (a mining pool pays batches too; it is not an exchange)."""

    hot: np.ndarray  # int64 per group
    fingerprint: np.ndarray
    deposit: np.ndarray
    change_last: np.ndarray
    change_elsewhere: np.ndarray
    coinbase: np.ndarray  # bool per group

    def change_position(self, min_last: int, min_elsewhere: int) -> np.ndarray:
        """Per group: 1 = change last, 0 = change elsewhere, -1 = not known."""
        last, other = self.change_last, self.change_elsewhere
        out = np.full(last.shape[0], -1, np.int64)
        out[(other == 0) & (last >= min_last)] = 1
        out[(other >= min_elsewhere) & (last <= other)] = 0
        return out


def _one_value(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group: the one value its rows carry, STYLE_UNSEEN or STYLE_MIXED."""
    big = np.iinfo(np.int64).max
    lo = np.full(n_groups, big, np.int64)
    hi = np.full(n_groups, -1, np.int64)
    np.minimum.at(lo, group, value)
    np.maximum.at(hi, group, value)
    return np.where(hi < 0, STYLE_UNSEEN, np.where(lo == hi, hi, STYLE_MIXED))


def wallet_styles(
    store: Store,
    shapes: TxShapes | None,
    cluster_of: np.ndarray,
    group: np.ndarray,
    fingerprint: np.ndarray | None = None,
) -> WalletStyles:
    """The wallet style of each group; `group` is a group id (0..n-1) per cluster id, -1 none.
    `fingerprint`: `cluster.learned.read_fingerprints` of every tx (read here when None).

    Read from the batches (`TxShapes.batch`), sweeps (`SWEEP_MIN_INPUTS`+ inputs into one
    payee) and coinbase outputs whose spender (or payee) cluster has a group. About 9 B per tx
    and 10 B per output while in use, 41 B per group."""
    from chainsleuth.cluster.learned import read_fingerprints

    n_groups = int(group.max()) + 1 if group.shape[0] else 0
    empty = np.zeros(n_groups, np.int64)
    if shapes is None or n_groups == 0:
        unseen = np.full(n_groups, STYLE_UNSEEN, np.int64)
        return WalletStyles(unseen, unseen.copy(), unseen.copy(), empty, empty.copy(),
                            np.zeros(n_groups, np.bool_))  # fmt: skip
    n_txs = shapes.n_payees.shape[0]
    first_type = _first_input_type(store).astype(np.int64)
    tx_group = np.where(shapes.spender >= 0, group[np.maximum(shapes.spender, 0)], -1)
    batch = shapes.batch & (tx_group >= 0)
    hot = _one_value(tx_group[batch], first_type[batch], n_groups)
    if fingerprint is None:
        fingerprint = read_fingerprints(store, 0, n_txs)
    fp = _one_value(tx_group[batch], fingerprint[batch].astype(np.int64), n_groups)
    sweep = (shapes.n_inputs >= SWEEP_MIN_INPUTS) & (shapes.n_payees == 1) & (tx_group >= 0)
    sweep &= ~shapes.coinjoin
    deposit = _one_value(tx_group[sweep], first_type[sweep], n_groups)
    # a batch's change: its one output a later batch spends (as `service_entities` links)
    made_by, spent_by = shapes.made_by, shapes.spent_by
    spent = spent_by >= 0
    in_batch = np.zeros(spent_by.shape[0], np.bool_)
    in_batch[spent] = shapes.batch[spent_by[spent]]
    per_tx = np.bincount(made_by[in_batch], minlength=n_txs)
    change = in_batch & (per_tx[made_by] == 1) & batch[made_by]
    last_output = np.append(shapes.first_output[1:], made_by.shape[0]) - 1
    outputs = np.flatnonzero(change)
    is_last = outputs == last_output[made_by[outputs]]
    g = tx_group[made_by[outputs]]
    change_last = np.bincount(g[is_last], minlength=n_groups).astype(np.int64)
    change_elsewhere = np.bincount(g[~is_last], minlength=n_groups).astype(np.int64)
    coinbase_out = shapes.payable & (shapes.spender[made_by] < 0)
    paid = cluster_of[shapes.output_address[coinbase_out].astype(np.int64)]
    coinbase = np.zeros(n_groups, np.bool_)
    coinbase[group[paid][group[paid] >= 0]] = True
    return WalletStyles(hot, fp, deposit, change_last, change_elsewhere, coinbase)


def style_matches(styles: WalletStyles, named: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For each candidate group, the named group whose wallet style it alone matches, else -1.

    `named`: groups that carry a name (one group per name); `candidate`: untagged service
    groups. Four habits are compared where both sides show them: the hot wallet's script type,
    the batches' fingerprint, the change position (known for a named group after
    `STYLE_MIN_LAST` batches with change last and none elsewhere, or `STYLE_MIN_SHUFFLED`
    elsewhere and no more last than elsewhere; for a candidate one batch with change elsewhere
    is enough) and the script type of swept deposits. A named group that contradicts none is
    compatible (one whose habits are not seen is compatible with everything, so a tag that
    shows nothing of its wallet blocks every match). A candidate matches when exactly one
    named group is compatible, both show the hot type and fingerprint and at least one of
    change position or deposit type, and it received no coinbase (a pool pays batches too)."""
    out = np.full(candidate.shape[0], -1, np.int64)
    if named.shape[0] == 0 or candidate.shape[0] == 0:
        return out
    pos_n = styles.change_position(STYLE_MIN_LAST, STYLE_MIN_SHUFFLED)[named]
    pos_c = styles.change_position(STYLE_MIN_LAST, 1)[candidate]
    habits_n = (styles.hot[named], styles.fingerprint[named], pos_n, styles.deposit[named])
    habits_c = (styles.hot[candidate], styles.fingerprint[candidate], pos_c,
                styles.deposit[candidate])  # fmt: skip
    # candidates × named: a few hundred by a handful of names
    compatible = np.ones((candidate.shape[0], named.shape[0]), np.bool_)
    shown = []
    for hc, hn in zip(habits_c, habits_n, strict=True):
        both = (hc[:, None] >= 0) & (hn[None, :] >= 0)
        compatible &= ~both | (hc[:, None] == hn[None, :])
        shown.append(both)
    evidence = shown[0] & shown[1] & (shown[2] | shown[3])
    one = (compatible.sum(axis=1) == 1) & ~styles.coinbase[candidate]
    pick = np.argmax(compatible, axis=1)
    one &= evidence[np.arange(candidate.shape[0]), pick]
    out[one] = named[pick[one]]
    return out
