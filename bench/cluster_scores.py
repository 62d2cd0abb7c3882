"""Pairwise clustering precision and recall of the clustering saved in cached worlds' stores.

`python -m bench.cluster_scores WORLD_DIR [WORLD_DIR ...]` scores each `WORLD_DIR/store`'s
clustering (as it is: nothing is re-clustered) against `WORLD_DIR/world/truth/addresses.csv`
(owners are wallets, as in `bench.cluster_accuracy`), over every address the truth knows, and
over the exchanges' addresses alone (recall, the clusters they fall into, and the clusters
holding two exchanges). One line per world, tab-separated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.cluster_accuracy import truth_owners
from chainsleuth.cluster.engine import Clusters
from chainsleuth.cluster.evaluate import score, two_exchange_clusters
from chainsleuth.store.store import Store


def world_scores(world: Path) -> dict[str, float]:
    store = Store.open(world / "store")
    address_ids, owners, exchange = truth_owners(world / "world", store)
    predicted = np.asarray(Clusters(world / "store").cluster_of)[address_ids]
    s = score(predicted, owners)
    ex = score(predicted[exchange], owners[exchange])
    coinjoins = store.sql("SELECT rule, count(*) AS n FROM cluster_coinjoins GROUP BY rule")
    flags = {r["rule"]: r["n"] for r in coinjoins.to_pylist()}
    return {
        "pairwise_precision": s.pairwise_precision,
        "pairwise_recall": s.pairwise_recall,
        "bcubed_recall": s.bcubed_recall,
        "exchange_pairwise_recall": ex.pairwise_recall,
        "exchange_clusters": ex.clusters,
        "two_exchange_clusters": two_exchange_clusters(predicted, owners, exchange),
        "equal_output_flags": flags.get("equal_output", 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("worlds", nargs="+", type=Path)
    args = ap.parse_args()
    header = None
    for world in args.worlds:
        row = world_scores(world)
        if header is None:
            header = ["world", *row]
            print("\t".join(header))
        print("\t".join([world.name, *(f"{v:.6f}" if isinstance(v, float) else str(v)
                                       for v in row.values())]), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
