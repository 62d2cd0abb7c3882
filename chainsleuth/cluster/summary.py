"""The cluster of one address as a person asks for it: size, value, first and last seen, and
the rules whose merges built it (`chainsleuth cluster-of`, notebooks); the same by cluster id,
a cluster's merges (its evidence) and a tx's change guess (the API's `clusters/{id}`, `txs/{txid}`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chainsleuth.cluster.engine import Clusters
from chainsleuth.store import lookups
from chainsleuth.store.store import Store

__all__ = [
    "cluster_merges",
    "cluster_summary",
    "cluster_summary_by_id",
    "explain_link",
    "tx_change",
]


def cluster_summary(data_dir: Path, address: str) -> dict[str, Any]:
    """Size, first/last seen, balance and the rules that built the cluster of an address."""
    store = Store.open(data_dir)
    clusters = Clusters(data_dir, random=True)
    address_id = store.address_id(address)
    cluster_id = int(clusters.cluster_of[address_id])
    return {"address": address, **_summary(store, clusters, cluster_id)}


def cluster_summary_by_id(data_dir: Path, cluster_id: int) -> dict[str, Any]:
    """`cluster_summary` by cluster id (a saved id resolves to the cluster it merged into):
    one pass over the cluster-of array, so it answers for a cluster of any size."""
    store = Store.open(data_dir)
    clusters = Clusters(data_dir, random=True)
    return _summary(store, clusters, clusters.resolve_cluster(int(cluster_id)))


def _summary(store: Store, clusters: Clusters, cluster_id: int) -> dict[str, Any]:
    members = clusters.members(cluster_id)
    outs = lookups.outputs_of_addresses(store, members)  # O(the cluster's outputs)
    values = store.rows("output_value", outs)  # the pages of these rows only (cold reads)
    spent = store.spent_by(outs) >= 0
    creating = store.lookup_index().txs_of_outputs(outs)  # through the fence: 2-3 pages each
    heights = store.rows("tx_height", creating)
    mine = _merges_of(store, clusters, cluster_id, members, outs)
    rules: dict[str, int] = {}
    if mine.num_rows:
        # counted in Arrow (a super-cluster has millions of merges): "change:<rules>" for a
        # change merge, else the rule; value_counts keeps the order of first appearance
        change = pc.binary_join_element_wise("change:", mine["change_rules"], "")
        key = pc.if_else(pc.is_null(mine["change_rules"]), mine["rule"], change)
        for row in pc.value_counts(key).to_pylist():
            rules[str(row["values"])] = int(row["counts"])
    return {
        "cluster_id": cluster_id,
        "size": int(members.shape[0]),
        "received": int(values.sum()),
        "balance": int(values[~spent].sum()),
        "n_outputs": int(outs.shape[0]),
        "first_seen_height": int(heights.min()) if heights.shape[0] else None,
        "last_seen_height": int(heights.max()) if heights.shape[0] else None,
        "rules": rules,
        "policy": clusters.manifest["policy"],
    }


def _merges_of(
    store: Store, clusters: Clusters, cluster_id: int, members: np.ndarray, outs: np.ndarray
) -> pa.Table:
    """The merges inside a cluster, in merge order. A merge happens in a tx that spends or
    creates a member's output, so only those txs' merges are read (O(the cluster)); of them,
    those whose first address is in the cluster (a payer's merges in a tx paying a member
    belong to the payer's cluster)."""
    return clusters.merges_in_txs(lookups.txs_of_outputs(store, outs), first_in=members)


def cluster_merges(data_dir: Path, cluster_id: int) -> pa.Table:
    """The merges (evidence) inside a cluster, in merge order: address_a_id, address_b_id,
    tx_id, txid, rule, change_rules, confidence. O(the cluster), not O(every merge)."""
    store = Store.open(data_dir)
    clusters = Clusters(data_dir, random=True)
    cid = clusters.resolve_cluster(int(cluster_id))
    members = clusters.members(cid)
    outs = lookups.outputs_of_addresses(store, members)
    return _merges_of(store, clusters, cid, members, outs)


def explain_link(data_dir: Path, address_a: int, address_b: int) -> list[dict[str, Any]] | None:
    """The shortest chain of merges linking two address ids (`chainsleuth explain`), each step
    with its address ids and, as `from` and `to`, its addresses; None when they are in
    different clusters. Reads the merges of their cluster only."""
    store = Store.open(data_dir)
    clusters = Clusters(data_dir, random=True)
    a, b = int(address_a), int(address_b)
    merges = None
    if clusters.cluster_of[a] == clusters.cluster_of[b] and a != b:
        merges = cluster_merges(data_dir, int(clusters.cluster_of[a]))
    steps = clusters.explain(a, b, merges)
    if steps:
        ids = np.array([s["to_address_id"] for s in steps] + [a], np.int64)
        names = store.addresses(ids).to_pylist()
        by_id = dict(zip(ids.tolist(), names, strict=True))
        for s in steps:
            s["from"] = by_id[s["from_address_id"]]
            s["to"] = by_id[s["to_address_id"]]
    return steps


def tx_change(data_dir: Path, txid: str) -> dict[str, Any] | None:
    """The clustering's change guess for a tx: {"vout", "address", "rule", "change_rules",
    "confidence"}, or None (no change merge in it, or no clustering). The change output is the
    tx's output paying the merge's address_b (the change side of a change merge)."""
    from chainsleuth.cluster.engine import clusters_dir, evidence_files, read_manifest

    manifest = read_manifest(data_dir)
    if manifest is None:
        return None
    store = Store.open(data_dir)
    tx_id = store.tx_id_of(txid.lower())
    if tx_id is None:
        return None
    wanted = np.array([tx_id], np.int64)
    names = evidence_files(manifest, "merges", wanted)
    files = [clusters_dir(data_dir) / f for f in names]
    if not files:
        return None
    # only the files whose tx range holds it; merges are in tx order, so row-group statistics
    # skip most of their groups
    found = pq.ParquetDataset(files, filters=[("tx_id", "=", int(tx_id))]).read()
    found = found.filter(pc.not_equal(found.column("rule"), "multi_input"))
    if found.num_rows == 0:
        return None
    row = found.slice(0, 1).to_pylist()[0]
    first = store.graph.tx_first_output
    lo = int(first[tx_id])
    hi = int(first[tx_id + 1]) if tx_id + 1 < first.shape[0] else store.counts["outputs"]
    out_address = store.graph.output_address[lo:hi].astype(np.int64)
    vouts = np.flatnonzero(out_address == int(row["address_b_id"]))
    return {
        "vout": int(vouts[0]) if vouts.shape[0] else None,
        "address": store.addresses([row["address_b_id"]])[0].as_py(),
        "rule": row["rule"],
        "change_rules": row["change_rules"],
        "confidence": row["confidence"],
    }
