"""The deposit co-spender guard of the fragment links, scored on the truth (issue 11).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/), the case's
attribution is rebuilt as `cases.investigate.prepare_case` builds it before any change link
(`_lend_by_change` left out, as `bench.fragment_links` does), and per exchange name:

- the share `trace.services.deposit_cospenders` reads (inputs of the name's txs of 2+ inputs
  and 2+ payees whose coin a cluster outside the name paid, not in a sweep or a coinbase),
  over how many inputs, whether the guard calls the name a co-spender, and the truth
  (`world.json` exchange_habits `cospends_deposits`, the profile knob
  `exchange_deposit_cospend_share`); the same for the unnamed labels read over
  `COSPEND_MIN_INPUTS`+ inputs (key "labels", no truth);
- the fragment links of one round (`change_return`, `payout_cospend`, `sweep_into`) and, for
  comparison, `change_spend`, right or wrong by the label's majority owner
  (`truth/addresses.csv`), kept or refused by the guard (either side a co-spender: the label
  is vetoed).

    python -m bench.cospend_guard hard_cospend-small-1 hard-small-3
    python -m bench.cospend_guard --root /work/main/bench-output/accuracy hard-small-1

Reads the truth (bench code only). Writes nothing unless --json.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT, world_parser
from bench.fragment_links import before_change_links, truth_owners


def measure(name: str, root: Path = OUT) -> dict[str, Any]:
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE
    from chainsleuth.trace import services as sv

    base = root / name
    meta = json.loads((base / "world" / "world.json").read_text())
    cosp = {k for k, v in (meta.get("exchange_habits") or {}).items() if v.get("cospends_deposits")}
    b = before_change_links(base, truth_owners(base))
    store, att, shapes, named, cand, lab_owner = (
        b.store,
        b.attribution,
        b.shapes,
        b.named,
        b.candidates,
        b.label_owner,
    )
    cats = EXCHANGE_CATEGORIES | {UNIDENTIFIED_SERVICE}
    names = sorted({v for v in att.values() if v[1] in cats}, key=str)
    index = {v: i for i, v in enumerate(names)}
    grouped = np.array(sorted(c for c, v in att.items() if v[1] in cats), np.int64)
    group = np.array([index[att[c]] for c in grouped.tolist()], np.int64)
    counts = sv.paid_in_counts(store, shapes, grouped, group, len(names))
    guarded = {names[g] for g in sv.deposit_cospenders(store, shapes, grouped, group, len(names))}
    res: dict[str, Any] = {"world": name, "names": {}, "labels": {}}
    for v, (n_in, foreign) in zip(names, counts.tolist(), strict=True):
        row = {
            "inputs": n_in,
            "share": round(foreign / max(n_in, 1), 3),
            "guarded": v in guarded,
        }
        if v[1] == UNIDENTIFIED_SERVICE:
            if n_in >= sv.COSPEND_MIN_INPUTS or v in guarded:
                res["labels"][str(v[0])] = row
        else:
            res["names"][str(v[0])] = row | {"cospends": v[0] in cosp}
    ev = sv.change_spend_evidence
    links = {  # kind -> (named, label cluster)
        "change_spend": ev(store, shapes, named, cand)[:2],
        "change_return": ev(store, shapes, cand, named)[1::-1],
        "payout_cospend": sv.payout_cospend_evidence(store, shapes, cand, named)[1::-1],
        "sweep_into": sv.sweep_into_evidence(store, shapes, named, cand)[:2],
    }
    tally: Counter[str] = Counter()
    for kind, (ns, ls) in links.items():
        for n_, l_ in zip(ns.tolist(), ls.tolist(), strict=True):
            right = "right" if lab_owner.get(att[l_]) == att[n_][0] else "wrong"
            kept = "refused" if att[n_] in guarded or att[l_] in guarded else "kept"
            tally[f"{kind} {right} {kept}"] += 1
    res["links"] = dict(tally)
    return res


def main() -> None:
    ap = world_parser(__doc__)
    a = ap.parse_args()
    each, links = [], Counter()
    shares: dict[tuple[bool | str, bool], list[float]] = defaultdict(list)
    for w in a.worlds:
        r = measure(w, a.root)
        each.append(r)
        print(json.dumps(r), flush=True)
        links.update(r["links"])
        for v in r["names"].values():
            shares[(v["cospends"], v["guarded"])].append(v["share"])
        for v in r["labels"].values():
            shares[("label", v["guarded"])].append(v["share"])
    print("| truth: co-spends (label: unnamed) | guard: co-spender | names | top shares |")
    print("|---|---|---|---|")
    for (c, g), v in sorted(shares.items(), key=str):
        top = ", ".join(f"{x:.2f}" for x in sorted(v, reverse=True)[:12])
        print(f"| {c} | {g} | {len(v)} | {top} |")
    print("| link | right kept | right refused | wrong kept | wrong refused |")
    print("|---|---|---|---|---|")
    for k in ("change_spend", "change_return", "payout_cospend", "sweep_into"):
        row = [links[f"{k} {r} {g}"] for r in ("right", "wrong") for g in ("kept", "refused")]
        print(f"| {k} | " + " | ".join(str(x) for x in row) + " |")
    if a.json:
        a.json.write_text(json.dumps(each, indent=1))


if __name__ == "__main__":
    main()
