"""Leads held below the cut by `fingerprint_change`: where the fingerprint changes (issue 11).

For each world cached by `bench.accuracy_matrix`, every exchange row of the case's leads.csv
whose cap reasons include `fingerprint_change` (`bench.capped_leads`) gets its largest path
(funding tx first, the payment into the deposit last) read tx by tx: the wallet fingerprint
(`cluster.learned.read_fingerprints`) and, from the truth, the wallet and kind of each tx.
Each row is classed by who signed the txs after the funding tx: `one_wallet` (one truth
wallet signed all of them, yet two fingerprints: cannot happen in the simulator, whose wallets
sign alike), `named_exchange` (one of them is the named exchange's own tx), `other_exchange`
(another exchange's), `coinjoin` / `service` / `pool`, else `two_owners`. Per class: rows,
right (the row names an exchange that funded the deposit), held (model >= 0.5 > shipped).

Reads the truth (bench code only; the package never does).
With `--lifted BEFORE`, per world instead: the exchange rows whose confidence crossed the cut
between the case under BEFORE (e.g. main's cached worlds) and the one under `--root`, up or
down, right and wrong, and how many carry `own_forward`.

Usage: python -m bench.fp_paths [--root DIR] WORLD ...
       python -m bench.fp_paths --root bench-output/accuracy --lifted /work/main/bench-output/accuracy WORLD ...
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.capped_leads import OUT, world_rows


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def world_paths(
    name: str, root: Path = OUT, reason: str = "fingerprint_change"
) -> list[dict[str, Any]]:
    """Rows of world `name` capped with `reason`, each with its largest path read tx by tx."""
    from chainsleuth.cluster.learned import read_fingerprints

    base = root / name
    rows = [o for o in world_rows(name, root) if reason in o["reasons"].split(";")]
    if not rows:
        return []
    raw = [r for r in _rows(base / "case" / "leads.csv")]
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES

    raw = [r for r in raw if r["source_category"] in EXCHANGE_CATEGORIES]
    from chainsleuth.cases.investigate import prepare_case

    setup = prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    st = setup.store
    fp = np.asarray(read_fingerprints(st, 0, st.counts["txs"]))
    g = st.graph
    first_out = np.asarray(g.tx_first_output, np.int64)
    n_outputs = np.asarray(g.output_value).shape[0]
    spent_by = np.asarray(g.output_spent_by_tx).astype(np.int64)
    names = setup.lead_attribution
    from chainsleuth.cases.lookalikes import _value_text

    habits = json.loads((base / "case" / "case.json").read_text())["lookalike_exchanges"][
        "exchanges"
    ]
    out_type = np.asarray(g.output_script_type).astype(np.int64)
    first_in = np.asarray(g.tx_first_input, np.int64)
    spent_out = np.asarray(g.input_spent_output).astype(np.int64)
    n_inputs_all = spent_out.shape[0]

    def tx_shape(i: int) -> dict[str, Any]:
        e_in = int(first_in[i + 1]) if i + 1 < first_in.shape[0] else n_inputs_all
        e_out = int(first_out[i + 1]) if i + 1 < first_out.shape[0] else n_outputs
        ins = [int(spent_out[k]) for k in range(int(first_in[i]), e_in)]
        return {
            "n_in": len(ins),
            "in_types": sorted(
                {_value_text("deposit_type", int(out_type[k])) for k in ins if k >= 0}
            ),
            "out_types": [
                _value_text("hot_type", int(out_type[k])) for k in range(int(first_out[i]), e_out)
            ],
            "fp": _value_text("fingerprint", int(fp[i])),
        }

    def fits(shape: dict[str, Any], ex: str, loose: bool = False) -> bool:
        # loose: a habit not read (or mixed) does not rule the exchange out (a rival)
        h = habits.get(ex)
        if not h:
            return False
        v = {k: h[k]["value"] for k in ("deposit_type", "hot_type", "fingerprint")}
        unknown = {k for k, x in v.items() if x in ("not known", "mixed")} if loose else set()
        return (
            shape["n_in"] == 1
            and len(shape["out_types"]) == 2
            and ("deposit_type" in unknown or shape["in_types"] == [v["deposit_type"]])
            and ("hot_type" in unknown or v["hot_type"] in shape["out_types"])
            and ("fingerprint" in unknown or shape["fp"] == v["fingerprint"])
        )

    truth = {
        t["txid"]: (t["wallet_id"], t["kind"]) for t in _rows(base / "world" / "truth" / "txs.csv")
    }
    out = []
    for o in rows:
        r = raw[o["index"]]
        hexes = [t for t in r["path"].split("|")[0].split(";") if t]
        ids = [st.tx_id_of(t) for t in hexes]
        steps = [
            (
                truth.get(t, ("?", "?"))[0],
                truth.get(t, ("?", "?"))[1],
                int(fp[i]) if i is not None else -1,
            )
            for t, i in zip(hexes, ids, strict=True)
        ]
        # per tx after the funding tx: the names of the clusters its outputs off the path reach
        off = []
        for k in range(1, len(ids)):
            i = ids[k]
            nxt = ids[k + 1] if k + 1 < len(ids) else None
            end = int(first_out[i + 1]) if i + 1 < first_out.shape[0] else n_outputs
            got = []
            for oid in range(int(first_out[i]), end):
                if nxt is not None and spent_by[oid] == nxt:
                    continue
                c = int(setup.out_cluster[np.array([oid])][0])
                a = names.get(c) if c >= 0 else None
                got.append(a[0] if a else "")
            off.append(got)
        o = dict(o)
        o["steps"] = steps
        o["off"] = off
        o["returns"] = any(o["exchange"] in g_ for g_ in off)
        shapes = [tx_shape(i) for i in ids[1:] if i is not None]
        o["shapes"] = shapes
        o["fits_named"] = any(fits(sh, o["exchange"]) for sh in shapes)
        o["fits_other"] = sorted(
            {e for e in habits if e != o["exchange"] for sh in shapes if fits(sh, e, True)}
        )
        o["tagged"] = sorted(habits)
        o["caution"] = r["caution"]
        out.append(o)
    return out


def classify(o: dict[str, Any]) -> str:
    """Who signed the txs after the funding tx (see the module doc)."""
    after = [s for s in o["steps"][1:] if not s[1].endswith("_mix")]
    wallets = {w for w, _k, _f in after}
    ex = "exchange-" + o["exchange"]
    if len(wallets) == 1:
        return "one_wallet"
    if ex in wallets:
        return "named_exchange"
    if any(w.startswith("exchange-") for w in wallets):
        return "other_exchange"
    for kind in ("coordinator", "service", "pool"):
        if any(w.startswith(kind) for w in wallets):
            return kind
    return "two_owners"


def lifted(name: str, before: Path, after: Path, cut: float = 0.5) -> dict[str, int]:
    """World `name`'s exchange rows that crossed the cut from `before` to `after`."""
    a, b = world_rows(name, before), world_rows(name, after)
    assert len(a) == len(b), name
    raw = [r for r in _rows(after / name / "case" / "leads.csv")]
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES

    raw = [r for r in raw if r["source_category"] in EXCHANGE_CATEGORIES]
    out: Counter[str] = Counter()
    for x, y, r in zip(a, b, raw, strict=True):
        assert (x["deposit"], x["exchange"], x["amount"]) == (
            y["deposit"],
            y["exchange"],
            y["amount"],
        )
        v = "right" if y["correct"] else "wrong"
        if x["confidence"] < cut <= y["confidence"]:
            out["up_" + v] += 1
        elif y["confidence"] < cut <= x["confidence"]:
            out["down_" + v] += 1
        if "own_forward" in (r["caution"] or "").split(";"):
            out["own_forward_" + v] += 1
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--reason", default="fingerprint_change")
    ap.add_argument("--dump", type=Path, help="write every row with its path as JSON lines")
    ap.add_argument("--lifted", type=Path, metavar="BEFORE", help="rows that crossed the cut")
    a = ap.parse_args()
    if a.lifted:
        total: Counter[str] = Counter()
        print(
            "| world | up, right | up, wrong | down, right | down, wrong | own_forward rows (wrong) |"
        )
        print("|---|---|---|---|---|---|")
        for name in a.worlds:
            c = lifted(name, a.lifted, a.root)
            total.update(c)
            print(
                f"| {name} | {c.get('up_right', 0)} | {c.get('up_wrong', 0)} | {c.get('down_right', 0)} "
                f"| {c.get('down_wrong', 0)} | {c.get('own_forward_right', 0) + c.get('own_forward_wrong', 0)} "
                f"({c.get('own_forward_wrong', 0)}) |"
            )
        print(
            f"| all | {total['up_right']} | {total['up_wrong']} | {total['down_right']} "
            f"| {total['down_wrong']} | {total['own_forward_right'] + total['own_forward_wrong']} "
            f"({total['own_forward_wrong']}) |"
        )
        return
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    dump = open(a.dump, "w") if a.dump else None  # noqa: SIM115  (closed at exit)
    for name in a.worlds:
        for o in world_paths(name, a.root, a.reason):
            c = classify(o)
            v = "right" if o["correct"] else "wrong"
            c += " fits_named" if o["fits_named"] else ""
            c += " fits_other" if o["fits_other"] else ""
            tally[c]["rows"] += 1
            tally[c][v] += 1
            if o["held"]:
                tally[c]["held"] += 1
                tally[c]["held_" + v] += 1
            if dump:
                dump.write(json.dumps({**o, "class": c}) + "\n")
    print("| class | rows | right | held | held right | held wrong |")
    print("|---|---|---|---|---|---|")
    for c, t in sorted(tally.items(), key=lambda kv: -kv[1]["rows"]):
        print(
            f"| {c} | {t['rows']} | {t['right']} | {t['held']} | {t['held_right']} | {t['held_wrong']} |"
        )


if __name__ == "__main__":
    main()
