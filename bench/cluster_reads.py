"""Cold `cluster-of`, a cluster's merges and `explain` on clustered stores of increasing size.

    python -m bench.cluster_reads STORE [STORE ...] [--n 40] [--out FILE.json]

Each STORE is a clustered data directory (e.g. `bench-output/accuracy/hard-large-1/store`).
For each, `--n` clusters of 2 to 1,000 addresses are drawn at random (seed 1); each call is
timed cold (every file of the store evicted from the page cache first, the store opened anew,
as a fresh `chainsleuth cluster-of ADDR` process would):

- `summary`: `cluster.summary.cluster_summary_by_id` (members, outputs, balance, the rules);
- `merges`: `cluster.summary.cluster_merges` (the API's `clusters/{id}/merges`);
- `explain`: `cluster.summary.explain_link` between the cluster's smallest and largest ids;
- `scan` (the baseline, what these did before): the members by a pass over every cluster id
  (`np.asarray(cluster_of) == cid`) plus every merge read and filtered to the cluster.

Prints one JSON object (and writes it to `--out`). Bench code: reads the stores, writes nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import evict, quantiles


def _cold(data: Path, call: Any) -> float:
    evict(data)
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(data: Path, n: int) -> dict[str, Any]:
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.cluster.summary import cluster_merges, cluster_summary_by_id, explain_link
    from chainsleuth.store.store import Store

    ids = np.asarray(Clusters(data).cluster_of)
    sizes = np.bincount(ids)
    pool = np.flatnonzero((sizes >= 2) & (sizes <= 1000))
    rng = np.random.default_rng(1)
    picked = rng.choice(pool, size=min(n, pool.shape[0]), replace=False).tolist()
    members = {cid: np.flatnonzero(ids == cid) for cid in picked}
    del ids

    def scan(cid: int) -> None:
        clusters = Clusters(data)
        inside = np.asarray(clusters.cluster_of) == cid
        every = clusters.merges()
        np.flatnonzero(inside[every.column("address_a_id").to_numpy()])

    timings: dict[str, list[float]] = {"summary": [], "merges": [], "explain": [], "scan": []}
    for cid in picked:
        a, b = int(members[cid][0]), int(members[cid][-1])
        timings["summary"].append(_cold(data, lambda c=cid: cluster_summary_by_id(data, c)))
        timings["merges"].append(_cold(data, lambda c=cid: cluster_merges(data, c)))
        timings["explain"].append(_cold(data, lambda a=a, b=b: explain_link(data, a, b)))
        timings["scan"].append(_cold(data, lambda c=cid: scan(c)))
    store = Store.open(data)
    clusters = Clusters(data)
    return {
        "store": str(data),
        "txs": store.counts["txs"],
        "addresses": store.counts["addresses"],
        "n_merges": int(clusters.merges().num_rows),
        "clusters_timed": len(picked),
        "median_cluster_size": float(np.median(sizes[picked])) if picked else 0.0,
        **{k: quantiles(v) for k, v in timings.items() if v},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"runs": [measure(s, args.n) for s in args.stores]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
