"""Candidate links that could lend an exchange's name to an untagged service, scored (issue 11).

For a world built by `bench.accuracy_matrix` (bench-output/accuracy/<profile>-<scale>-<seed>/:
world/, store/ clustered and tagged), the case's attribution is rebuilt the way
`cases.investigate.prepare_case` builds it up to the wallet styles (tags, service entities,
funder links, wallet styles), and each candidate link kind from a *named* exchange cluster to
an `unidentified_service` cluster X is counted and scored against the world's truth
(`truth/addresses.csv`: the owner of a cluster is the entity that owns most of its addresses;
a link is right when X's owner is the name it would lend):

- `change_spend`: the largest output of a named cluster's batch is spent by X (shipped,
  `trace.services.change_spend_links`);
- `change_spend_any`: another output of such a batch (not its largest) is spent by X;
- `change_spent_by_named`: the converse, X's batch whose largest output a named cluster
  spends (measured, not used);
- `pays_named`: X spends into a named cluster (a tx of X's with an output paying it);
- `sweeps_payout`: a sweep (3+ inputs, one payee) by X spends an output of a named batch.

Then the shipped rule (`cases.investigate._lend_by_change`: a label takes a name when its links
imply exactly one) is scored by the clusters and addresses it names, right and wrong.

    python -m bench.link_candidates hard-small-7 hard-medium-1
    python -m bench.link_candidates --json out.json hard-small-1

Writes nothing unless --json is given; prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"

Name = tuple[str | None, str]

#: The candidate link kinds, in the order of the table.
KINDS = ("change_spend", "change_spend_any", "change_spent_by_named", "pays_named", "sweeps_payout")


def _attribution_before_change(
    store_dir: Path, seeds_csv: Path, styles: bool = True
) -> dict[str, Any]:
    """The case's attribution after wallet styles (before them, without `styles`), before
    change spends; and the arrays."""
    from chainsleuth.cases import investigate as inv
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.cluster.layers import LayeredIds
    from chainsleuth.store.store import Store
    from chainsleuth.trace import services as sv
    from chainsleuth.trace.exposure import attributed_cluster_labels

    store = Store.open(store_dir)
    clusters = Clusters(store_dir)
    ids = clusters.cluster_of
    cluster_of: Any = ids.indexable() if isinstance(ids, LayeredIds) else np.asarray(ids, np.int64)
    chain = inv.ChainLookups(store, {})
    seed_ids = inv._seed_ids(store, inv._read_seeds(seeds_csv))
    service, _seed, _wallet = inv._service_clusters(store, chain, cluster_of, seed_ids)
    service_mask = np.zeros(max(cluster_of.shape[0], 1), np.bool_)
    service_mask[service] = True
    attribution = {
        c: v
        for c, v in attributed_cluster_labels(store_dir).items()
        if 0 <= c < cluster_of.shape[0] and not service_mask[c]
    }
    is_coinjoin, _mixer = inv._coinjoins(store_dir, store.counts["txs"])
    shapes = sv.tx_shapes(store, cluster_of, is_coinjoin)
    stats = sv.service_stats(shapes, cluster_of)
    entities = sv.service_entities(shapes, sv.small_batch_links(store, shapes))
    hot = sv.hot_change_links(shapes, cluster_of, stats)
    tags = dict(attribution)
    inv._attribute_services(attribution, stats, entities, service_mask, hot)
    inv._lend_to_funders(shapes, cluster_of, attribution, tags, service_mask)
    if styles:
        inv._lend_by_style(store, shapes, cluster_of, attribution)
    return {
        "store": store,
        "cluster_of": cluster_of,
        "attribution": attribution,
        "shapes": shapes,
        "service_mask": service_mask,
    }


def _owners(store: Any, cluster_of: Any, world: Path, clusters: np.ndarray) -> dict[int, str]:
    """Majority owner (truth entity, else wallet id) of each of `clusters`."""
    with open(world / "truth" / "addresses.csv", newline="") as f:
        owner_of = {r["address"]: r["entity"] or r["wallet_id"] for r in csv.DictReader(f)}
    clusters = np.unique(np.asarray(clusters, np.int64))
    members = np.flatnonzero(np.isin(np.asarray(cluster_of[:], np.int64), clusters))
    names = store.addresses(members).to_pylist()
    tally: dict[int, dict[str, int]] = {}
    for a, x in zip(members.tolist(), names, strict=True):
        c = int(cluster_of[a])
        o = owner_of.get(x, "?")
        tally.setdefault(c, {})[o] = tally.setdefault(c, {}).get(o, 0) + 1
    return {c: max(t.items(), key=lambda kv: kv[1])[0] for c, t in tally.items()}


def _links(state: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(named cluster, X) pairs of each candidate kind."""
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE
    from chainsleuth.trace import services as sv

    shapes, attribution, mask = state["shapes"], state["attribution"], state["service_mask"]
    cluster_of = state["cluster_of"]
    named = np.array(
        sorted(c for c, v in attribution.items() if v[1] in EXCHANGE_CATEGORIES), np.int64
    )
    unident = np.array(
        sorted(c for c, v in attribution.items() if v[1] == UNIDENTIFIED_SERVICE and not mask[c]),
        np.int64,
    )
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out["change_spend"] = sv.change_spend_links(state["store"], shapes, named, unident)
    a_all, x_all = sv.change_spend_links(state["store"], shapes, named, unident, largest_only=False)
    # the any-output links less the largest-output ones (as a multiset of pairs)
    pairs: dict[tuple[int, int], int] = {}
    for a, x in zip(*out["change_spend"], strict=True):
        pairs[(int(a), int(x))] = pairs.get((int(a), int(x)), 0) + 1
    rest_a, rest_x = [], []
    for a, x in zip(a_all.tolist(), x_all.tolist(), strict=True):
        if pairs.get((a, x), 0) > 0:
            pairs[(a, x)] -= 1
            continue
        rest_a.append(a)
        rest_x.append(x)
    out["change_spend_any"] = (np.array(rest_a, np.int64), np.array(rest_x, np.int64))
    # the converse: X's batch whose largest output a named cluster spends (as (named, X))
    x_rev, a_rev = sv.change_spend_links(state["store"], shapes, unident, named)
    out["change_spent_by_named"] = (a_rev, x_rev)

    def member(sorted_ids: np.ndarray, x: np.ndarray) -> np.ndarray:
        if sorted_ids.shape[0] == 0:
            return np.zeros(x.shape[0], np.bool_)
        pos = np.minimum(np.searchsorted(sorted_ids, x), sorted_ids.shape[0] - 1)
        hit: np.ndarray = sorted_ids[pos] == x
        return hit

    pays_a, pays_x, sweep_a, sweep_x = [], [], [], []
    sweep = (shapes.n_inputs >= sv.SWEEP_MIN_INPUTS) & (shapes.n_payees == 1) & ~shapes.coinjoin
    spender = np.asarray(shapes.spender, np.int64)
    for _t0, _t1, lo, hi, made in shapes.tx_slices():
        payable = shapes.payable[lo:hi]
        addr = np.asarray(shapes.output_address[lo:hi]).astype(np.int64)
        receiver = np.full(hi - lo, -1, np.int64)
        receiver[payable] = np.asarray(cluster_of[addr[payable]], np.int64)
        payer = spender[made]
        # X pays a named cluster
        link = payable & member(unident, payer) & member(named, receiver) & ~shapes.coinjoin[made]
        pays_a.append(receiver[link])
        pays_x.append(payer[link])
        # a sweep by X spends an output of a named batch
        by = np.asarray(shapes.spent_by[lo:hi]).astype(np.int64)
        link = payable & (by >= 0) & shapes.batch[made] & member(named, payer)
        link[link] = sweep[by[link]]
        sweeper = np.where(link, spender[np.maximum(by, 0)], -1)
        link &= member(unident, sweeper) & (sweeper != payer)
        sweep_a.append(payer[link])
        sweep_x.append(sweeper[link])
    out["pays_named"] = (np.concatenate(pays_a), np.concatenate(pays_x))
    out["sweeps_payout"] = (np.concatenate(sweep_a), np.concatenate(sweep_x))
    return out


def measure(name: str, root: Path = OUT) -> dict[str, Any]:
    """Score every candidate link kind and the shipped rule on one built world."""
    from chainsleuth.cases.investigate import _lend_by_change

    world, store_dir = root / name / "world", root / name / "store"
    state = _attribution_before_change(store_dir, world / "seeds" / "deposits.csv")
    attribution: dict[int, Name] = state["attribution"]
    links = _links(state)
    before = dict(attribution)
    lent = _lend_by_change(state["store"], state["shapes"], attribution, state["service_mask"])
    involved = np.unique(
        np.concatenate([np.concatenate([a, x]) for a, x in links.values()] + [lent])
    )
    owner = _owners(state["store"], state["cluster_of"], world, involved)
    result: dict[str, Any] = {"world": name, "kinds": {}}
    for kind, (a, x) in links.items():
        right = sum(
            owner.get(int(xi)) == before[int(ai)][0]
            for ai, xi in zip(a.tolist(), x.tolist(), strict=True)
        )
        result["kinds"][kind] = {"links": int(a.shape[0]), "right": int(right)}
    all_ids = np.asarray(state["cluster_of"][:], np.int64)
    in_lent = all_ids[np.isin(all_ids, lent)]
    sizes = np.bincount(np.searchsorted(lent, in_lent), minlength=lent.shape[0])
    right_c = np.array([owner.get(int(c)) == attribution[int(c)][0] for c in lent.tolist()], bool)
    result["rule"] = {
        "clusters_right": int(right_c.sum()),
        "clusters_wrong": int((~right_c).sum()),
        "clusters_right_addresses": int(sizes[right_c].sum()),
        "clusters_wrong_addresses": int(sizes[~right_c].sum()),
    }
    return result


def render(results: list[dict[str, Any]]) -> str:
    kinds = list(KINDS)
    head = " | ".join(f"{k} right/links" for k in kinds)
    lines = [
        f"| world | {head} | rule: clusters right/wrong |",
        "|---|" + "---|" * (len(kinds) + 1),
    ]
    for r in results:
        cells = [f"{r['kinds'][k]['right']}/{r['kinds'][k]['links']}" for k in kinds]
        rule = r["rule"]
        cells.append(f"{rule['clusters_right']}/{rule['clusters_wrong']}")
        lines.append(f"| {r['world']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+", help="<profile>-<scale>-<seed> under bench-output")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    for name in args.worlds:
        r = measure(name)
        out(json.dumps(r))
        results.append(r)
    out(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
