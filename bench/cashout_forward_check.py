"""How often is a payee that rule 6 of `cases.cashouts` reads (spent alone in a plain
one-input, two-output tx, the remainder to no payout) an exchange's deposit? (docs/
accuracy-log.md "Cash-outs: the misses left (this round)").

The simulated services pay only exchanges, so on their own payees the rule is always right;
that says nothing about a service that also pays people. The worlds' exchanges and mining
pools do pay people (customers, miners), some of whose addresses are deposits at other
exchanges. So the rule is read here, by `cashout_rows` exactly as a case reads it, on

- the service's own payees (the forward trace's stops, recorded while investigating);
- each exchange's and pool's payees as if it were the service (the outputs of its
  withdrawals or payouts that are not its change, truth `change_vouts`; its own clusters
  those of its addresses);
- the service's payees with k people's coins mixed in (payees of the exchanges' withdrawals
  at no exchange's address, by the truth, drawn with a fixed seed), k = 0, 10, 100;

and each rule-6 payee is checked against the truth (an exchange's address). The strong rules'
reading of the k people's coins is counted too (how many they call deposits).

**A case-read gate** ("promote rule 6 when none of the service's payees was spent the way
people spend": `payees_spent_otherwise` = 0 in `case.json`) is measured too: the fates
(`cases.cashouts.PayeeFates`) of every person's coin the exchanges withdrew to, and, over
`GATE_DRAWS` draws of k of them mixed into the service's payees, how often the gate would
still pass and how many people's coins it would then promote with the service's true forwards.

    python -m bench.cashout_forward_check hard-small-1 realistic-small-1 ...
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path("bench-output/accuracy")
#: truth tx kinds whose non-change outputs pay people
PAYING_KINDS = ("exchange_withdrawal", "pool_payout")
#: draws of k people's coins per k for the gate's measurement
GATE_DRAWS = 200


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Trace:
    """The fields of a forward TraceResult that `cashout_rows` reads: one row per payee."""

    def __init__(self, output: np.ndarray, tx: np.ndarray, amount: np.ndarray) -> None:
        from chainsleuth.trace import kernels

        self.kind = np.full(output.shape[0], kernels.KIND_CLUSTER, np.int8)
        self.output, self.tx, self.amount = output, tx, amount
        self.hops = np.ones(output.shape[0], np.int64)


def check(name: str) -> list[dict[str, Any]]:
    from bench.cashout_misses import investigate_recording
    from chainsleuth.cases.cashouts import CASHOUT_VIA, VIA_FORWARD_UNCONFIRMED, cashout_rows
    from chainsleuth.cases.investigate import prepare_case

    root = ROOT / name
    world = root / "world"
    setup = prepare_case(root / "store", world / "seeds" / "deposits.csv")
    store, g = setup.store, setup.store.graph
    owner_of: dict[int, dict[str, str]] = {}
    for r in _rows(world / "truth" / "addresses.csv"):
        a = store.address_id_of(r["address"])
        if a is not None:
            owner_of[int(a)] = r
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
    cluster_of = np.asarray(setup.cluster_of[:], np.int64)

    def addr(outputs: np.ndarray) -> np.ndarray:
        return np.asarray(setup.out_addr[outputs], np.int64)

    def at_exchange(outputs: np.ndarray, but: str = "") -> int:
        return sum(
            owner_of.get(a, {}).get("wallet_kind") == "exchange"
            and owner_of.get(a, {}).get("wallet_id") != but
            for a in addr(outputs).tolist()
        )

    def read(outputs: np.ndarray, mask: np.ndarray) -> Any:
        tx = np.searchsorted(g.tx_first_output, outputs, side="right") - 1
        return cashout_rows(
            _Trace(outputs, tx.astype(np.int64), g.output_value[outputs].astype(np.int64)),
            setup.out_cluster, setup.out_addr, dict(setup.attribution), mask,
            g.tx_first_input, g.tx_first_output, g.output_spent_by_tx,
            setup.stops["is_coinjoin"], setup.sweep_tx, setup.batch_tx, g.output_value,
            g.output_script_type,
        )  # fmt: skip

    def weak(got: Any) -> np.ndarray:
        rows = got.rows
        return np.unique(rows["destination"][rows["via"] == VIA_FORWARD_UNCONFIRMED])

    out = []
    for wallet, outs in sorted(payees.items()):
        outputs = np.array(sorted(set(outs)), np.int64)
        outputs = outputs[addr(outputs) >= 0]
        own = np.array([a for a, o in owner_of.items() if o["wallet_id"] == wallet], np.int64)
        mask = np.zeros(setup.service_mask.shape[0], np.bool_)
        mask[np.unique(cluster_of[own])] = True
        outputs = outputs[~mask[np.maximum(np.asarray(setup.out_cluster[outputs]), 0)]]
        w = weak(read(outputs, mask))
        out.append({"world": name, "payer": wallet, "payees": int(outputs.shape[0]),
                    "rule6": int(w.shape[0]), "rule6_at_exchange": at_exchange(w, wallet)})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        seen = investigate_recording(root / "store", world / "seeds" / "deposits.csv", Path(tmp))
    service = np.array(sorted({p["output"] for p in seen}), np.int64)
    persons = np.array(
        sorted(
            o
            for w_, outs in payees.items()
            if w_.startswith("exchange-")
            for o in outs
            if owner_of.get(int(addr(np.array([o]))[0]), {}).get("wallet_kind")
            not in ("exchange", None)
        ),
        np.int64,
    )
    rng = np.random.default_rng(11)
    gate_rng = np.random.default_rng(12)  # its own stream: the k-people samples stay as before
    pf = read(persons, setup.service_mask).fates
    assert pf is not None
    other, ambiguous = set(pf.other.tolist()), set(pf.ambiguous.tolist())
    gate: dict[int, dict[str, float]] = {}
    own = read(service, setup.service_mask).fates
    own_ambiguous = 0 if own is None else int(own.ambiguous.shape[0])
    for k in (1, 2, 5, 10):
        passed, wrong = 0, 0
        for _ in range(GATE_DRAWS):
            draw = gate_rng.choice(persons, k, replace=False).tolist()
            if not any(o in other for o in draw):
                passed += 1
                wrong += sum(o in ambiguous for o in draw)
        promoted = own_ambiguous * passed + wrong
        gate[k] = {
            "pass": passed / GATE_DRAWS,
            "wrong_per_pass": wrong / max(passed, 1),
            "precision_of_promoted": own_ambiguous * passed / promoted if promoted else 1.0,
        }
    out.append({"world": name, "payer": "people's coins (fates)", "payees": int(persons.shape[0]),
                "rule6": int(pf.ambiguous.shape[0]), "rule6_at_exchange": 0,
                "fates": {"deposit": int(pf.deposit.shape[0]), "ambiguous": len(ambiguous),
                          "other": len(other)},
                "gate": gate, "service_rule6": own_ambiguous})  # fmt: skip
    for k in (0, 10, 100):
        sample = rng.choice(persons, k, replace=False)
        got = read(np.concatenate([service, sample]), setup.service_mask)
        w = weak(got)
        rows = got.rows
        on_persons = np.isin(rows["destination"], sample) & ~rows["coinjoin"]
        strong = on_persons & (rows["via"] != VIA_FORWARD_UNCONFIRMED)
        firsts = np.unique(rows["destination"][strong], return_index=True)[1]
        by_via = Counter(CASHOUT_VIA[v] for v in rows["via"][strong][firsts].tolist())
        out.append({"world": name, "payer": f"service + {k} people", "payees": int(service.shape[0] + k),
                    "rule6": int(w.shape[0]), "rule6_at_exchange": at_exchange(w),
                    "people_read_as_deposits": dict(by_via)})  # fmt: skip
    store.close()
    return out


def main(argv: list[str]) -> int:
    results = [r for name in argv for r in check(name)]
    print(
        "| world | payer | payees | rule-6 payees | at an exchange | people read by the strong rules |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        if "gate" in r:
            continue
        people = r.get("people_read_as_deposits", "")
        print(f"| {r['world']} | {r['payer']} | {r['payees']} | {r['rule6']} | "
              f"{r['rule6_at_exchange']} | {people} |")  # fmt: skip
    for label, pick in (
        ("service only", lambda r: r["payer"] == "service + 0 people"),
        ("exchanges as payers", lambda r: r["payer"].startswith("exchange-")),
        ("pools as payers", lambda r: r["payer"].startswith("pool-")),
        ("service + 10 people", lambda r: r["payer"] == "service + 10 people"),
        ("service + 100 people", lambda r: r["payer"] == "service + 100 people"),
    ):
        sel = [r for r in results if pick(r)]
        n, right = sum(r["rule6"] for r in sel), sum(r["rule6_at_exchange"] for r in sel)
        print(f"{label}: rule-6 payees {n}, at an exchange {right} ({right / max(n, 1):.3f})")
    print("\n| world | people's coins | read as deposits | rule 6 | spent otherwise | "
          "service's rule-6 payees | gate, k = 1, 2, 5, 10 people: passes / wrong rows per pass / "
          "precision of the promoted |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "gate" not in r:
            continue
        f, n = r["fates"], r["payees"]
        cells = "; ".join(
            f"{v['pass']:.2f} / {v['wrong_per_pass']:.2f} / {v['precision_of_promoted']:.2f}"
            for v in r["gate"].values()
        )
        print(f"| {r['world']} | {n} | {f['deposit']} ({f['deposit'] / n:.2f}) | "
              f"{f['ambiguous']} ({f['ambiguous'] / n:.2f}) | {f['other']} ({f['other'] / n:.2f}) | "
              f"{r['service_rule6']} | {cells} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
