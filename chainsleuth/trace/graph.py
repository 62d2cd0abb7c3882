"""The money-flow graph around one node, as an investigator's graph view expands it.

Nodes are addresses, transactions or clusters. An edge S → T between two addresses (or two
clusters) aggregates every tx in which S pays in (owns an input) and T is paid (owns an output):
its value is what T received in those txs, its count the number of txs (no split between
co-spenders: each input owner gets an edge carrying T's full receipt, as GraphSense's relations
do). Self-edges (change back to the same address or cluster) are left out. Every expansion takes
a time window (block heights, both ends included) and returns *every* neighbour, sorted by value
(largest first) then id: callers page through it, nothing is cut to a top N.

All work is on the store's arrays (numpy, no Python object per tx): an expansion reads the
node's outputs (lookup index, or one pass over `output_address` for a big cluster), the txs that
spend or create them, and those txs' input or output ranges.

    >>> g = FlowGraph(data_dir)                                       # doctest: +SKIP
    >>> e = g.expand("address:bcrt1q...", "out")                      # doctest: +SKIP
    >>> e.keys[:3], e.value[:3], e.n_txs[:3]                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cluster.engine import Clusters, read_manifest
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.store.graph import owned_rows
from chainsleuth.store.layout import NONE32
from chainsleuth.store.lookups import outputs_of_addresses
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import txid_hex
from chainsleuth.trace.exposure import attributed_cluster_labels, coinjoin_flags

__all__ = ["DIRECTIONS", "KINDS", "Expansion", "FlowGraph", "NodeRef", "parse_node"]

KINDS = ("address", "tx", "cluster")
DIRECTIONS = ("in", "out")
NONE = int(NONE32)
_HEX64 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class NodeRef:
    """A graph node: kind ("address" | "tx" | "cluster") and its key as written by a user."""

    kind: str
    key: str

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"


def parse_node(spec: str) -> NodeRef:
    """`address:A`, `tx:TXID`, `cluster:N`; a bare 64-hex string is a tx, bare digits a
    cluster, anything else an address."""
    kind, sep, key = spec.partition(":")
    if sep and kind in KINDS:
        if not key:
            raise ChainsleuthError(f"node {spec!r} has no key after {kind}:")
        return NodeRef(kind, key.lower() if kind == "tx" else key)
    if len(spec) == 64 and set(spec.lower()) <= _HEX64:
        return NodeRef("tx", spec.lower())
    if spec.isdigit():
        return NodeRef("cluster", spec)
    return NodeRef("address", spec)


@dataclass
class Expansion:
    """The neighbours of one node (one entry per neighbour, sorted by value desc, then key).

    `kind` is the neighbours' kind; `keys` their address ids, tx ids or cluster ids. `value` and
    `usd` are summed over the `n_txs` txs of each edge (usd NaN where a day has no close);
    `tx` is the single tx of an edge with n_txs == 1, else -1. `outgoing` says whether edges
    go from the expanded node to the neighbours."""

    node: NodeRef
    kind: str
    outgoing: bool
    keys: np.ndarray
    value: np.ndarray
    usd: np.ndarray
    n_txs: np.ndarray
    first_height: np.ndarray
    last_height: np.ndarray
    tx: np.ndarray

    def __len__(self) -> int:
        return int(self.keys.shape[0])


def _ranges(first: np.ndarray, total: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of the rows owned by each of `ids` and each row's owner (store.graph)."""
    return owned_rows(first, total, ids)


def _group(keys_a: np.ndarray, keys_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order by (a, b) and the start index of each distinct (a, b) run."""
    order = np.lexsort((keys_b, keys_a))
    a, b = keys_a[order], keys_b[order]
    first = np.ones(a.shape[0], np.bool_)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return order, np.flatnonzero(first)


class FlowGraph:
    """The arrays and side data (clusters, attribution, CoinJoins, prices) of one data
    directory, opened once and reused by many expansions."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.store = Store.open(self.data_dir)
        s = self.store
        self.n_txs = s.counts["txs"]
        self.n_outputs = s.counts["outputs"]
        self.n_inputs = s.counts["inputs"]
        self.out_address = s.graph.output_address
        self.out_value = s.graph.output_value
        self.spent_by = s.graph.output_spent_by_tx
        self.first_output = s.graph.tx_first_output
        self.first_input = s.graph.tx_first_input
        self.in_address = s.graph.input_address
        self.in_spent = s.graph.input_spent_output
        self.tx_height = s.graph.tx_height
        self.block_time = s.graph.block_time
        self.clustered = read_manifest(self.data_dir) is not None
        # the published clustering, read where asked (never a copy of every address's id)
        self.clusters: Clusters | None = Clusters(self.data_dir) if self.clustered else None
        self.attribution = attributed_cluster_labels(self.data_dir)
        self.is_coinjoin, self.mixer = coinjoin_flags(self.data_dir, self.n_txs)
        self._usd_per_height: np.ndarray | None = None

    # ------------------------------------------------------------------------ resolving
    def address_id(self, address: str) -> int:
        return self.store.address_id(address)

    def tx_id(self, txid: str) -> int:
        if len(txid) != 64 or not set(txid.lower()) <= _HEX64:
            raise ChainsleuthError(f"not a txid (64 hex characters): {txid!r}")
        found = self.store.tx_id_of(txid.lower())
        if found is None:
            raise ChainsleuthError(f"transaction {txid} is not in the store")
        return int(found)

    def cluster_id(self, key: str | int) -> int:
        if self.clusters is None:
            raise ChainsleuthError("no clustering yet: run `chainsleuth cluster` first")
        text = str(key)
        if not text.isdigit():
            raise ChainsleuthError(f"no cluster {text} in this clustering")
        return self.clusters.resolve_cluster(int(text))  # a saved id's current cluster

    def cluster_of(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster ids of address ids (an address the clustering has not seen is its own)."""
        assert self.clusters is not None
        return self.clusters.clusters_of(np.asarray(address_ids, np.int64))

    def members(self, node: NodeRef) -> np.ndarray:
        """Address ids of an address or cluster node."""
        if node.kind == "address":
            return np.array([self.address_id(node.key)], np.int64)
        if node.kind == "cluster":
            cid = self.cluster_id(node.key)  # raises without a clustering
            assert self.clusters is not None
            return self.clusters.members(cid).astype(np.int64)  # O(the cluster)
        raise ChainsleuthError(f"{node.id} is a transaction, not an address or cluster")

    def _group_key(self, address_ids: np.ndarray, level: str) -> np.ndarray:
        if level == "cluster":
            return self.cluster_of(address_ids)
        return address_ids.astype(np.int64)

    # --------------------------------------------------------------------------- prices
    def usd_per_height(self) -> np.ndarray:
        """USD per BTC at each block height (the close of the block's UTC day; NaN if none)."""
        if self._usd_per_height is None:
            from chainsleuth.prices import resolve_prices

            close = resolve_prices(self.data_dir).load().close
            days = (self.block_time // 86400).astype(np.int64)
            rates = np.full(days.shape[0], np.nan)
            unique, inverse = np.unique(days, return_inverse=True)
            for k, day in enumerate(unique.tolist()):
                key = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
                if key in close:
                    rates[inverse == k] = close[key]
            self._usd_per_height = rates
        return self._usd_per_height

    def usd(self, value: np.ndarray, heights: np.ndarray) -> np.ndarray:
        """USD of satoshi amounts at the given heights."""
        return np.asarray(value, np.float64) / 1e8 * self.usd_per_height()[heights]

    # --------------------------------------------------------------------------- window
    def _in_window(self, tx: np.ndarray, lo: int | None, hi: int | None) -> np.ndarray:
        h = self.tx_height[tx]
        keep = np.ones(tx.shape[0], np.bool_)
        if lo is not None:
            keep &= h >= lo
        if hi is not None:
            keep &= h <= hi
        return keep

    def window(self, since: str | None, until: str | None) -> tuple[int | None, int | None]:
        """A `from`/`to` pair (heights or YYYY-MM-DD dates) as heights."""
        from chainsleuth.trace.rows import window_heights

        return window_heights(self.store, since, until)

    # ---------------------------------------------------------------------------- flows
    def flows(
        self, members: np.ndarray, direction: str, level: str, lo: int | None, hi: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tx, neighbour key, value) per distinct (tx, neighbour) between the address set
        `members` and its neighbours at `level`; value = what the receiving side got in it."""
        own = np.unique(self._group_key(members, level))
        outs = outputs_of_addresses(self.store, members)
        empty = np.zeros(0, np.int64)
        if direction == "out":
            spenders = self.spent_by[outs].astype(np.int64)
            txs = np.unique(spenders[(spenders != NONE) & (spenders < self.n_txs)])
            txs = txs[self._in_window(txs, lo, hi)]
            rows, owner = _ranges(self.first_output, self.n_outputs, txs)
            addr = self.out_address[rows].astype(np.int64)
            keep = addr != NONE
            tx, addr, value = txs[owner[keep]], addr[keep], self.out_value[rows[keep]]
            key = self._group_key(addr, level)
            keep = ~np.isin(key, own)
            tx, key, value = tx[keep], key[keep], value[keep]
            if tx.shape[0] == 0:
                return empty, empty, empty
            order, starts = _group(tx, key)
            return tx[order][starts], key[order][starts], np.add.reduceat(value[order], starts)
        creators = np.searchsorted(self.first_output, outs, side="right").astype(np.int64) - 1
        keep = self._in_window(creators, lo, hi)
        creators, got = creators[keep], self.out_value[outs[keep]]
        if creators.shape[0] == 0:
            return empty, empty, empty
        order = np.argsort(creators, kind="stable")
        creators, got = creators[order], got[order]
        starts = np.flatnonzero(np.concatenate(([True], creators[1:] != creators[:-1])))
        txs, received = creators[starts], np.add.reduceat(got, starts)
        rows, owner = _ranges(self.first_input, self.n_inputs, txs)
        addr = self.in_address[rows].astype(np.int64)
        keep = addr != NONE
        owner, key = owner[keep], self._group_key(addr[keep], level)
        keep = ~np.isin(key, own)
        owner, key = owner[keep], key[keep]
        if owner.shape[0] == 0:
            return empty, empty, empty
        order, starts = _group(owner, key)
        owner, key = owner[order][starts], key[order][starts]
        return txs[owner], key, received[owner]

    def _aggregate(
        self, node: NodeRef, kind: str, outgoing: bool, tx: np.ndarray, key: np.ndarray, value
    ) -> Expansion:
        """One edge per neighbour key: sums, counts, heights, the single tx of one-tx edges."""
        heights = self.tx_height[tx].astype(np.int64)
        usd = self.usd(value, heights)
        if key.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return Expansion(node, kind, outgoing, z, z, np.zeros(0), z, z, z, z)
        order = np.argsort(key, kind="stable")
        k, tx, value, usd, heights = key[order], tx[order], value[order], usd[order], heights[order]
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
        counts = np.diff(np.append(starts, k.shape[0]))
        sums = np.add.reduceat(value, starts)
        usd_sum = np.add.reduceat(usd, starts)
        first = np.minimum.reduceat(heights, starts)
        last = np.maximum.reduceat(heights, starts)
        single = np.where(counts == 1, tx[starts], -1)
        keys = k[starts]
        rank = np.lexsort((keys, -sums))
        return Expansion(
            node,
            kind,
            outgoing,
            keys[rank],
            sums[rank],
            usd_sum[rank],
            counts[rank],
            first[rank],
            last[rank],
            single[rank],
        )

    def expand(
        self,
        spec: str,
        direction: str,
        *,
        aggregate: bool = True,
        since: str | None = None,
        until: str | None = None,
        min_value: int = 0,
    ) -> Expansion:
        """Every neighbour of a node one hop away on the `direction` side ("in": where its
        money came from; "out": where it went).

        address/cluster with `aggregate`: address/cluster neighbours (edges summed over txs);
        without: the txs themselves (value = what the node put into the tx ("out") or got
        from it ("in")). tx: its input addresses ("in") or output addresses ("out"), summed per
        address. Edges under `min_value` satoshis are left out."""
        if direction not in DIRECTIONS:
            raise ChainsleuthError("direction is in or out")
        node = parse_node(spec)
        lo, hi = self.window(since, until)
        out = direction == "out"
        if node.kind == "tx":
            t = self.tx_id(node.key)
            if out:
                rows = np.arange(*self._span(self.first_output, self.n_outputs, t), dtype=np.int64)
                addr, value = self.out_address[rows].astype(np.int64), self.out_value[rows]
            else:
                rows = np.arange(*self._span(self.first_input, self.n_inputs, t), dtype=np.int64)
                addr = self.in_address[rows].astype(np.int64)
                spent = self.in_spent[rows]
                value = np.where(spent >= 0, self.out_value[np.maximum(spent, 0)], 0)
            keep = addr != NONE
            if not self._in_window(np.array([t]), lo, hi)[0]:
                keep[:] = False
            addr, value = addr[keep], value[keep].astype(np.int64)
            result = self._aggregate(node, "address", out, np.full(addr.shape[0], t), addr, value)
        elif aggregate:
            level = node.kind
            members = self.members(node)
            tx, key, value = self.flows(members, direction, level, lo, hi)
            result = self._aggregate(node, level, out, tx, key, value)
        else:
            members = self.members(node)
            outs = outputs_of_addresses(self.store, members)
            if out:
                tx = self.spent_by[outs].astype(np.int64)
                keep = (tx != NONE) & (tx < self.n_txs)
                tx, value = tx[keep], self.out_value[outs[keep]]
            else:
                tx = np.searchsorted(self.first_output, outs, side="right").astype(np.int64) - 1
                value = self.out_value[outs]
            keep = self._in_window(tx, lo, hi)
            tx, value = tx[keep], value[keep].astype(np.int64)
            result = self._aggregate(node, "tx", out, tx, tx.copy(), value)
        if min_value > 0:
            keep = result.value >= min_value
            for name in ("keys", "value", "usd", "n_txs", "first_height", "last_height", "tx"):
                setattr(result, name, getattr(result, name)[keep])
        return result

    @staticmethod
    def _span(first: np.ndarray, total: int, t: int) -> tuple[int, int]:
        hi = int(first[t + 1]) if t + 1 < first.shape[0] else total
        return int(first[t]), hi

    def relation(
        self, source: str, target: str, *, since: str | None = None, until: str | None = None
    ) -> dict[str, np.ndarray]:
        """The single txs behind the edge source → target (two addresses or two clusters):
        {"tx", "height", "value", "usd"} arrays in height (then tx) order."""
        a, b = parse_node(source), parse_node(target)
        if a.kind == "tx" or a.kind != b.kind:
            raise ChainsleuthError(
                "a relation is between two addresses or two clusters (expand a tx instead)"
            )
        lo, hi = self.window(since, until)
        want = self.cluster_id(b.key) if b.kind == "cluster" else self.address_id(b.key)
        tx, key, value = self.flows(self.members(a), "out", a.kind, lo, hi)
        keep = key == want
        tx, value = tx[keep], value[keep].astype(np.int64)
        order = np.argsort(tx, kind="stable")  # tx ids grow with height
        tx, value = tx[order], value[order]
        heights = self.tx_height[tx].astype(np.int64)
        return {"tx": tx, "height": heights, "value": value, "usd": self.usd(value, heights)}

    def address_txs(
        self, address: str, *, since: str | None = None, until: str | None = None
    ) -> dict[str, np.ndarray]:
        """Every tx of an address with what it received and sent in it, newest first:
        {"tx", "height", "received", "sent"} arrays."""
        aid = self.address_id(address)
        lo, hi = self.window(since, until)
        outs = outputs_of_addresses(self.store, [aid])
        made = np.searchsorted(self.first_output, outs, side="right").astype(np.int64) - 1
        spender = self.spent_by[outs].astype(np.int64)
        spent = (spender != NONE) & (spender < self.n_txs)
        tx = np.concatenate((made, spender[spent]))
        received = np.concatenate((self.out_value[outs], np.zeros(int(spent.sum()), np.int64)))
        sent = np.concatenate((np.zeros(outs.shape[0], np.int64), self.out_value[outs[spent]]))
        keep = self._in_window(tx, lo, hi)
        tx, received, sent = tx[keep], received[keep], sent[keep]
        if tx.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return {"tx": z, "height": z, "received": z, "sent": z}
        order = np.argsort(-tx, kind="stable")
        tx, received, sent = tx[order], received[order], sent[order]
        starts = np.flatnonzero(np.concatenate(([True], tx[1:] != tx[:-1])))
        tx = tx[starts]
        return {
            "tx": tx,
            "height": self.tx_height[tx].astype(np.int64),
            "received": np.add.reduceat(received, starts),
            "sent": np.add.reduceat(sent, starts),
        }

    def coinjoin_txs(self, spec: str) -> np.ndarray:
        """Tx ids of the CoinJoins (flagged by the cluster stage) an address or cluster took
        part in: it owns an output of the tx or spends into it. Ascending."""
        outs = outputs_of_addresses(self.store, self.members(parse_node(spec)))
        made = np.searchsorted(self.first_output, outs, side="right").astype(np.int64) - 1
        spender = self.spent_by[outs].astype(np.int64)
        spender = spender[(spender != NONE) & (spender < self.n_txs)]
        txs = np.unique(np.concatenate((made, spender)))
        found: np.ndarray = txs[self.is_coinjoin[txs]]
        return found

    # ---------------------------------------------------------------------------- nodes
    def txids(self, tx: np.ndarray) -> list[str]:
        return txid_hex(self.store, np.asarray(tx, np.int64))

    def time_of(self, heights: np.ndarray) -> list[str]:
        """ISO-8601 UTC time of the blocks at `heights`."""
        secs = self.block_time[np.asarray(heights, np.int64)]
        return [
            dt.datetime.fromtimestamp(int(s), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for s in secs.tolist()
        ]

    def describe(self, kind: str, keys: np.ndarray) -> list[dict[str, Any]]:
        """Node dicts (id, kind, label, category, entity, coinjoin, cluster_id, height) for
        address ids, tx ids or cluster ids."""
        keys = np.asarray(keys, np.int64)
        nodes: list[dict[str, Any]] = []
        if kind == "address":
            names = self.store.addresses(keys).to_pylist()
            clusters = (
                self.cluster_of(keys).tolist() if self.clusters is not None else [None] * len(names)
            )
            for name, cid in zip(names, clusters, strict=True):
                entity, category = (
                    self.attribution.get(cid, (None, None)) if cid is not None else (None, None)
                )
                nodes.append(
                    {
                        "id": f"address:{name}",
                        "kind": "address",
                        "label": name or "",
                        "category": category,
                        "entity": entity,
                        "coinjoin": False,
                        "cluster_id": None if cid is None else int(cid),
                        "height": None,
                    }
                )
        elif kind == "tx":
            txids = self.txids(keys)
            for t, txid in zip(keys.tolist(), txids, strict=True):
                cj = bool(self.is_coinjoin[t])
                nodes.append(
                    {
                        "id": f"tx:{txid}",
                        "kind": "tx",
                        "label": txid,
                        "category": "coinjoin" if cj else None,
                        "entity": self.mixer.get(t) if cj else None,
                        "coinjoin": cj,
                        "cluster_id": None,
                        "height": int(self.tx_height[t]),
                    }
                )
        else:
            for cid in keys.tolist():
                entity, category = self.attribution.get(cid, (None, None))
                nodes.append(
                    {
                        "id": f"cluster:{cid}",
                        "kind": "cluster",
                        "label": entity or f"cluster {cid}",
                        "category": category,
                        "entity": entity,
                        "coinjoin": False,
                        "cluster_id": int(cid),
                        "height": None,
                    }
                )
        return nodes

    def node(self, spec: str) -> dict[str, Any]:
        """The node dict of one node spec (checks that it exists)."""
        node = parse_node(spec)
        if node.kind == "tx":
            return self.describe("tx", np.array([self.tx_id(node.key)]))[0]
        if node.kind == "cluster":
            return self.describe("cluster", np.array([self.cluster_id(node.key)]))[0]
        return self.describe("address", np.array([self.address_id(node.key)]))[0]

    def edges(self, e: Expansion, lo: int, hi: int) -> tuple[list[dict[str, Any]], list[dict]]:
        """Node and edge dicts of rows lo:hi of an expansion (edges point the way money went)."""
        centre = self.node(e.node.id)["id"]
        nodes = self.describe(e.kind, e.keys[lo:hi])
        single = e.tx[lo:hi]
        txids = self.txids(single[single >= 0]) if (single >= 0).any() else []
        it = iter(txids)
        edges = []
        for k, n in enumerate(nodes):
            i = lo + k
            src, dst = (centre, n["id"]) if e.outgoing else (n["id"], centre)
            usd = float(e.usd[i])
            edge: dict[str, Any] = {
                "id": f"{src}->{dst}",
                "source": src,
                "target": dst,
                "value": int(e.value[i]),
                "usd": None if np.isnan(usd) else round(usd, 2),
                "n_txs": int(e.n_txs[i]),
                "first_height": int(e.first_height[i]),
                "last_height": int(e.last_height[i]),
                "txid": next(it) if single[k] >= 0 else None,
            }
            edges.append(edge)
        return nodes, edges
