"""Path search between two addresses or two clusters over the transaction graph.

The graph (docs/design/trace.md, "Path search"): nodes are addresses (or clusters), and there is
an edge X -> Y through tx T when T spends an output paying X and has an output paying Y. The
edge's amounts are `amount_in` (the value of X's outputs that T spends) and `amount` (the value
T pays to Y); its capacity is the smaller of the two.

* `fewest_hops`: breadth-first, level by level, vectorised numpy over the store's arrays; the
  first level that reaches the target gives the path (among the edges into a node at that level
  the widest one is kept).
* `largest_flow`: the path maximising its bottleneck (the smallest edge capacity along it), at
  most `max_hops` edges; ties go to fewer hops. Hop-bounded widest path: `max_hops` rounds of
  Bellman-Ford relaxation, each round relaxing only the nodes improved by the previous one.

Called by the `path` CLI command (`chainsleuth.trace.cli`) and by notebook users.

    >>> find_path(data, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3")
    ... # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from chainsleuth.cluster.engine import Clusters
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

MODES = ("fewest_hops", "largest_flow")
LEVELS = ("address", "cluster")
DEFAULT_MAX_VISITED = 5_000_000  # node updates over the whole search (about 40 B each)
_INF = np.iinfo(np.int64).max
NONE = int(NONE32)


@njit(cache=True, nogil=True)
def _frontier_outputs(output_address, output_spent_by_tx, n_txs, cluster_of, frontier):
    """Spent outputs whose node is in `frontier`: one streaming pass, no per-output copies.

    cluster_of: int64 cluster id per address id (empty at address level).
    """
    use_clusters = cluster_of.shape[0] > 0
    count = 0
    out = np.empty(1024, np.int64)
    for o in range(output_address.shape[0]):
        a = np.int64(output_address[o])
        if a == NONE:
            continue
        node = cluster_of[a] if use_clusters and a < cluster_of.shape[0] else a
        if node < 0 or node >= frontier.shape[0] or not frontier[node]:
            continue
        t = np.int64(output_spent_by_tx[o])
        if t == NONE or t >= n_txs:
            continue
        if count == out.shape[0]:
            grown = np.empty(2 * count, np.int64)
            grown[:count] = out
            out = grown
        out[count] = o
        count += 1
    return out[:count].copy()


def resolve_node(store: Store, spec: str | int, level: str) -> int:
    """The node id of an address string, or of an int (a cluster id, or an address id)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        node = int(spec)
        if node < 0 or node >= store.counts["addresses"]:
            raise ChainsleuthError(f"no {level} {node} in the store")
        if level == "cluster":  # a cluster id saved earlier: its current id (clusters merge)
            return int(Clusters.or_singletons(store.data_dir).clusters_of(np.array([node]))[0])
        return node
    address_id = store.address_id(str(spec))
    if level == "address":
        return address_id
    return int(Clusters.or_singletons(store.data_dir).clusters_of(np.array([address_id]))[0])


def _group_sum(keys_a: np.ndarray, keys_b: np.ndarray, values: np.ndarray) -> tuple[Any, ...]:
    """Sum `values` per (a, b) pair: (a, b, sum) per distinct pair, sorted by (a, b)."""
    if keys_a.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    order = np.lexsort((keys_b, keys_a))
    a, b, v = keys_a[order], keys_b[order], values[order]
    first = np.ones(a.shape[0], np.bool_)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    starts = np.flatnonzero(first)
    return a[starts], b[starts], np.add.reduceat(v, starts)


def _best_per(keys: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Index of the highest `score` for each distinct key (first index on ties)."""
    order = np.lexsort((-score, keys))
    k = keys[order]
    first = np.ones(k.shape[0], np.bool_)
    first[1:] = k[1:] != k[:-1]
    result: np.ndarray = order[first]
    return result


class _Graph:
    """The arrays one search reads, and one relaxation step over them."""

    def __init__(
        self, store: Store, level: str, lo: int | None = None, hi: int | None = None
    ) -> None:
        self.lo, self.hi = lo, hi  # the time window (block heights, both included), or None
        self.tx_height = store.graph.tx_height
        self.n_txs = store.counts["txs"]
        self.n_outputs = store.counts["outputs"]
        self.address = store.graph.output_address
        self.value = store.graph.output_value
        self.spent_by = store.graph.output_spent_by_tx
        self.first_output = store.graph.tx_first_output
        self.cluster_of = np.zeros(0, np.int64)
        if level == "cluster":
            n = store.counts["addresses"]
            self.cluster_of = Clusters.or_singletons(store.data_dir).clusters_of(np.arange(n))
        self.n_nodes = store.counts["addresses"]

    def node(self, outputs: np.ndarray) -> np.ndarray:
        """Node id of each of `outputs` (int64; -1 where the output has no address)."""
        address = self.address[outputs].astype(np.int64)
        none = address == NONE
        if self.cluster_of.shape[0]:
            address[~none] = self.cluster_of[address[~none]]
        address[none] = -1
        result: np.ndarray = address
        return result

    def step(self, frontier: np.ndarray, best: np.ndarray) -> tuple[np.ndarray, ...]:
        """Edges out of the `frontier` nodes (bool mask), best one per reached node.

        Returns per reached node Y: Y, width (min of the path width to X and the edge's
        capacity), parent X, tx T, amount_in (X's value spent by T), amount (T's value to Y).
        """
        outs = _frontier_outputs(self.address, self.spent_by, self.n_txs, self.cluster_of, frontier)
        if self.lo is not None or self.hi is not None:  # only txs inside the time window
            h = self.tx_height[self.spent_by[outs].astype(np.int64)]
            inside = np.ones(outs.shape[0], np.bool_)
            if self.lo is not None:
                inside &= h >= self.lo
            if self.hi is not None:
                inside &= h <= self.hi
            outs = outs[inside]
        t_in, x, amount_in = _group_sum(
            self.spent_by[outs].astype(np.int64), self.node(outs), self.value[outs]
        )
        if t_in.shape[0] == 0:
            return tuple(np.zeros(0, np.int64) for _ in range(6))
        cand = np.minimum(best[x], amount_in)
        pick = _best_per(t_in, cand)  # per tx: the input node giving the widest entry
        txs, w_tx, x_tx, in_tx = t_in[pick], cand[pick], x[pick], amount_in[pick]
        lo = self.first_output[txs]
        hi = np.append(self.first_output, self.n_outputs)[txs + 1]
        counts = hi - lo
        which = np.repeat(np.arange(txs.shape[0]), counts)
        out_ids = np.repeat(lo, counts) + (
            np.arange(which.shape[0]) - np.repeat(counts.cumsum() - counts, counts)
        )
        y_node = self.node(out_ids)
        keep = y_node >= 0
        which, y_node, out_ids = which[keep], y_node[keep], out_ids[keep]
        t_idx, y, amount = _group_sum(which, y_node, self.value[out_ids])
        width = np.minimum(w_tx[t_idx], amount)
        pick = _best_per(y, width)
        t_idx = t_idx[pick]
        return y[pick], width[pick], x_tx[t_idx], txs[t_idx], in_tx[t_idx], amount[pick]


def _search(
    graph: _Graph, source: int, target: int, mode: str, max_hops: int, max_visited: int
) -> tuple[list[tuple[int, int, int, int, int]], int, str, bool]:
    """(hops as (from, to, tx, amount_in, amount), bottleneck, status, hit_limit)."""
    if target == source:
        return [], 0, "found", False
    best = np.full(graph.n_nodes, -1, np.int64)
    best[source] = _INF
    # log[k]: the nodes updated in round k, with their width, parent, tx and amounts
    log: list[tuple[np.ndarray, ...]] = []
    frontier = np.zeros(graph.n_nodes, np.bool_)
    frontier[source] = True
    visited = 1
    hit_limit = False
    for _ in range(max_hops):
        y, width, parent, tx, amount_in, amount = graph.step(frontier, best)
        better = best[y] < 0 if mode == "fewest_hops" else width > best[y]
        y, width, parent, tx = y[better], width[better], parent[better], tx[better]
        amount_in, amount = amount_in[better], amount[better]
        if y.shape[0] == 0:
            break
        visited += int(y.shape[0])
        best[y] = width
        log.append((y, width, parent, tx, amount_in, amount))
        frontier[:] = False
        frontier[y] = True
        if mode == "fewest_hops" and best[target] >= 0:
            break
        if visited > max_visited:
            hit_limit = True
            break
    # The round where the target got its final width (the first reaching it), then back.
    rounds = [k for k, entry in enumerate(log) if (entry[0] == target).any()]
    if not rounds:
        return [], 0, "limit" if hit_limit else "no_path", hit_limit
    hops: list[tuple[int, int, int, int, int]] = []
    node, k = target, rounds[-1]
    bottleneck = int(best[target])
    while node != source:
        y, width, parent, tx, amount_in, amount = log[k]
        i = int(np.flatnonzero(y == node)[0])
        hops.append((int(parent[i]), node, int(tx[i]), int(amount_in[i]), int(amount[i])))
        node = int(parent[i])
        # the parent's state used in round k: its latest update before round k
        k = max((j for j in range(k) if (log[j][0] == node).any()), default=-1)
        if k < 0 and node != source:
            raise ChainsleuthError("inconsistent path log")  # pragma: no cover
    hops.reverse()
    return hops, bottleneck, "found", hit_limit


def find_path(
    store_dir: Path,
    source: str | int,
    target: str | int,
    mode: str = "fewest_hops",
    level: str = "address",
    max_hops: int = 8,
    max_visited: int = DEFAULT_MAX_VISITED,
    *,
    min_height: int | None = None,
    max_height: int | None = None,
) -> dict[str, Any]:
    """A path from `source` to `target` (addresses, or at level "cluster" cluster ids or
    addresses standing for their clusters) as txids with the amount at each hop.

    `min_height`/`max_height` (both included) keep the path's txs inside that window of
    blocks: the API's global time filter (`trace.rows.window_heights` turns dates into them).

    Returns {"found", "status" ("found" | "no_path" | "limit"), "complete" (False when
    `max_visited` node updates cut the search short: a largest_flow path may then not be the
    widest), "mode", "level", "source",
    "target" (node ids), "n_hops", "bottleneck" (satoshis; None when no path or source ==
    target), "hops": [{"txid", "from", "to", "amount_in", "amount"}]} where `from`/`to` are node
    ids, `amount_in` the value of `from`'s outputs the tx spends and `amount` what it pays `to`.

    >>> find_path(data, "12cbQ...", "1Q2TW...")["hops"][0]["txid"]   # doctest: +SKIP
    'f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16'
    """
    if mode not in MODES:
        raise ChainsleuthError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if level not in LEVELS:
        raise ChainsleuthError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if max_hops < 1:
        raise ChainsleuthError("max_hops must be at least 1")
    from chainsleuth.trace.engine import txid_hex

    store = Store.open(Path(store_dir))
    src = resolve_node(store, source, level)
    dst = resolve_node(store, target, level)
    graph = _Graph(store, level, min_height, max_height)
    hops, bottleneck, status, hit_limit = _search(graph, src, dst, mode, max_hops, max_visited)
    txids = txid_hex(store, np.array([h[2] for h in hops], np.int64)) if hops else []
    found = status == "found"
    return {
        "found": found,
        "status": status,
        "mode": mode,
        "level": level,
        "source": src,
        "target": dst,
        "max_hops": max_hops,
        "complete": not hit_limit,
        "n_hops": len(hops),
        "bottleneck": bottleneck if found and hops else None,
        "hops": [
            {"txid": t, "from": h[0], "to": h[1], "amount_in": h[3], "amount": h[4]}
            for t, h in zip(txids, hops, strict=True)
        ],
    }
