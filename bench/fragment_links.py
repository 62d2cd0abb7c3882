"""Links that could name an unnamed fragment of an exchange's wallet, scored (issue 11).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/: world/ with its
truth, store/ clustered and tagged, case/ investigated), the case's attribution is rebuilt as
`cases.investigate.prepare_case` builds it before any change link (`_lend_by_change` left out),
and each candidate link between an `unidentified_service` label L and a named exchange
cluster N is read from the chain and scored against the truth (`truth/addresses.csv`: a link
is right when L's majority owner is N's name; "labels": the labels whose links of that kind
imply exactly one name, as `_lend_by_change` lends; "misses": the `unident_own` misses of
`bench.recall_misses` in the case under `--root` that the kind would name right). One round.

- `change_return`: shipped before (`trace.services.change_spend_evidence`, swapped);
- `change_return_3`: the same from 3-5-payee payouts too (not used: one wrong link);
- `payout_any_spend`: any output of L's 3+-payee payout of its coin's script type, spent by N
  in a tx of 2+ payees (not used: N's forwards of deposits L paid);
- `payout_cospend`: the same, N's spend of 2+ inputs (shipped,
  `trace.services.payout_cospend_evidence`);
- `sweep_into`: N's sweep (3+ inputs, one payee) whose coin L spends in 2+ payees (shipped,
  `trace.services.sweep_into_evidence`);
- `sweep_return`: L's sweep whose coin N spends in 2+ payees (measured).

Then the shipped rules' outcome (this code's `prepare_case`, every round): the clusters named
by each fragment link, right by their majority owner, and their addresses.

    python -m bench.fragment_links hard-small-12 hard-small-1
    python -m bench.fragment_links --root /work/main/bench-output/accuracy --json out.json hard-small-3

Reads the truth (bench code only). Writes nothing unless --json.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT, world_parser
from bench.fund_links import _rows, case_before_change_links, unident_own

KINDS = (
    "change_return",
    "change_return_3",
    "payout_any_spend",
    "payout_cospend",
    "sweep_into",
    "sweep_return",
)


def _owners(store: Any, cl: np.ndarray, clusters: np.ndarray, owner_of: dict[str, str]) -> Any:
    """Per cluster of `clusters`: a Counter of its addresses' owners."""
    member = np.flatnonzero(np.isin(cl, clusters))
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for a, x in zip(member.tolist(), store.addresses(member).to_pylist(), strict=True):
        tally[int(cl[a])][owner_of.get(x, "?")] += 1
    return tally


def truth_owners(base: Path) -> dict[str, str]:
    """Address -> its owner (entity, else wallet id) by the world's truth under `base`."""
    return {
        r["address"]: r["entity"] or r["wallet_id"]
        for r in _rows(base / "world" / "truth" / "addresses.csv")
    }


def before_change_links(base: Path, owner_of: dict[str, str]) -> Any:
    """The case of the world under `base` as `prepare_case` builds it before any change link
    (`_lend_by_change` left out), with what the link readers take: (setup, store,
    attribution, cluster_of, shapes, named exchange clusters, `unidentified_service`
    candidates, each candidate label's majority owner by `owner_of`)."""
    from types import SimpleNamespace

    from chainsleuth.cases import investigate as inv
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE
    from chainsleuth.trace import services as sv

    before = case_before_change_links(base)
    store, att = before.store, before.attribution
    cl = np.asarray(before.cluster_of[:], np.int64)
    is_cj, _mixer = inv._coinjoins(base / "store", store.counts["txs"])
    shapes = sv.tx_shapes(store, before.cluster_of, is_cj)
    named = np.array(sorted(c for c, v in att.items() if v[1] in EXCHANGE_CATEGORIES), np.int64)
    cand = np.array(
        sorted(
            c for c, v in att.items() if v[1] == UNIDENTIFIED_SERVICE and not before.service_mask[c]
        ),
        np.int64,
    )
    lab_tally: dict[Any, Counter[str]] = defaultdict(Counter)
    for c, t in _owners(store, cl, cand, owner_of).items():
        lab_tally[att[c]].update(t)
    return SimpleNamespace(
        setup=before,
        store=store,
        attribution=att,
        cluster_of=cl,
        shapes=shapes,
        named=named,
        candidates=cand,
        label_owner={k: v.most_common(1)[0][0] for k, v in lab_tally.items()},
    )


def measure(name: str, root: Path = OUT) -> dict[str, Any]:
    from chainsleuth.cases import investigate as inv
    from chainsleuth.cases.rows import FRAGMENT_LINKS
    from chainsleuth.trace import services as sv

    base = root / name
    seeds = base / "world" / "seeds" / "deposits.csv"
    owner_of = truth_owners(base)
    res: dict[str, Any] = {"world": name}
    # the shipped rules' outcome, every round
    setup = inv.prepare_case(base / "store", seeds)
    cl = np.asarray(setup.cluster_of[:], np.int64)
    for kind in FRAGMENT_LINKS:
        got = setup.fragment_clusters.get(kind, np.zeros(0, np.int64))
        tally = _owners(setup.store, cl, got, owner_of)
        name_of = {c: setup.attribution[c][0] for c in tally}
        res["shipped " + kind] = {
            "clusters": len(tally),
            "clusters_right": sum(t.most_common(1)[0][0] == name_of[c] for c, t in tally.items()),
            "addresses": sum(sum(t.values()) for t in tally.values()),
            "addresses_right": sum(t[name_of[c]] for c, t in tally.items()),
        }
    # the candidate links, one round, on the attribution before any change link
    b = before_change_links(base, owner_of)
    store, att, shapes, named, cand, lab_owner = (
        b.store,
        b.attribution,
        b.shapes,
        b.named,
        b.candidates,
        b.label_owner,
    )
    misses = [(ex, b.setup.lead_attribution.get(c)) for _d, ex, c in unident_own(name, root)]
    sweeps = (
        (np.asarray(shapes.n_inputs) >= sv.SWEEP_MIN_INPUTS)
        & (np.asarray(shapes.n_payees) == 1)
        & ~np.asarray(shapes.coinjoin)
    )
    small = dataclasses.replace(shapes, batch=shapes.small_batch)
    ev = sv.change_spend_evidence
    links = {  # kind -> (named, label cluster) arrays
        "change_return": ev(store, shapes, cand, named)[1::-1],
        "change_return_3": ev(store, small, cand, named)[1::-1],
        "payout_any_spend": ev(store, shapes, cand, named, False, payouts=shapes.small_batch)[
            1::-1
        ],
        "payout_cospend": sv.payout_cospend_evidence(store, shapes, cand, named)[1::-1],
        "sweep_into": sv.sweep_into_evidence(store, shapes, named, cand)[:2],
        "sweep_return": ev(store, shapes, cand, named, payouts=sweeps, same_type=False)[1::-1],
    }
    for kind, (ns, ls) in links.items():
        implied: dict[Any, set[Any]] = defaultdict(set)
        for n_, l_ in zip(ns.tolist(), ls.tolist(), strict=True):
            implied[att[l_]].add(att[n_][0])
        one = {lab: next(iter(v)) for lab, v in implied.items() if len(v) == 1}
        res[kind] = {
            "links": int(ns.shape[0]),
            "links_right": sum(
                lab_owner.get(att[l_]) == att[n_][0]
                for n_, l_ in zip(ns.tolist(), ls.tolist(), strict=True)
            ),
            "labels": len(one),
            "labels_right": sum(lab_owner.get(lab) == n for lab, n in one.items()),
            "misses_named": sum(1 for ex, lab in misses if one.get(lab) == ex),
        }
    return res


def main() -> None:
    ap = world_parser(__doc__)
    a = ap.parse_args()
    each, sums = [], defaultdict(Counter)
    for w in a.worlds:
        r = measure(w, a.root)
        each.append(r)
        print(json.dumps(r), flush=True)
        for k, v in r.items():
            if isinstance(v, dict):
                sums[k].update(v)
    print("| link | links right / all | labels right / all | misses named right |")
    print("|---|---|---|---|")
    for k in KINDS:
        t = sums[k]
        print(
            f"| {k} | {t['links_right']} / {t['links']} | {t['labels_right']} / {t['labels']} "
            f"| {t['misses_named']} |"
        )
    for k, t in sums.items():
        if k.startswith("shipped"):
            print(
                f"{k}: clusters {t['clusters_right']} / {t['clusters']} right, addresses "
                f"{t['addresses_right']} / {t['addresses']}"
            )
    if a.json:
        a.json.write_text(json.dumps(each, indent=1))


if __name__ == "__main__":
    main()
