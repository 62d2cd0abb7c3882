"""Clustering benchmark: chainsleuth's multi-input clustering against scipy and networkx.

All three cluster the same edges: for every transaction the clusterer does not flag as a
CoinJoin, its first input address is joined to each other input address. Two comparisons:

- like for like: chainsleuth's union-find (`ranges.union_edges_parallel`, then
  `ranges.flatten_parallel` to a cluster id per address) and scipy's connected_components,
  both handed the same ready-made edge list (scipy's time includes building its CSR matrix,
  ours building the parent array);
- end to end: chainsleuth's clusterer (`process_range`: the CoinJoin analysis, the merges in
  chain order with their evidence rows, then the flatten) from the store's arrays, against
  scipy with the edge list built from the same arrays (numpy; the CoinJoin flags handed over).

networkx gets the edges ready-made. Every partition is checked equal to scipy's (assert).
Each measurement runs in this process after a warm-up; the chainsleuth and scipy runs
alternate, REPEATS times each, and the medians of wall and CPU seconds are reported.
chainsleuth runs with 1 thread and with every thread numba is given (`NUMBA_NUM_THREADS`,
default the CPUs; the analysis, the union-find on an edge list and the flatten are split over
them, the merges with evidence are sequential): the scaling from 1 to 2 cores.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from chainsleuth.cluster.ranges import (
    UnionFind,
    flatten_parallel,
    process_range,
    union_edges_parallel,
)
from chainsleuth.cluster.rules import POLICIES, Policy
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.store import Store

NO_GUARD = Policy("multi_input_unguarded", large_cluster=2**31 - 1, growth_factor=2**31 - 1)
REPEATS = 5  # alternating runs of chainsleuth and scipy; medians reported


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def _edges(arrays: ChainGraph, coinjoin_tx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-input edges (first input address, other input address), CoinJoins left out."""
    n_tx = arrays.n_txs
    first_in = arrays.tx_first_input
    in_tx = np.repeat(np.arange(n_tx), np.diff(np.append(first_in, arrays.n_inputs)))
    addr = arrays.input_address.astype(np.int64)
    addr[addr == 0xFFFFFFFF] = -1
    is_cj = np.zeros(n_tx, bool)
    is_cj[coinjoin_tx] = True
    anchor = addr[first_in[in_tx]]
    keep = (addr >= 0) & (anchor >= 0) & ~is_cj[in_tx] & (addr != anchor)
    return anchor[keep], addr[keep]


def _smallest_member(labels: np.ndarray) -> np.ndarray:
    """Each element's smallest index with the same label: the cluster ids chainsleuth gives
    (a cluster's id is its smallest address id), from any labelling (scipy's are dense)."""
    _, first, dense = np.unique(labels, return_index=True, return_inverse=True)
    return np.asarray(first, np.int64)[dense]


def run(store_dir: Path, networkx_edge_limit: int = 3_000_000) -> dict[str, Any]:
    """Measure clustering on the store at `store_dir`; returns figures for the report."""
    import networkx as nx
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    store = Store.open(store_dir)
    arrays = store.graph
    n_tx, n_addr = arrays.n_txs, store.counts["addresses"]

    # Warm up numba (compiled code is cached on disk, loading it still costs time).
    process_range(arrays, UnionFind.singletons(n_addr), NO_GUARD, 0, min(n_tx, 100))

    def ours() -> tuple[Any, np.ndarray]:
        unions = UnionFind.singletons(n_addr)
        result = process_range(arrays, unions, NO_GUARD, 0, n_tx)
        labels = np.empty(n_addr, np.int64)
        flatten_parallel(unions.parent, labels)
        return result, labels

    def union_find(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        parent = np.arange(n_addr, dtype=np.uint32)
        union_edges_parallel(a, b, parent)
        labels = np.empty(n_addr, np.int64)
        flatten_parallel(parent, labels)
        return labels

    def scipy_cc(a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
        graph = sp.coo_matrix((np.ones(a.shape[0], np.int8), (a, b)), shape=(n_addr, n_addr))
        n, labels = connected_components(graph.tocsr(), directed=False)
        return int(n), labels

    def timed(f: Any, *args: Any) -> tuple[Any, float, float]:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        out = f(*args)
        wall = time.perf_counter() - started
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        return out, wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime

    all_threads = max(1, int(numba.config.NUMBA_NUM_THREADS))
    thread_counts = sorted({1, all_threads})
    (result, ours_labels), _, _ = timed(ours)
    coinjoin_tx = result.coinjoin_tx
    a, b = _edges(arrays, coinjoin_tx)
    union_find(a[:1000], b[:1000])  # warm-up
    n_scipy, scipy_labels = scipy_cc(a, b)
    expected = _smallest_member(scipy_labels)  # scipy's partition as chainsleuth's ids
    runs: dict[str, list[tuple[float, float]]] = {"scipy": [], "scipy_edges": []}
    runs.update({f"ours_{n}": [] for n in thread_counts})
    runs.update({f"uf_{n}": [] for n in thread_counts})
    for _ in range(REPEATS):
        for n in thread_counts:
            # numba is given n threads for these runs (read by cluster.ranges.threads(); no
            # numba parallel region runs in this process, so changing it is safe here)
            numba.config.NUMBA_NUM_THREADS = n
            (_, ours_labels), wall, cpu = timed(ours)
            runs[f"ours_{n}"].append((wall, cpu))
            uf_labels, wall, cpu = timed(union_find, a, b)
            runs[f"uf_{n}"].append((wall, cpu))
            # scipy's exact partition, on every run (the union-find's threads race; see
            # ranges.union_edges_parallel), with each cluster's id its smallest address id
            assert np.array_equal(uf_labels, expected), f"union-find, {n} threads"
            assert np.array_equal(ours_labels, expected), f"end to end, {n} threads"
        numba.config.NUMBA_NUM_THREADS = all_threads
        (n_scipy, scipy_labels), wall, cpu = timed(scipy_cc, a, b)
        runs["scipy"].append((wall, cpu))
        _, wall, cpu = timed(lambda: scipy_cc(*_edges(arrays, coinjoin_tx)))
        runs["scipy_edges"].append((wall, cpu))
    med = {k: _median([w for w, _ in v]) for k, v in runs.items()}
    med_cpu = {k: _median([c for _, c in v]) for k, v in runs.items()}
    ours_seconds = med[f"ours_{all_threads}"]
    uf_seconds = med[f"uf_{all_threads}"]
    scipy_seconds = med["scipy"]

    n_nx_edges = min(a.shape[0], networkx_edge_limit)
    started = time.perf_counter()
    n_nx = 0
    if n_nx_edges:  # 0: networkx left out (a quicker run)
        g = nx.Graph()
        g.add_nodes_from(range(n_addr))
        g.add_edges_from(zip(a[:n_nx_edges].tolist(), b[:n_nx_edges].tolist(), strict=True))
        n_nx = nx.number_connected_components(g)
        del g
    nx_seconds = time.perf_counter() - started

    # Incremental: the last ~4,000 transactions as one update, after clustering the rest.
    block_txs = min(4000, max(n_tx // 2, 1))
    split = n_tx - block_txs
    unions = UnionFind.singletons(n_addr)
    process_range(arrays, unions, POLICIES["conservative"], 0, split)
    started = time.perf_counter()
    process_range(arrays, unions, POLICIES["conservative"], split, n_tx)
    incremental_ms = (time.perf_counter() - started) * 1000

    # Memory per address of the clusterer's state (parent, size, attribution).
    state_bytes = unions.parent.nbytes + unions.size.nbytes + unions.attribution.nbytes
    return {
        "txs": n_tx,
        "addresses": n_addr,
        "edges": int(a.shape[0]),
        "ours_seconds": ours_seconds,
        "ours_tx_per_s": n_tx / ours_seconds,
        "threads": all_threads,
        "ours_seconds_by_threads": {n: med[f"ours_{n}"] for n in thread_counts},
        "union_find_seconds": uf_seconds,
        "union_find_seconds_by_threads": {n: med[f"uf_{n}"] for n in thread_counts},
        "union_find_speedup_vs_scipy": scipy_seconds / uf_seconds,
        "cpu_seconds": med_cpu,
        "runs": runs,
        "scipy_seconds": scipy_seconds,
        "scipy_with_edges_seconds": med["scipy_edges"],
        "speedup_vs_scipy_with_edges": med["scipy_edges"] / ours_seconds,
        "networkx_seconds": nx_seconds,
        "networkx_edges": n_nx_edges,
        # asserted on every run above; networkx's only by count
        "same_partition_as_scipy": True,
        "clusters_ours": int(np.unique(ours_labels).shape[0]),
        "clusters_scipy": int(n_scipy),
        "clusters_networkx": int(n_nx),
        "speedup_vs_scipy": scipy_seconds / ours_seconds,
        "speedup_vs_networkx": (nx_seconds * a.shape[0] / max(n_nx_edges, 1)) / ours_seconds,
        "incremental_txs": block_txs,
        "incremental_ms": incremental_ms,
        "state_bytes_per_address": state_bytes / max(n_addr, 1),
        "load_average": os.getloadavg(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a store directory (DATA)")
    parser.add_argument(
        "--networkx-edges",
        type=int,
        default=3_000_000,
        help="edges handed to networkx (0: leave networkx out)",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.store, args.networkx_edges), indent=2))


if __name__ == "__main__":
    main()
