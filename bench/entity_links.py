"""The `service_entities` links of a cached world scored by its truth (issue 11, hard_cospend).

`trace.services.service_entities` joins the input cluster of a tx to that of the batch that
spends the only one of its outputs any batch spends ("a batch's change spent by the next
batch"). When an exchange spends its customers' deposits straight in its batches
(`exchange_deposit_cospend_share`), every deposit it spends is such an output: the customer's
cluster is joined to the exchange's, and a sweeper's withdrawal to a co-spender's deposit hides
the sweeper's change (two outputs spent by batches: no link). Per world: the links, how many
join two owners (each cluster's majority owner by `truth/addresses.csv`) by the truth kind of
the tx that made the linking output, the largest entities' owners, and the withdrawal batches
per exchange by how many of their outputs batches spend (0 / 1 / 2+: 2+ makes no link).

    python -m bench.entity_links hard-small-1 hard_cospend-small-1

Reads the truth (bench code only). Writes nothing.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT
from bench.fragment_links import truth_owners

_PERSON = ("customer", "user", "merchant", "payer", "miner", "privacy", "maker")


def world_clusters(
    name: str, root: Path = OUT
) -> tuple[Path, Any, np.ndarray, Any, dict[int, str]]:
    """World `name` under `root`: its directory, store, cluster per address, tx shapes
    (`trace.services.tx_shapes`, CoinJoins flagged) and each cluster's majority owner by the
    truth."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.store.store import Store
    from chainsleuth.trace import services as sv
    from chainsleuth.trace.exposure import coinjoin_flags

    base = root / name
    owner_of = truth_owners(base)
    store = Store.open(base / "store")
    cl = np.asarray(Clusters(base / "store").cluster_of, np.int64)
    is_cj, _rules = coinjoin_flags(base / "store", store.counts["txs"])
    sh = sv.tx_shapes(store, cl, is_cj)
    assert sh is not None
    owners = np.array(
        [owner_of.get(a, "?") for a in store.addresses(np.arange(cl.shape[0])).to_pylist()],
        object,
    )
    order = np.argsort(cl, kind="stable")
    ids, starts = np.unique(cl[order], return_index=True)
    ends = np.append(starts[1:], order.shape[0])
    majority = {
        c: Counter(owners[order[s:e]].tolist()).most_common(1)[0][0]
        for c, s, e in zip(ids.tolist(), starts.tolist(), ends.tolist(), strict=True)
    }
    return base, store, cl, sh, majority


def service_links(sh: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The links `trace.services.service_entities` makes, from tx shapes `sh`: (the cluster
    that made the linking output, the cluster of the batch that spent it, the tx that made it,
    the batch tx that spent it). An output links its maker's cluster to the batch's when it is
    the only output of its tx that a batch spends, its tx is not a CoinJoin, and the two
    clusters differ."""
    spent_by = np.asarray(sh.spent_by).astype(np.int64)
    in_batch = np.zeros(spent_by.shape[0], np.bool_)
    in_batch[spent_by >= 0] = sh.batch[spent_by[spent_by >= 0]]
    outs = np.flatnonzero(in_batch)
    txs, counts = np.unique(sh.made_by[outs], return_counts=True)
    outs = outs[np.isin(sh.made_by[outs], txs[counts == 1])]
    made = sh.made_by[outs]
    link = (sh.spender[made] >= 0) & ~sh.coinjoin[made]
    a = sh.spender[made[link]].astype(np.int64)
    b = sh.spender[spent_by[outs[link]]].astype(np.int64)
    keep = (a >= 0) & (b >= 0) & (a != b)
    return a[keep], b[keep], made[link][keep], spent_by[outs[link]][keep]


def entity_owners(
    nodes: np.ndarray, entity: np.ndarray, majority: dict[int, str]
) -> list[Counter[str]]:
    """Per entity (`entity` of each cluster of `nodes`), its clusters' majority owners counted
    (every person's wallet as "person"), largest entity first."""
    members: dict[int, Counter[str]] = defaultdict(Counter)
    for c, e in zip(nodes.tolist(), entity.tolist(), strict=True):
        o = majority[c]
        members[e]["person" if o.startswith(_PERSON) else o] += 1
    return sorted(members.values(), key=lambda m: -sum(m.values()))


def measure(name: str, root: Path = OUT) -> dict[str, Any]:
    """The entity links of world `name` under `root`, scored by the truth."""
    from chainsleuth.trace import services as sv

    base, store, cl, sh, majority = world_clusters(name, root)
    index = {bytes(t[::-1]).hex(): i for i, t in enumerate(store.graph.tx_txid)}
    n_txs = sh.batch.shape[0]
    kind = np.full(n_txs, "", object)
    wallet = np.full(n_txs, "", object)
    with open(base / "world" / "truth" / "txs.csv", newline="") as f:
        for r in csv.DictReader(f):
            i = index.get(r["txid"])
            if i is not None:
                kind[i], wallet[i] = r["kind"], r["wallet_id"]
    spent_by = np.asarray(sh.spent_by).astype(np.int64)
    in_batch = np.zeros(spent_by.shape[0], np.bool_)
    in_batch[spent_by >= 0] = sh.batch[spent_by[spent_by >= 0]]
    per_tx = np.bincount(sh.made_by[in_batch], minlength=n_txs)
    withdrawals = np.flatnonzero((kind == "exchange_withdrawal") & np.asarray(sh.batch))
    by_exchange = {
        w: [int((per_tx[b] == 0).sum()), int((per_tx[b] == 1).sum()), int((per_tx[b] >= 2).sum())]
        for w in sorted(set(wallet[withdrawals].tolist()))
        for b in [withdrawals[wallet[withdrawals] == w]]
    }
    a, b, made, _ = service_links(sh)
    same = np.array(
        [majority[x] == majority[y] for x, y in zip(a.tolist(), b.tolist(), strict=True)], np.bool_
    )
    nodes, entity = sv.service_entities(sh)
    largest = entity_owners(nodes, entity, majority)[:3]
    return {
        "world": name,
        "links": int(a.shape[0]),
        "cross_owner": int((~same).sum()),
        "cross_by_kind": dict(Counter(kind[made[~same]].tolist()).most_common()),
        "largest_entities": [dict(m.most_common(6)) for m in largest],
        "withdrawal_batches_0_1_2plus": by_exchange,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("worlds", nargs="+")
    p.add_argument("--root", type=Path, default=OUT)
    args = p.parse_args()
    for name in args.worlds:
        r = measure(name, args.root)
        print(f"{r['world']}: links {r['links']}, joining two owners {r['cross_owner']}")
        print(f"  two owners, by the kind of tx that made the output: {r['cross_by_kind']}")
        print(f"  largest entities: {r['largest_entities']}")
        print(
            f"  withdrawal batches with 0 / 1 / 2+ outputs batches spend: {r['withdrawal_batches_0_1_2plus']}"
        )


if __name__ == "__main__":
    main()
