"""Does the weaker cash-out rule's confidence factor mean what it says when the payer pays
people? (docs/investigations.md "Cash-outs: the misses left (this round)").

The simulated services pay only exchanges, so every payee of theirs that rule 6 of
`cases.cashouts` reads is a deposit: the worlds cannot show what the rule and its factor do for
a service that pays vendors. Their exchanges and mining pools do pay people (customers,
miners), and some of those people's addresses are deposits at other exchanges. So each of them
is taken here as "the service": its payees are the outputs of its withdrawals or payouts that
are not its change (truth `change_vouts`), its own clusters are those of its addresses, and
`cashout_rows` and `unconfirmed_forward_factor` read them exactly as a case would. Reported
per payer: payees, the rule's fates, the factor and how many of rule 6's payees are exchange
deposits by the truth (the factor should be near that share, or below it), and how many of the
strong rules' rows pay an exchange.

    python -m bench.cashout_factor_check hard-small-1 realistic-small-1 ...
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path("bench-output/accuracy")
#: truth tx kinds whose non-change outputs pay people, by the payer's wallet kind
PAYING_KINDS = {"exchange_withdrawal": "exchange", "pool_payout": "pool"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Trace:
    def __init__(self, output: np.ndarray, tx: np.ndarray, amount: np.ndarray) -> None:
        from chainsleuth.trace import kernels

        self.kind = np.full(output.shape[0], kernels.KIND_CLUSTER, np.int8)
        self.output, self.tx, self.amount = output, tx, amount
        self.hops = np.ones(output.shape[0], np.int64)


def check(name: str) -> list[dict[str, Any]]:
    from chainsleuth.cases.cashouts import (
        VIA_FORWARD_UNCONFIRMED,
        cashout_rows,
        person_pair_odds,
        unconfirmed_forward_factor,
    )
    from chainsleuth.cases.investigate import prepare_case

    root = ROOT / name
    world = root / "world"
    setup = prepare_case(root / "store", world / "seeds" / "deposits.csv")
    store, g = setup.store, setup.store.graph
    truth_addr = {r["address"]: r for r in _rows(world / "truth" / "addresses.csv")}
    # address id -> (wallet id, wallet kind, role) by the truth
    ids = np.array([store.address_id_of(a) or -1 for a in truth_addr], np.int64)
    info = list(truth_addr.values())
    owner_of = {int(i): info[k] for k, i in enumerate(ids.tolist()) if i >= 0}
    payees: dict[str, list[int]] = defaultdict(list)
    for r in _rows(world / "truth" / "txs.csv"):
        if r["kind"] not in PAYING_KINDS or not r["wallet_id"]:
            continue
        t = store.tx_id_of(r["txid"])
        if t is None:
            continue
        change = {int(v) for v in r["change_vouts"].split(";") if v}
        first = int(g.tx_first_output[t])
        end = int(g.tx_first_output[t + 1]) if t + 1 < g.n_txs else g.n_outputs
        payees[r["wallet_id"]] += [o for o in range(first, end) if o - first not in change]
    rate, _ = person_pair_odds(
        setup.attribution, setup.out_cluster, setup.out_addr, setup.service_mask.shape[0],
        g.tx_first_input, g.tx_first_output, g.output_spent_by_tx, setup.stops["is_coinjoin"],
        setup.sweep_tx, setup.batch_tx, g.output_value,
    )  # fmt: skip
    cluster_of = np.asarray(setup.cluster_of[:], np.int64)
    out = []
    for wallet, outs in sorted(payees.items()):
        outputs = np.array(sorted(set(outs)), np.int64)
        outputs = outputs[np.asarray(setup.out_addr[outputs]) >= 0]
        own = np.array([a for a, o in owner_of.items() if o["wallet_id"] == wallet], np.int64)
        mask = np.zeros_like(setup.service_mask)
        mask[np.unique(cluster_of[own])] = True
        outputs = outputs[~mask[np.maximum(np.asarray(setup.out_cluster[outputs]), 0)]]
        tx = np.searchsorted(g.tx_first_output, outputs, side="right") - 1
        got = cashout_rows(
            _Trace(outputs, tx.astype(np.int64), g.output_value[outputs].astype(np.int64)),
            setup.out_cluster, setup.out_addr, dict(setup.attribution), mask,
            g.tx_first_input, g.tx_first_output, g.output_spent_by_tx, setup.stops["is_coinjoin"],
            setup.sweep_tx, setup.batch_tx, g.output_value,
        )  # fmt: skip
        factor, evidence = unconfirmed_forward_factor([got.fates], rate)
        rows = got.rows
        addr = np.asarray(setup.out_addr[rows["destination"]])

        def at_exchange(a: int) -> bool:
            o = owner_of.get(int(a))
            return o is not None and o["wallet_kind"] == "exchange" and o["wallet_id"] != wallet

        weak = (rows["via"] == VIA_FORWARD_UNCONFIRMED) & ~rows["coinjoin"]
        strong = (rows["via"] != VIA_FORWARD_UNCONFIRMED) & ~rows["coinjoin"]
        weak_dest = np.unique(rows["destination"][weak])
        weak_right = sum(at_exchange(a) for a in np.asarray(setup.out_addr[weak_dest]).tolist())
        strong_dest, first = np.unique(rows["destination"][strong], return_index=True)
        strong_right = sum(at_exchange(a) for a in addr[strong][first].tolist())
        out.append(
            {
                "world": name,
                "payer": wallet,
                "payees": int(outputs.shape[0]),
                **evidence,
                "weak_rows": int(weak_dest.shape[0]),
                "weak_at_exchange": int(weak_right),
                "strong_rows": int(strong_dest.shape[0]),
                "strong_at_exchange": int(strong_right),
            }
        )
    out += _mixed(name, setup, owner_of, payees, rate)
    store.close()
    return out


def _mixed(
    name: str, setup: Any, owner_of: dict[int, dict[str, str]], payees: dict[str, list[int]],
    odds: float,
) -> list[dict[str, Any]]:
    """The case's own service payees with `k` persons' coins mixed in (payees of the
    exchanges' withdrawals whose address is no exchange's, by the truth; drawn with a fixed
    seed): as a service paying k people besides its cash-outs would show."""
    import tempfile

    from bench.cashout_misses import investigate_recording
    from chainsleuth.cases.cashouts import (
        VIA_FORWARD_UNCONFIRMED,
        cashout_rows,
        unconfirmed_forward_factor,
    )

    root = ROOT / name
    with tempfile.TemporaryDirectory() as tmp:
        seen = investigate_recording(
            root / "store", root / "world" / "seeds" / "deposits.csv", Path(tmp)
        )
    service = np.array(sorted({p["output"] for p in seen}), np.int64)
    g = setup.store.graph
    persons = np.array(
        sorted(
            o
            for w, outs in payees.items()
            if w.startswith("exchange-")
            for o in outs
            if (a := int(np.asarray(setup.out_addr[np.array([o])])[0])) >= 0
            and owner_of.get(a, {}).get("wallet_kind") not in ("exchange", None)
        ),
        np.int64,
    )
    rng = np.random.default_rng(11)
    out = []
    for k in (0, 3, 10, 30, 100):
        outputs = np.concatenate([service, rng.choice(persons, k, replace=False)])
        tx = np.searchsorted(g.tx_first_output, outputs, side="right") - 1
        got = cashout_rows(
            _Trace(outputs, tx.astype(np.int64), g.output_value[outputs].astype(np.int64)),
            setup.out_cluster, setup.out_addr, dict(setup.attribution), setup.service_mask,
            g.tx_first_input, g.tx_first_output, g.output_spent_by_tx,
            setup.stops["is_coinjoin"], setup.sweep_tx, setup.batch_tx, g.output_value,
        )  # fmt: skip
        factor, evidence = unconfirmed_forward_factor([got.fates], odds)
        weak = np.unique(got.rows["destination"][got.rows["via"] == VIA_FORWARD_UNCONFIRMED])
        right = sum(
            owner_of.get(int(a), {}).get("wallet_kind") == "exchange"
            for a in np.asarray(setup.out_addr[weak]).tolist()
        )
        out.append(
            {
                "world": name,
                "payer": f"service + {k} persons",
                "payees": int(outputs.shape[0]),
                **evidence,
                "weak_rows": int(weak.shape[0]),
                "weak_at_exchange": int(right),
                "strong_rows": 0,
                "strong_at_exchange": 0,
            }
        )
    return out


def main(argv: list[str]) -> int:
    results = [r for name in argv for r in check(name)]
    cols = ["world", "payer", "payees", "payees_shown_deposits", "payees_spent_otherwise",
            "payees_forward_unconfirmed", "person_pair_odds", "confidence_factor",
            "weak_at_exchange", "strong_rows", "strong_at_exchange"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    expected = sum(r["confidence_factor"] * r["payees_forward_unconfirmed"] for r in results)
    weak = sum(r["payees_forward_unconfirmed"] for r in results)
    right = sum(r["weak_at_exchange"] for r in results)
    high = [r for r in results if r["confidence_factor"] >= 0.5]
    print(
        f"\nrule 6 payees: {weak}, at an exchange by the truth: {right}, expected by the "
        f"factors: {expected:.1f}; payers with a factor >= 0.5: {len(high)} "
        f"({sum(r['weak_at_exchange'] for r in high)} of "
        f"{sum(r['payees_forward_unconfirmed'] for r in high)} right)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
