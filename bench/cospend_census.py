"""Why a co-spending exchange's deposits are missed: where the walk stopped, per class (issue 11).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/), the case is
rebuilt as `cases.investigate.prepare_case` builds it, with the service entities (with and
without the deposit spenders' links) and the tags kept. Every eligible deposit of an exchange
that spends deposits in its payouts (truth: world.json `exchange_habits` `cospends_deposits`)
that the case misses (`bench.recall_misses.deposit_outcomes`) is classed by its largest row's
source cluster S (the cluster whose output the walk stopped at):

- `hit`: named right at the cut;
- `wrong_exchange`, `right_below_cut`, `no_rows`, `coinjoin`, `other_category`: as in
  `bench.recall_misses`;
- for an `unidentified_service` S, by S's service entity (`service_entities` with the deposit
  spenders' links cut, as the case builds it): `entity_two_names` (its tags carry two names),
  `entity_wary` (one name, withheld by `_wary_entities`), `entity_no_tag` (no tagged cluster),
  `no_entity` (S is linked to no other cluster); each with `:own` when S's majority owner by the
  truth is the funding exchange, `:other` otherwise, and `+old_two` when the entities with the
  spenders' links kept put S with two names.

Also the links `trace.services.spender_change_links` reads (the co-spenders' change chains),
and how many of them join two owners (each cluster's majority owner by the truth).

    python -m bench.cospend_census hard_cospend-small-1 hard_cospend-medium-1

Reads the truth (bench code only). Writes nothing unless --json.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT, world_parser
from bench.fragment_links import _owners, truth_owners
from bench.recall_misses import _rows, deposit_outcomes


def _capture(base: Path) -> tuple[Any, dict[str, Any]]:
    """prepare_case on the world under `base`, with the tags and both entity sets kept."""
    from chainsleuth.cases import investigate as inv

    kept: dict[str, Any] = {}
    orig_attr, orig_ent = inv._attribute_services, inv.service_entities

    def ent(shapes: Any, links: Any, spenders: Any = None) -> Any:
        out = orig_ent(shapes, links, spenders)
        if spenders is not None:
            kept["entities"] = out
            kept["old"] = orig_ent(shapes, links)
            kept["spenders"] = spenders
        return out

    def attr(attribution: Any, *args: Any, **kw: Any) -> Any:
        kept["tags"] = dict(attribution)
        return orig_attr(attribution, *args, **kw)

    inv._attribute_services, inv.service_entities = attr, ent  # type: ignore[assignment]
    try:
        setup = inv.prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    finally:
        inv._attribute_services, inv.service_entities = orig_attr, orig_ent  # type: ignore[assignment]
    return setup, kept


def _entity_names(nodes: np.ndarray, entity: np.ndarray, tags: dict[int, Any]) -> dict[int, set]:
    names: dict[int, set] = defaultdict(set)
    for c, e in zip(nodes.tolist(), entity.tolist(), strict=True):
        if c in tags:
            names[e].add(tags[c][0])
    return names


def census(name: str, root: Path = OUT, cut: float = 0.5) -> dict[str, Any]:
    base = root / name
    world, case = base / "world", base / "case"
    habits = json.loads((world / "world.json").read_text())["exchange_habits"]
    cospenders = {e for e, h in habits.items() if h.get("cospends_deposits")}
    tx_wallet = {t["txid"]: t["wallet_id"] for t in _rows(world / "truth" / "txs.csv")}
    setup, kept = _capture(base)
    cl = np.asarray(setup.cluster_of[:], np.int64)
    tags = kept["tags"]
    nodes, entity = kept["entities"]
    onodes, oentity = kept["old"]
    ent_of = dict(zip(nodes.tolist(), entity.tolist(), strict=True))
    oent_of = dict(zip(onodes.tolist(), oentity.tolist(), strict=True))
    names = _entity_names(nodes, entity, tags)
    onames = _entity_names(onodes, oentity, tags)
    att = setup.lead_attribution
    misses: list[tuple[str, str, int, str]] = []
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for d, holding, right, rows, best in deposit_outcomes(world, case, cut):
        ex = holding[0]["funding_exchange"]
        if ex not in cospenders:
            continue
        per[ex]["eligible"] += 1
        if best is not None and best["source_entity"] in right:
            per[ex]["hit"] += 1
            continue
        if best is not None:
            per[ex]["wrong_exchange"] += 1
            continue
        if not rows:
            per[ex]["no_rows"] += 1
            continue
        if any(r["source_entity"] in right for r in rows):
            per[ex]["right_below_cut"] += 1
            continue
        plain = [r for r in rows if r["source_category"] != "coinjoin"] or rows
        top = max(plain, key=lambda r: int(r["amount_sat"]))
        if top["source_category"] != "unidentified_service" or not top["source_cluster"]:
            per[ex][top["source_category"]] += 1
            continue
        own_tx = tx_wallet.get(top["funding_txid"]) == "exchange-" + ex
        misses.append((d, ex, int(top["source_cluster"]), "own_tx" if own_tx else "other_tx"))
    srcs = np.array(sorted({m[2] for m in misses}), np.int64)
    owners = _owners(setup.store, cl, srcs, truth_owners(base)) if srcs.shape[0] else {}
    ex_count = Counter(v[0] for v in tags.values())
    examples: dict[str, list[Any]] = defaultdict(list)
    for d, ex, s, txw in misses:
        top_owner, n_top = owners[s].most_common(1)[0]
        own = top_owner == "exchange-" + ex or top_owner == ex
        e = ent_of.get(s)
        if e is None:
            cls = "no_entity"
        elif len(names.get(e, ())) > 1:
            cls = "entity_two_names"
        elif len(names.get(e, ())) == 1:
            cls = "entity_wary:" + ("same" if ex in names[e] else "other")
        else:
            cls = "entity_no_tag"
        oe = oent_of.get(s)
        if oe is not None and len(onames.get(oe, ())) > 1:
            cls += "+old_two"
        cls += ":own" if own else ":other"
        cls += "/" + txw
        per[ex][cls] += 1
        if len(examples[cls]) < 3:
            size = int((cl == s).sum())
            examples[cls].append(
                {"deposit": d, "ex": ex, "S": s, "label": att.get(s), "size": size,
                 "owners": dict(owners[s].most_common(3)),
                 "entity_size": int((entity == e).sum()) if e is not None else 0,
                 "entity_names": sorted(names.get(e, ())) if e is not None else []}
            )  # fmt: skip
    # the change links `trace.services.spender_change_chains` reads, by the truth
    from chainsleuth.trace.exposure import coinjoin_flags
    from chainsleuth.trace.services import deposit_spending_batches, spender_change_links, tx_shapes

    is_cj, _rules = coinjoin_flags(base / "store", setup.store.counts["txs"])
    shapes = tx_shapes(setup.store, cl, is_cj)
    spenders = deposit_spending_batches(shapes, setup.store.graph.tx_height)
    a, b = spender_change_links(setup.store, shapes, spenders) if shapes else (srcs, srcs)
    both = np.unique(np.concatenate([a, b]))
    major = {c: t.most_common(1)[0][0] for c, t in _owners(setup.store, cl, both, truth_owners(base)).items()}  # fmt: skip
    two = int(sum(major[x] != major[y] for x, y in zip(a.tolist(), b.tolist(), strict=True)))
    return {
        "world": name,
        "chain_links": {"links": int(a.shape[0]), "two_owner": two},
        "cospenders": sorted(cospenders),
        "tag_clusters": dict(ex_count),
        "per_exchange": {k: dict(v.most_common()) for k, v in sorted(per.items())},
        "examples": dict(examples),
    }


def main() -> None:
    p = world_parser(__doc__)
    a = p.parse_args()
    out = [census(n, a.root) for n in a.worlds]
    for r in out:
        print(r["world"], "co-spenders", r["cospenders"], "tag clusters", r["tag_clusters"])
        print("   chain links (spender_change_links):", r["chain_links"])
        for ex, c in r["per_exchange"].items():
            print("  ", ex, c)
        for k, v in r["examples"].items():
            print("    e.g.", k, v[:2])
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
