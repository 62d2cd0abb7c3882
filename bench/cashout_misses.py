"""Every true cash-out a case missed, and every amount shortfall, classified by cause against
the world's truth (issue 11; docs/accuracy-log.md "Cash-outs: the misses left").

For each cached world under bench-output/accuracy/<profile>-<scale>-<seed>/ (`world/` and its
`store/`, as `bench.accuracy_matrix` leaves them) the case is investigated again with the
investigation's defaults while the forward trace's payees (the rows `cases.cashouts` reads) are
recorded; then each true cash-out (`truth/cashouts.csv`) is matched to the case's rows at
confidence >= 0.5 and, when missed there, given one cause read from the chain and the truth:

- `payee_not_reached`: no forward trace row ended at the destination (nor, for a cash-out
  through the administrator's wallet, at the output the administrator spent into it);
- `unspent`: the destination is unspent at the tip (a deposit not swept yet);
- `forward_remainder_unspent` / `forward_remainder_spent_by_<kind>`: the exchange forwarded
  the deposit in a one-input, two-output tx (truth kind `exchange_forward`), and what became
  of its remainder;
- `spent_by_<kind>`: anything else, by the truth's kind of the spending tx.

A miss listed below the cut (rule 6's `forward_unconfirmed` rows, capped at 0.25) is shown
with its confidence and rule.

**Evidence at the tip.** Two causes leave nothing on the chain, by the tip, that tells the
destination from a person's coin: `unspent` (a fresh address nobody has spent from) and
`forward_remainder_unspent` (spent alone in a one-input, two-output tx whose other output is
unspent: the shape in which people spend 39-42% of the coins exchanges withdraw to them,
docs/investigations.md), unless the spend moves a P2PKH or P2SH payee into two other script
types, which rule 6a of `cases.cashouts` reports since 2026-12-07, or into outputs neither of
its type written the way a tagged exchange writes its txs (rule 6b, since the wallet-habit
round of 2026-12-07): such a cash-out is found, so it is no miss. Each world also gets the *evidence ceiling*: recall and total over
the true cash-outs less those, the most any reading of this chain at this tip could find
without reading the truth. And, chain-wide, what became of every `exchange_forward`'s
remainder (the truth's change vout) by the tip, by the forward's age in blocks: whether the
remainders the rules need are merely not spent *yet*.

Bench code: it reads the truth, the package never does. Usage:

    python -m bench.cashout_misses hard-small-1 realistic-small-2 ...
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path("bench-output/accuracy")
MIN_CONFIDENCE = 0.5
#: causes that leave no on-chain evidence at the tip (see the module docstring)
NO_EVIDENCE = ("unspent", "forward_remainder_unspent")
#: issue 11's cash-out target: recall and precision at least this, and the total within
#: this share of the truth's
TARGET = 0.90
TOTAL_TOLERANCE = 0.10
#: ages (blocks before the tip) the forward census splits at
AGE_BUCKETS = (50, 150)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def investigate_recording(store_dir: Path, seeds: Path, case_dir: Path) -> list[dict[str, Any]]:
    """Investigate with the defaults; return the forward trace's stopped rows (payee output,
    traced satoshis, hops) that `cashout_rows` was given."""
    import chainsleuth.cases.investigate as inv
    from chainsleuth.trace import kernels

    seen: list[dict[str, Any]] = []
    original = inv.cashout_rows

    def recording(result: Any, *args: Any, **kwargs: Any) -> Any:
        stopped = np.flatnonzero(result.kind == kernels.KIND_CLUSTER)
        for o, a, h in zip(
            result.output[stopped].tolist(),
            result.amount[stopped].tolist(),
            result.hops[stopped].tolist(),
            strict=True,
        ):
            seen.append({"output": int(o), "amount": int(a), "hops": int(h)})
        return original(result, *args, **kwargs)

    inv.cashout_rows = recording  # type: ignore[assignment]
    try:
        inv.investigate(store_dir, seeds, case_dir, report=False)
    finally:
        inv.cashout_rows = original  # type: ignore[assignment]
    return seen


def classify(name: str) -> dict[str, Any]:
    from chainsleuth.store.layout import NONE32
    from chainsleuth.store.store import Store

    root = ROOT / name
    world, store_dir = root / "world", root / "store"
    truth_dir = world / "truth"
    tx_truth = _rows(truth_dir / "txs.csv")
    kind_of = {r["txid"]: r["kind"] for r in tx_truth}
    change_of = {r["txid"]: r["change_vouts"] for r in tx_truth}
    store = Store.open(store_dir)
    g = store.graph
    n_txs = g.n_txs

    def spender(o: int) -> int:
        s = int(g.output_spent_by_tx[o])
        return -1 if s == int(NONE32) or s < 0 or s >= n_txs else s

    def txid(t: int) -> str:
        return str(store.txids(np.array([t], np.int64))[0].as_py())

    with tempfile.TemporaryDirectory() as tmp:
        payees = investigate_recording(store_dir, world / "seeds" / "deposits.csv", Path(tmp))
        case_rows = _rows(Path(tmp) / "cashouts.csv")
    payee_sat: dict[int, int] = defaultdict(int)
    for p in payees:
        payee_sat[p["output"]] += p["amount"]
    reported = {(r["txid"], r["destination_address"]): r for r in case_rows}
    truth = _rows(truth_dir / "cashouts.csv")
    out: dict[str, Any] = {"world": name, "true": len(truth), "misses": [], "found": []}
    true_total = sum(int(c["amount_sat"]) for c in truth)
    for c in truth:
        key = (c["txid"], c["destination_address"])
        t = store.tx_id_of(c["txid"])
        assert t is not None
        o = int(g.tx_first_output[t]) + int(c["vout"])
        amount = int(c["amount_sat"])
        r = reported.get(key)
        if r is not None and float(r["confidence"]) >= MIN_CONFIDENCE:
            out["found"].append(
                {
                    "txid": c["txid"],
                    "true_sat": amount,
                    "reported_sat": int(r["amount_sat"]),
                    "entity": r["destination_entity"],
                    "true_exchange": c["destination_exchange"],
                    "confidence": float(r["confidence"]),
                }
            )
            continue
        # the payee the trace reached for it: the destination, or the admin's output before it
        reached = o in payee_sat
        admin_in = -1
        if not reached and c["hops"] == "2":
            first_in = int(g.tx_first_input[t])
            admin_in = int(g.input_spent_output[first_in])
            reached = admin_in in payee_sat
        s = spender(o)
        if not reached:
            cause = "payee_not_reached"
        elif s < 0:
            cause = "unspent"
        else:
            k = kind_of.get(txid(s), "?")
            if k == "exchange_forward":
                # the remainder: the forward's change back to the exchange (the truth's vout)
                vouts = [int(v) for v in change_of.get(txid(s), "").split(";") if v]
                rs = [spender(int(g.tx_first_output[s]) + v) for v in vouts]
                spent_kinds = sorted({kind_of.get(txid(x), "?") for x in rs if x >= 0})
                cause = (
                    "forward_remainder_unspent"
                    if not spent_kinds
                    else "forward_remainder_spent_by_" + "+".join(spent_kinds)
                )
            else:
                cause = "spent_by_" + k
        out["misses"].append(
            {
                "txid": c["txid"],
                "hops": int(c["hops"]),
                "true_sat": amount,
                "traced_sat": payee_sat.get(o, payee_sat.get(admin_in, 0)),
                "cause": cause,
                "true_exchange": c["destination_exchange"],
                "listed": None if r is None else float(r["confidence"]),
                "via": None if r is None else r.get("attributed_via"),
            }
        )
    true_keys = {(c["txid"], c["destination_address"]) for c in truth}
    wrong = [
        r
        for r in case_rows
        if float(r["confidence"]) >= MIN_CONFIDENCE
        and (r["txid"], r["destination_address"]) not in true_keys
    ]
    out["wrong"] = [
        {"txid": r["txid"], "amount_sat": int(r["amount_sat"]), "entity": r["destination_entity"]}
        for r in wrong
    ]
    reported_total = sum(
        int(r["amount_sat"]) for r in case_rows if float(r["confidence"]) >= MIN_CONFIDENCE
    )
    out["true_sat"] = true_total
    out["reported_sat"] = reported_total
    out["shortfall_found_sat"] = sum(f["true_sat"] - f["reported_sat"] for f in out["found"])
    blind = [m for m in out["misses"] if m["cause"] in NO_EVIDENCE]
    evidenced = len(truth) - len(blind)
    evidenced_sat = true_total - sum(m["true_sat"] for m in blind)
    found_sat = sum(f["reported_sat"] for f in out["found"])
    out["ceiling"] = {
        "evidenced": evidenced,
        "recall": evidenced / len(truth) if truth else 1.0,
        "total": evidenced_sat / true_total if true_total else 1.0,
        "recall_of_evidenced": len(out["found"]) / evidenced if evidenced else 1.0,
        "total_of_evidenced": found_sat / evidenced_sat if evidenced_sat else 1.0,
    }
    out["forward_census"] = forward_census(store, tx_truth)
    store.close()
    return out


def forward_census(store: Any, tx_truth: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    """Chain-wide: every `exchange_forward`'s remainder (the truth's change vout) by the tip:
    unspent, or the truth's kind of its spender and whether that paid 6+ outputs besides its
    change, counted per age bucket of the forward (blocks before the tip)."""
    from chainsleuth.store.layout import NONE32

    g = store.graph
    n_txs = g.n_txs
    kinds = {r["txid"]: r["kind"] for r in tx_truth}
    tip = int(g.tx_height[n_txs - 1])
    first_out = np.asarray(g.tx_first_output, np.int64)

    def width(t: int) -> int:
        return (int(first_out[t + 1]) if t + 1 < n_txs else int(g.n_outputs)) - int(first_out[t])

    census: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in tx_truth:
        vouts = [int(v) for v in r["change_vouts"].split(";") if v]
        if r["kind"] != "exchange_forward" or len(vouts) != 1:
            continue
        t = store.tx_id_of(r["txid"])
        age = tip - int(g.tx_height[t])
        bucket = next((f"<{a}" for a in AGE_BUCKETS if age < a), f">={AGE_BUCKETS[-1]}")
        s = int(g.output_spent_by_tx[int(first_out[t]) + vouts[0]])
        if s == int(NONE32) or s < 0 or s >= n_txs:
            fate = "unspent"
        else:
            k = kinds.get(str(store.txids(np.array([s], np.int64))[0].as_py()), "?")
            fate = f"{k} ({'6+' if width(s) - 1 >= 6 else '<6'} payees)"
        census[bucket][fate] += 1
    order = [f"<{a}" for a in AGE_BUCKETS] + [f">={AGE_BUCKETS[-1]}"]
    return {b: dict(census[b]) for b in order if b in census}


def target_line(res: dict[str, Any]) -> str:
    """One world against issue 11's cash-out target: recall and precision >= `TARGET` and the
    total within `TOTAL_TOLERANCE` of the truth's; which of them it fails, and its misses by
    cause."""
    found, wrong = len(res["found"]), len(res["wrong"])
    recall = found / res["true"] if res["true"] else 1.0
    precision = found / (found + wrong) if found + wrong else 1.0
    total = res["reported_sat"] / res["true_sat"] if res["true_sat"] else 1.0
    fails = [
        name
        for name, bad in (
            ("recall", recall < TARGET),
            ("precision", precision < TARGET),
            ("total", abs(total - 1.0) > TOTAL_TOLERANCE),
        )
        if bad
    ]
    causes = Counter(m["cause"] for m in res["misses"])
    return (
        f"{res['world']} | {res['true']} | {found} | {recall:.3f} | {total:.3f} | "
        f"{' + '.join(fails) or 'meets'} | "
        + (", ".join(f"{k} {v}" for k, v in causes.most_common()) or "-")
    )


def main(argv: list[str]) -> int:
    results = [classify(n) for n in argv]
    causes: Counter[str] = Counter()
    sats: Counter[str] = Counter()
    for res in results:
        for m in res["misses"]:
            causes[m["cause"]] += 1
            sats[m["cause"]] += m["true_sat"]
        found = len(res["found"])
        print(
            f"{res['world']}: true {res['true']}, found {found}, wrong {len(res['wrong'])}, "
            f"total {res['reported_sat'] / max(res['true_sat'], 1):.3f} "
            f"(missed {sum(m['true_sat'] for m in res['misses']) / 1e8:.4f} BTC, "
            f"found short by {res['shortfall_found_sat'] / 1e8:.4f} BTC, "
            f"wrong {sum(w['amount_sat'] for w in res['wrong']) / 1e8:.4f} BTC)"
        )
        for m in res["misses"]:
            print(f"   miss {m['txid'][:16]} hops {m['hops']} {m['true_sat'] / 1e8:.4f} BTC "
                  f"{m['true_exchange']}: {m['cause']}"
                  + (f" (listed at {m['listed']}, {m['via']})" if m["listed"] is not None else ""))  # fmt: skip
        for f in res["found"]:
            if f["true_sat"] - f["reported_sat"] >= 100_000:  # 0.001 BTC
                print(f"   short {f['txid'][:16]} {f['true_sat'] / 1e8:.4f} -> "
                      f"{f['reported_sat'] / 1e8:.4f} BTC ({f['entity']})")  # fmt: skip
    print("\ncause | misses | BTC")
    for cause, n in causes.most_common():
        print(f"{cause} | {n} | {sats[cause] / 1e8:.4f}")
    print("\nworld | true | found | recall | total | fails on | misses by cause")
    for res in results:
        print(target_line(res))
    print("\nworld | true | evidenced at the tip | recall ceiling | total ceiling | "
          "recall of evidenced | total of evidenced")  # fmt: skip
    for res in results:
        c = res["ceiling"]
        print(f"{res['world']} | {res['true']} | {c['evidenced']} | {c['recall']:.3f} | "
              f"{c['total']:.3f} | {c['recall_of_evidenced']:.3f} | {c['total_of_evidenced']:.3f}")  # fmt: skip
    print("\nworld | forward age | remainder fates (exchange_forward, chain-wide)")
    for res in results:
        for bucket, fates in res["forward_census"].items():
            n = sum(fates.values())
            print(f"{res['world']} | {bucket} | {n} forwards: "
                  + ", ".join(f"{k} {v} ({v / n:.2f})" for k, v in sorted(fates.items())))  # fmt: skip
    Path("bench-output/cashout_misses.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
