"""Per-wallet reads of `service_entities`' links, scored by the truth (issue 11, hard_cospend).

`bench.entity_links` scores the links `trace.services.service_entities` makes; here the links
are read per wallet before entities are built: components first from the links a batch made
(a batch's change spent by the next batch), then per component the share of its multi-input
spends' inputs that a cluster outside it paid (`paid_in_counts`, as `deposit_cospenders` reads
it per name); links made by a tx that is not a batch into a component read as a co-spender are
dropped. Second read, by timing (`tx_height`): per batch cluster, the share of its links from
txs that are not batches whose output the batch spent 1-2 blocks after it was paid ("spent as
soon as it confirmed"); with (k, share) = at least k such links and at least that share, every
link into the cluster is dropped. Prints per world: links kept / dropped by each read,
same-owner and two-owner (each cluster's majority owner by the truth), the blocks from payment
to batch spend, the two-owner links left, and the largest entities' owners after the drop.
docs/accuracy-log.md "Service entities read per wallet before they are built".

    python -m bench.entity_variants --root /work/main/bench-output/accuracy hard-small-1

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
from bench.entity_links import _PERSON, entity_owners, service_links, world_clusters


def _entities(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clusters linked by (a, b) and the component (entity) of each."""
    from chainsleuth.trace import services as sv

    nodes = np.unique(np.concatenate([a, b]))
    comp = sv._components(np.searchsorted(nodes, a), np.searchsorted(nodes, b), nodes.shape[0])
    return nodes, nodes[comp]


def measure(name: str, root: Path = OUT, share: float = 0.4) -> dict[str, Any]:
    """Links of world `name` kept and dropped by the per-component co-spender read."""
    from chainsleuth.trace import services as sv

    base, store, cl, sh, majority = world_clusters(name, root)
    # the links as service_entities makes them, with the tx that made the linking output
    a, b, made, sh_spend = service_links(sh)
    same = np.array(
        [majority[x] == majority[y] for x, y in zip(a.tolist(), b.tolist(), strict=True)], np.bool_
    )
    from_batch = np.asarray(sh.batch[made], np.bool_)
    # components of the batch-made links
    ba, bb = a[from_batch], b[from_batch]
    nodes = np.unique(np.concatenate([ba, bb, b]))
    comp = np.arange(nodes.shape[0])
    if ba.shape[0]:
        comp = sv._components(
            np.searchsorted(nodes, ba), np.searchsorted(nodes, bb), nodes.shape[0]
        )
    _u, group = np.unique(comp, return_inverse=True)
    counts2 = sv.paid_in_counts(store, sh, nodes, group, int(group.max()) + 1)
    sh_ = counts2[:, 1] / np.maximum(counts2[:, 0], 1)
    cosp = (sh_ > share) & (counts2[:, 0] >= sv.COSPEND_MIN_INPUTS)
    b_comp = group[np.searchsorted(nodes, b)]
    drop = ~from_batch & cosp[b_comp]
    # truth of the components read as co-spenders
    comp_owner: dict[int, Counter[str]] = defaultdict(Counter)
    for c, g in zip(nodes.tolist(), group.tolist(), strict=True):
        o = majority[c]
        comp_owner[g]["person" if o.startswith(_PERSON) else o] += 1
    read = sorted(
        (
            (round(float(sh_[g]), 2), int(counts2[g, 0]), dict(comp_owner[g].most_common(3)))
            for g in np.flatnonzero(counts2[:, 0] >= sv.COSPEND_MIN_INPUTS).tolist()
        ),
        key=lambda r: -r[0],
    )
    largest = entity_owners(*_entities(a[~drop], b[~drop]), majority)[:3]
    height = np.asarray(store.graph.tx_height, np.int64)
    gap = height[sh_spend] - height[made]
    gaps = {
        k: dict(sorted(Counter(np.minimum(gap[m & ~from_batch], 9).tolist()).items()))
        for k, m in (("same", same), ("cross", ~same))
    }
    gaps_batch = {
        k: dict(sorted(Counter(np.minimum(gap[m & from_batch], 9).tolist()).items()))
        for k, m in (("same", same), ("cross", ~same))
    }
    # per spending cluster: its incoming non-batch links, and those paid 1-2 blocks before
    quick = (gap >= 1) & (gap <= 2) & ~from_batch
    nb = np.bincount(np.searchsorted(nodes, b)[~from_batch], minlength=nodes.shape[0])
    nq = np.bincount(np.searchsorted(nodes, b)[quick], minlength=nodes.shape[0])
    # per component (of the batch-made links) the same
    cb = np.bincount(b_comp[~from_batch], minlength=cosp.shape[0])
    cq = np.bincount(b_comp[quick], minlength=cosp.shape[0])

    def largest_after(dropped: np.ndarray) -> list[dict[str, int]]:
        top = entity_owners(*_entities(a[~dropped], b[~dropped]), majority)[:2]
        return [dict(m.most_common(5)) for m in top]

    bad = (nb >= 2) & (nq >= 0.8 * nb)
    quick_largest = largest_after(~from_batch & bad[np.searchsorted(nodes, b)])
    # ... and every link into such a cluster, the batch-made ones too
    d_all = bad[np.searchsorted(nodes, b)]
    quick_all = (int((same & d_all).sum()), int((~same & d_all).sum()))
    quick_all_largest = largest_after(d_all)
    all_variants = {}
    for k in (1, 2, 3):
        for f in (0.5, 0.6, 0.7, 0.8):
            bad_kf = (nb >= k) & (nq >= f * nb)
            d_kf = bad_kf[np.searchsorted(nodes, b)]
            all_variants[f"{k},{f}"] = (int((same & d_kf).sum()), int((~same & d_kf).sum()))
    index = {bytes(t[::-1]).hex(): i for i, t in enumerate(store.graph.tx_txid)}
    kind = np.full(sh.batch.shape[0], "", object)
    with open(base / "world" / "truth" / "txs.csv", newline="") as f:
        for r in csv.DictReader(f):
            i = index.get(r["txid"])
            if i is not None:
                kind[i] = r["kind"]
    ib = np.searchsorted(nodes, b)
    left = ~same & ~d_all
    cross_left = Counter(
        (
            str(k),
            "batch" if fb else "own",
            int(min(g, 9)),
            int(min(nb[i], 5)),
            round(nq[i] / max(nb[i], 1), 1),
        )
        for k, fb, g, i in zip(kind[made[left]], from_batch[left], gap[left], ib[left], strict=True)
    ).most_common(12)
    per_cluster = {}
    for k in (2, 3, 5):
        for f in (0.8, 0.9):
            bad = (nb >= k) & (nq >= f * nb)
            d = ~from_batch & bad[np.searchsorted(nodes, b)]
            badc = (cb >= k) & (cq >= f * cb)
            dc = ~from_batch & badc[b_comp]
            per_cluster[(k, f)] = (
                int((same & d).sum()),
                int((~same & d).sum()),
                int((same & dc).sum()),
                int((~same & dc).sum()),
            )
    return {
        "gaps": gaps,
        "gaps_batch": gaps_batch,
        "per_cluster": per_cluster,
        "quick_largest": quick_largest,
        "quick_all": quick_all,
        "all_variants": all_variants,
        "cross_left": cross_left,
        "quick_all_largest": quick_all_largest,
        "world": name,
        "links": int(a.shape[0]),
        "same_kept": int((same & ~drop).sum()),
        "same_dropped": int((same & drop).sum()),
        "cross_kept": int((~same & ~drop).sum()),
        "cross_dropped": int((~same & drop).sum()),
        "cross_from_batch": int((~same & from_batch).sum()),
        "read": read,
        "largest": [dict(m.most_common(6)) for m in largest],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("worlds", nargs="+")
    p.add_argument("--root", type=Path, default=OUT)
    p.add_argument("--share", type=float, default=0.4)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    for name in args.worlds:
        r = measure(name, args.root, args.share)
        print(
            f"{r['world']}: links {r['links']}; same-owner kept {r['same_kept']} dropped "
            f"{r['same_dropped']}; two-owner kept {r['cross_kept']} dropped {r['cross_dropped']} "
            f"(two-owner made by batches {r['cross_from_batch']})"
        )
        print(f"  non-batch links by blocks from made to batch spend (9 = 9+): {r['gaps']}")
        print(f"  batch-made links by blocks: {r['gaps_batch']}")
        print(
            f"  quick-read drops (k, share): (same, cross) per cluster, per component: {r['per_cluster']}"
        )
        print(f"  largest entities after the per-cluster quick read (2, 0.8): {r['quick_largest']}")
        print(
            f"  every link into such a cluster dropped: (same, cross) {r['quick_all']}; largest after {r['quick_all_largest']}"
        )
        print(f"  all-links drops (k,share): (same, cross): {r['all_variants']}")
        print(
            f"  two-owner links left (made-by kind, batch/own, gap, own links into b, quick share): {r['cross_left']}"
        )
        print(f"  largest entities after the component read: {r['largest']}")
        if args.verbose:
            for x in r["read"]:
                print(f"  component read: share {x[0]} of {x[1]} inputs: {x[2]}")


if __name__ == "__main__":
    main()
