"""Why a Wasabi change that held its trail was not linked to its input (issue 11, recall).

For each missed eligible deposit that `bench.recall_misses` classes `coinjoin:wasabi_unbroken`
(the payer spent a Wasabi round's unmixed change; the walk stopped at the round), the round and
the payer's change are read from the truth (`payments.csv` `path_txids`, `addresses.csv`) and
`trace.mix_change`'s conditions checked in order: the change's value unique in the round; the
payer's inputs (one, or several: then no single input fits); inputs fitting change + a mixed
amount + fee; the fit's fee share; fits of the round agreeing with it; linked or not (linked:
the walk stopped later). Reads the truth (bench code only).

    python -m bench.mix_change_misses hard-small-1 hard-medium-7
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from bench.attribution_bound import OUT
from bench.recall_misses import deposit_outcomes


def diagnose(name: str, root: Path = OUT) -> Counter[str]:
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.trace.mix_change import MIX_FEE_SHARE, mix_change_links

    world, case = root / name / "world", root / name / "case"
    setup = prepare_case(root / name / "store", world / "seeds" / "deposits.csv")
    g = setup.chain.graph
    cj = setup.stops["is_coinjoin"]
    with open(world / "truth" / "addresses.csv", newline="") as f:
        owner = {r["address"]: r["wallet_id"] for r in csv.DictReader(f)}
    flagged = np.flatnonzero(cj)
    tx_of = dict(zip(setup.store.txids(flagged).to_pylist(), flagged.tolist(), strict=True))
    outs, ins = setup.stops.get("mix_change") or mix_change_links(
        g.tx_first_input, g.tx_first_output, g.input_spent_output, g.output_value, cj
    )
    link = dict(zip(outs.tolist(), ins.tolist(), strict=True))
    fo, fi = np.asarray(g.tx_first_output), np.asarray(g.tx_first_input)
    spent, val = np.asarray(g.input_spent_output), np.asarray(g.output_value)
    res: Counter[str] = Counter()
    for _d, holding, _right, rows, best in deposit_outcomes(world, case):
        if best is not None and best["source_entity"] in _right:
            continue
        cjp = [p for p in holding if p["path_kind"] == "coinjoin"]
        if not cjp or not rows:
            continue
        plain = [r for r in rows if r["source_category"] != "coinjoin"] or rows
        if max(plain, key=lambda r: int(r["amount_sat"]))["source_category"] != "coinjoin":
            continue
        p = cjp[0]
        res["kind:" + p["coinjoin_kind"]] += 1
        if p["coinjoin_kind"] != "wasabi":
            continue
        path = p["path_txids"].split(";")
        t = tx_of.get(path[-2])
        if t is None:
            res["round_not_flagged"] += 1
            continue
        o_lo, o_hi = fo[t], fo[t + 1]
        i_lo, i_hi = fi[t], fi[t + 1]
        o_addr = setup.chain.addresses_of_outputs(np.arange(o_lo, o_hi)).to_pylist()
        i_addr = setup.chain.addresses_of_outputs(spent[i_lo:i_hi]).to_pylist()
        payer = p["payer_wallet_id"]
        mine_o = [o_lo + k for k, a in enumerate(o_addr) if owner.get(a) == payer]
        mine_i = [i_lo + k for k, a in enumerate(i_addr) if owner.get(a) == payer]
        ov = val[o_lo:o_hi]
        vals, counts = np.unique(ov, return_counts=True)
        denoms = vals[counts > 1]
        change = [o for o in mine_o if (ov == val[o]).sum() == 1]
        if not change:
            res["no_unique_change"] += 1
            continue
        c = change[0]
        if c in link:
            res["linked:" + ("right" if link[c] in mine_i else "wrong")] += 1
            continue
        mixed = sum(int(val[o]) for o in mine_o if o != c)
        tin = sum(int(val[spent[i]]) for i in mine_i)
        fee = tin - int(val[c]) - mixed
        share = fee / mixed if mixed else -1
        n_lv = len(mine_o) - 1
        res[f"payer_inputs:{len(mine_i)} levels:{n_lv} denoms:{len(denoms)}"] += 1
        # inputs that fit change + one denomination or two different ones, as mix_change tries
        sums = [int(x) for x in denoms] + [
            int(a + b) for k, a in enumerate(denoms) for b in denoms[k + 1 :]
        ]
        fits = [
            i
            for i in range(i_lo, i_hi)
            if any(0 <= val[spent[i]] - val[c] - s <= MIX_FEE_SHARE * s for s in sums)
        ]
        if len(denoms) > 8:
            why = "too_many_denoms"
        elif share > MIX_FEE_SHARE:
            why = "fee_above_share"
        elif not fits:
            why = "no_fit(mixed_not_in_sums)"
        elif len(fits) > 1:
            why = "several_inputs_fit"
        else:
            why = "fee_agreement_short"
        res["why:" + why] += 1
        res[f"share_bin:{min(int(share * 1000), 10)}permil"] += 1
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    a = ap.parse_args()
    total: Counter[str] = Counter()
    for w in a.worlds:
        r = diagnose(w)
        print(w, dict(sorted(r.items())))
        total.update(r)
    print("all:", dict(sorted(total.items())))


if __name__ == "__main__":
    main()
