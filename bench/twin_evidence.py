"""What on the chain could tell style twins apart besides signing habits (issue 11).

Style twins: tagged exchanges alike on every wallet habit the style rules read (case.json
`lookalike_exchanges`). A fragment of one of them that the case reached but could not name
carries a `candidate_exchanges` set in leads.csv. Three other kinds of evidence are measured
here against the truth, for a world built by `bench.accuracy_matrix`
(bench-output/accuracy/<profile>-<scale>-<seed>/: store/ clustered, case/ investigated):

- `counterparties`: clusters that paid into a fragment or were paid by it ("its customers"),
  shared with the named clusters of one candidate only (a named cluster: one holding a tag,
  or one a lead names at >= 0.5). Services are left out as counterparties (clusters in
  services.csv, named clusters, other candidate fragments; and clusters with more than
  `--max-degree` counterparties). Each fragment gets one outcome: no counterparty shared with
  any candidate, shared with one candidate (right or wrong by the fragment's owner in the
  truth), or with several (the largest right, or a tie / the largest wrong). `--oracle`
  also drops counterparties the truth says an exchange owns: what a perfect service detector
  would leave, an upper bound.
- `same_block`: a candidate whose named clusters spent a batch (a tx of 3+ outputs) in a
  block where the fragment spent one is ruled out: the simulator's exchange pays one batch
  per block. Outcome: one candidate left (right or wrong), several, none ruled out, or all.
  This reads a simulator convention (a real exchange batching on a wall-clock timer, or from
  several hot wallets, can put two batches in one block): measured to say what it would be
  worth, not as a rule to take.
- `cadence`: each twin group's block-counted batch and sweep schedules (world.json
  `exchange_habits`; the simulator's clock, not something a real chain shows).
- `fee_levels`: per twin pair, the two-sample Kolmogorov-Smirnov distance between their
  batches' fee rates (sat/vB), each divided by the median rate of every exchange batch that
  day (the day's fee level), from the truth's `exchange_withdrawal` txs. A distance near 0
  means no fee-level reader can tell them apart.

    python -m bench.twin_evidence hard-small-9 realistic-small-14
    python -m bench.twin_evidence --oracle --max-degree 30 hard-small-12

Reads the truth (bench code only; the package never does). Writes nothing unless --json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import ks_2samp

from bench.attribution_bound import OUT
from chainsleuth.cluster.layers import open_cluster_ids
from chainsleuth.store.layout import NONE32
from chainsleuth.store.store import Store

OUTCOMES = ("none_shared", "one_right", "one_wrong", "several_right", "several_wrong_or_tie")
SAME_BLOCK = ("none_ruled_out", "one_right", "one_wrong", "several_left", "all_ruled_out")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def pick(shared: dict[str, int], owner: str) -> str:
    """The outcome of one fragment: `shared` = counterparties it shares with each candidate's
    named clusters, `owner` = the truth's owner of the fragment."""
    ranked = sorted(shared.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] == 0:
        return "none_shared"
    if len(ranked) == 1 or ranked[1][1] == 0:
        return "one_right" if ranked[0][0] == owner else "one_wrong"
    if ranked[0][0] == owner and ranked[0][1] > ranked[1][1]:
        return "several_right"
    return "several_wrong_or_tie"


def _tx_payers(store: Store, cid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tx the cluster of its first input (-1 coinbase); per output its tx and address."""
    g, n = store.graph, store.counts
    first_in = np.append(np.asarray(g.tx_first_input), n["inputs"])
    first_out = np.append(np.asarray(g.tx_first_output), n["outputs"])
    in_tx = np.repeat(np.arange(n["txs"]), np.diff(first_in))
    out_tx = np.repeat(np.arange(n["txs"]), np.diff(first_out))
    in_addr = np.asarray(g.input_address).astype(np.int64)
    payer = np.full(n["txs"], -1, np.int64)
    has = in_addr != int(NONE32)
    payer[in_tx[has][::-1]] = cid[in_addr[has]][::-1]  # reversed: the first input wins
    return payer, out_tx, np.asarray(g.output_address).astype(np.int64)


def same_block(mine: set[int], theirs: dict[str, set[int]], owner: str) -> str:
    """The outcome of the one-batch-per-block exclusion for one fragment: `mine` = heights of
    its batches, `theirs` = per candidate the heights of its named clusters' batches; a
    candidate that batched in a block where the fragment did is ruled out."""
    left = [x for x, hs in theirs.items() if not mine & hs]
    if len(left) == len(theirs):
        return "none_ruled_out"
    if not left:
        return "all_ruled_out"
    if len(left) > 1:
        return "several_left"
    return "one_right" if left[0] == owner else "one_wrong"


def fragment_evidence(
    name: str, root: Path = OUT, oracle: bool = False, max_degree: int | None = None
) -> dict[str, Any]:
    """Outcomes of the counterparty evidence and of the same-block exclusion over the
    fragments with a candidate set, counted per fragment and per deposit whose largest lead
    ends there."""
    w = root / name
    store = Store.open(w / "store")
    ids = open_cluster_ids(w / "store")
    if ids is None:
        raise SystemExit(f"{w / 'store'}: not clustered (run bench.accuracy_matrix first)")
    cid = ids.materialize()
    payer, out_tx, out_addr = _tx_payers(store, cid)
    has = out_addr != int(NONE32)
    p, r = payer[out_tx[has]], cid[out_addr[has]]
    keep = (p >= 0) & (p != r)
    nbrs: dict[int, set[int]] = defaultdict(set)
    for a, b in set(zip(p[keep].tolist(), r[keep].tolist(), strict=True)):
        nbrs[a].add(b)
        nbrs[b].add(a)
    addrs = store.addresses(np.arange(store.counts["addresses"])).to_pylist()
    aid = {a: i for i, a in enumerate(addrs)}
    owners: dict[int, Counter[str]] = defaultdict(Counter)
    for t in _rows(w / "world" / "truth" / "addresses.csv"):
        if t["address"] in aid:
            owners[int(cid[aid[t["address"]]])][t["entity"]] += 1
    exchanges = set(json.loads((w / "world" / "world.json").read_text())["exchange_habits"])
    named: dict[str, set[int]] = defaultdict(set)
    tags = yaml.safe_load((w / "world" / "tags" / "exchanges.yaml").read_text())
    for t in tags.get("tags", []):
        if t.get("address") in aid:
            named[t["actor"]].add(int(cid[aid[t["address"]]]))
    leads = _rows(w / "case" / "leads.csv")
    for row in leads:
        if row["source_category"] == "exchange" and float(row["confidence"] or 0) >= 0.5:
            named[row["source_entity"]].add(int(row["source_cluster"]))
    services = {int(s["cluster_id"]) for s in _rows(w / "case" / "services.csv")}
    services |= set().union(*named.values()) if named else set()
    fragments: dict[int, list[str]] = {}
    for row in leads:
        if row["candidate_exchanges"] and row["source_cluster"]:
            fragments[int(row["source_cluster"])] = row["candidate_exchanges"].split(";")
    services |= set(fragments)

    def customers(clusters: set[int]) -> set[int]:
        out: set[int] = set()
        for c in clusters:
            for q in nbrs.get(c, ()):
                if q in services or (max_degree is not None and len(nbrs[q]) > max_degree):
                    continue
                if oracle and set(owners[q]) & exchanges:
                    continue
                out.add(q)
        return out

    of_named = {x: customers(cs) for x, cs in named.items()}
    largest: dict[str, dict[str, str]] = {}
    for row in leads:
        d = row["deposit_address"]
        if d not in largest or int(row["amount_sat"]) > int(largest[d]["amount_sat"]):
            largest[d] = row
    deposits = Counter(
        int(row["source_cluster"]) for row in largest.values() if row["candidate_exchanges"]
    )
    # batches: txs of 3+ outputs (a sweep has one, a forward two), by the paying cluster
    n_out = np.diff(np.append(np.asarray(store.graph.tx_first_output), store.counts["outputs"]))
    batch = np.flatnonzero((n_out >= 3) & (payer >= 0))
    height = np.asarray(store.graph.tx_height)
    batch_heights: dict[int, set[int]] = defaultdict(set)
    for c, h in zip(payer[batch].tolist(), height[batch].tolist(), strict=True):
        batch_heights[c].add(h)
    named_heights = {
        x: set().union(*(batch_heights.get(c, set()) for c in cs)) for x, cs in named.items()
    }
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("cp", "cp_dep", "sb", "sb_dep")}
    for f, cands in fragments.items():
        owner = owners[f].most_common(1)[0][0] if owners[f] else "?"
        mine = customers({f})
        got = pick({x: len(mine & of_named.get(x, set())) for x in cands}, owner)
        counts["cp"][got] += 1
        counts["cp_dep"][got] += deposits.get(f, 0)
        theirs = {x: named_heights.get(x, set()) for x in cands}
        got = same_block(batch_heights.get(f, set()), theirs, owner)
        counts["sb"][got] += 1
        counts["sb_dep"][got] += deposits.get(f, 0)
    return {
        "counterparties": {"fragments": dict(counts["cp"]), "deposits": dict(counts["cp_dep"])},
        "same_block": {"fragments": dict(counts["sb"]), "deposits": dict(counts["sb_dep"])},
    }


def _twin_groups(w: Path) -> list[list[str]]:
    case = json.loads((w / "case" / "case.json").read_text())
    groups = (case.get("lookalike_exchanges") or {}).get("groups") or []
    return [list(g["exchanges"]) for g in groups]


def cadence(name: str, root: Path = OUT) -> list[dict[str, Any]]:
    """Each twin group's (batch_every, sweep_every) per exchange, from the truth."""
    w = root / name
    habits = json.loads((w / "world" / "world.json").read_text())["exchange_habits"]
    return [
        {x: (habits[x].get("batch_every"), habits[x].get("sweep_every")) for x in group}
        for group in _twin_groups(w)
    ]


def fee_levels(name: str, root: Path = OUT) -> list[dict[str, Any]]:
    """Per twin pair: KS distance and p-value of their batches' fee rates over the day's
    median exchange batch rate (`ks`, `p`), of the amounts they pay (every output but the
    truth's change: `values_ks`, `values_p`) and of their outputs per batch (`outputs_ks`,
    `outputs_p`), and the batch counts."""
    w = root / name
    store = Store.open(w / "store")
    g, n = store.graph, store.counts
    txids = store.txids(np.arange(n["txs"])).to_pylist()
    at = {t: i for i, t in enumerate(txids)}
    batches: dict[str, list[int]] = defaultdict(list)
    change: dict[int, set[int]] = {}
    for t in _rows(w / "world" / "truth" / "txs.csv"):
        if t["kind"] == "exchange_withdrawal" and t["txid"] in at:
            batches[t["wallet_id"].removeprefix("exchange-")].append(at[t["txid"]])
            change[at[t["txid"]]] = {int(v) for v in t["change_vouts"].split(";") if v}
    ids = np.array(sorted({i for v in batches.values() for i in v}), np.int64)
    first_in = np.append(np.asarray(g.tx_first_input), n["inputs"])
    first_out = np.append(np.asarray(g.tx_first_output), n["outputs"])
    spent = np.asarray(g.input_spent_output)
    value = np.asarray(g.output_value)
    fee = np.array(
        [
            value[spent[first_in[i] : first_in[i + 1]]].sum()
            - value[first_out[i] : first_out[i + 1]].sum()
            for i in ids
        ],
        np.float64,
    )
    rate = dict(zip(ids.tolist(), (fee / store.tx_vsizes(ids)).tolist(), strict=True))
    day = np.asarray(g.tx_height)[ids] // 144  # the simulator's day: 144 blocks
    day_of = dict(zip(ids.tolist(), day.tolist(), strict=True))
    by_day: dict[int, list[float]] = defaultdict(list)
    for i in ids.tolist():
        by_day[day_of[i]].append(rate[i])
    level = {d: float(np.median(v)) for d, v in by_day.items()}
    out = []
    for group in _twin_groups(w):
        for a, b in combinations(group, 2):
            ra = [rate[i] / level[day_of[i]] for i in batches.get(a, [])]
            rb = [rate[i] / level[day_of[i]] for i in batches.get(b, [])]
            if len(ra) < 5 or len(rb) < 5:
                continue
            ks = ks_2samp(ra, rb)
            row = {"pair": f"{a}+{b}", "batches": (len(ra), len(rb)),
                   "ks": round(float(ks.statistic), 3), "p": round(float(ks.pvalue), 3)}  # fmt: skip
            paid = [
                [
                    int(value[first_out[i] + k])
                    for i in batches[x]
                    for k in range(int(first_out[i + 1] - first_out[i]))
                    if k not in change[i]
                ]
                for x in (a, b)
            ]
            wide = [[int(first_out[i + 1] - first_out[i]) for i in batches[x]] for x in (a, b)]
            for key, (xa, xb) in (("values", paid), ("outputs", wide)):
                got = ks_2samp(xa, xb)
                row[key + "_ks"] = round(float(got.statistic), 3)
                row[key + "_p"] = round(float(got.pvalue), 3)
            out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--max-degree", type=int)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    out = []
    total: dict[str, Counter[str]] = defaultdict(Counter)
    for name in a.worlds:
        got = {"world": name} | fragment_evidence(name, a.root, a.oracle, a.max_degree)
        got |= {"cadence": cadence(name, a.root), "fee_levels": fee_levels(name, a.root)}
        for kind in ("counterparties", "same_block"):
            total[kind + " fragments"].update(got[kind]["fragments"])
            total[kind + " deposits"].update(got[kind]["deposits"])
        out.append(got)
        print(json.dumps(got))
    for kind, outcomes in (("counterparties", OUTCOMES), ("same_block", SAME_BLOCK)):
        print(f"| {kind}: outcome | fragments | deposits (largest lead there) |")
        print("|---|---|---|")
        for k in outcomes:
            print(f"| {k} | {total[kind + ' fragments'][k]} | {total[kind + ' deposits'][k]} |")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
