"""What the chain shows around rule 6's forwards (`cases.cashouts`, `forward_unconfirmed`),
for the service's payees and for people's coins, against the worlds' truth (issue 11;
docs/investigations.md "Cash-outs: forwards read by what the chain shows").

Rule 6 reads a payee spent alone in a plain one-input, two-output tx whose other output no
payout spends. An exchange forwarding a customer's deposit to a buyer looks so; so does a
person paying someone with change. This tool lists, for every payee that rule 6 reads, the
chain's features of the spending tx S and of what became of S's two outputs by the tip, in
three populations:

- `service`: the case's own payees (the forward trace's stops, recorded while investigating);
- `people`: coins the worlds' exchanges withdrew to people (users', customers', merchants'
  wallets by the truth), read as if the service had paid them;
- `deposits`: every exchange deposit spent by an `exchange_forward` (truth), read likewise:
  the population a sign must find.

and counts, per candidate sign, how many payees of each population it marks and how many of
the marked are exchange addresses by the truth. Bench code: it reads the truth, the package
never does.

    python -m bench.cashout_forward_signs hard-small-1 hard-small-4 ...

Each world's rows are kept in bench-output/cashout_forward_signs/<world>.json and read back
on the next run (delete the file after a code change). Since the wallet-habit round
(docs/accuracy-log.md "Cash-outs: forwards that fit a tagged exchange's habits") each row
also has the spend's fingerprint (`fp`), the payee's value and the tagged exchanges' habits
as case.json's `lookalike_exchanges` reads them (`habits`), and the signs include rule 6b
and the habit readings tried for the forwards that keep the payee's type. Since
issue11-cashswitch2 (docs/accuracy-log.md "Cash-outs: forwards whose remainder is unspent at
the tip") each row also has whether the spend pays a whole sat/vB rate (`whole_fee`), whether
its two outputs are in BIP69 order (`sorted`), how many outputs pay the payee's and the
outputs' addresses and whether a sweep spent another coin of the payee's address; the habits
add the exchanges' fee rate and output order; and the signs add those, the exchange pair
without its fingerprint condition, and the spend's age. The table's last column is the
people's spends marked per 1,000 (exchange addresses among them left out). Cached rows are
`<world>-v2.json`.
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
PAYING_KINDS = ("exchange_withdrawal", "pool_payout")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def features(name: str) -> list[dict[str, Any]]:
    from bench.cashout_forward_check import _Trace
    from bench.cashout_misses import investigate_recording
    from chainsleuth.cases.cashouts import _switched_type, cashout_rows
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.store.layout import NONE32

    root = ROOT / name
    world = root / "world"
    setup = prepare_case(root / "store", world / "seeds" / "deposits.csv")
    store, g = setup.store, setup.store.graph
    n_txs = g.n_txs
    kind_of_addr: dict[int, str] = {}
    for r in _rows(world / "truth" / "addresses.csv"):
        a = store.address_id_of(r["address"])
        if a is not None:
            kind_of_addr[int(a)] = r["wallet_kind"]
    first_in = np.asarray(g.tx_first_input, np.int64)
    first_out = np.asarray(g.tx_first_output, np.int64)
    spent_out = np.asarray(g.input_spent_output, np.int64)
    n_out_all = int(g.n_outputs)
    otype = np.asarray(g.output_script_type)
    oval = np.asarray(g.output_value, np.int64)

    def spender(o: int) -> int:
        s = int(g.output_spent_by_tx[o])
        return -1 if s == int(NONE32) or s < 0 or s >= n_txs else s

    def n_in(t: int) -> int:
        return (int(first_in[t + 1]) if t + 1 < n_txs else spent_out.shape[0]) - int(first_in[t])

    def n_out(t: int) -> int:
        return (int(first_out[t + 1]) if t + 1 < n_txs else n_out_all) - int(first_out[t])

    def creator(o: int) -> int:
        return int(np.searchsorted(first_out, o, side="right") - 1)

    # the address each output pays (-1 none), how many outputs pay each address, and which
    # addresses a sweep spent some output of: a deposit address paid more than once
    addr_all = np.asarray(g.output_address, np.int64)
    addr_all[addr_all == int(NONE32)] = -1
    addr_uses = np.bincount(addr_all[addr_all >= 0])
    swept_addr = np.zeros(addr_uses.shape[0], np.bool_)
    by_sweep = np.asarray(g.output_spent_by_tx, np.int64)
    ok = (addr_all >= 0) & (by_sweep >= 0) & (by_sweep < n_txs)
    ok[ok] = np.asarray(setup.sweep_tx[by_sweep[ok]], np.bool_)
    swept_addr[addr_all[ok]] = True

    def fee_whole(t: int) -> bool:
        """Whether tx `t` pays a whole sat/vB rate (`trace.services.whole_fee_rates`)."""
        from chainsleuth.trace.services import whole_fee_rates

        ins = spent_out[int(first_in[t]) : int(first_in[t]) + n_in(t)]
        fee = int(oval[ins].sum()) - int(
            oval[int(first_out[t]) : int(first_out[t]) + n_out(t)].sum()
        )
        vs = store.tx_vsizes(np.array([t], np.int64))
        return bool(whole_fee_rates(np.array([fee]), vs, np.array([n_in(t)]))[1][0])

    payees: list[int] = []
    deposits: list[int] = []
    for r in _rows(world / "truth" / "txs.csv"):
        t = store.tx_id_of(r["txid"])
        if t is None:
            continue
        if r["kind"] == "exchange_forward":
            deposits.append(int(spent_out[first_in[t]]))
        if r["kind"] not in PAYING_KINDS or not r["wallet_id"].startswith("exchange-"):
            continue
        change = {int(v) for v in r["change_vouts"].split(";") if v}
        payees += [int(first_out[t]) + k for k in range(n_out(t)) if k not in change]
    out_addr = setup.out_addr
    people = [
        o
        for o in payees
        if int(out_addr[np.array([o])][0]) >= 0
        and kind_of_addr.get(int(out_addr[np.array([o])][0])) not in ("exchange", None)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        seen = investigate_recording(root / "store", world / "seeds" / "deposits.csv", Path(tmp))
    service = sorted({p["output"] for p in seen})
    attribution = dict(setup.attribution)
    named = set(attribution)
    fp = setup.tx_fingerprint
    habits = _exchange_habits(setup.lookalikes)
    rows: list[dict[str, Any]] = []
    for label, outs in (
        ("service", service),
        ("people", sorted(set(people))),
        ("deposits", sorted(set(deposits))),
    ):
        outputs = np.array(outs, np.int64)
        if not outputs.shape[0]:
            continue
        tx = np.searchsorted(first_out, outputs, side="right") - 1
        got = cashout_rows(
            _Trace(outputs, tx.astype(np.int64), oval[outputs]),
            setup.out_cluster,
            out_addr,
            dict(attribution),
            setup.service_mask,
            g.tx_first_input,
            g.tx_first_output,
            g.output_spent_by_tx,
            setup.stops["is_coinjoin"],
            setup.sweep_tx,
            setup.batch_tx,
            g.output_value,
        )  # fmt: skip (rule 6a off: every rule-6 shape is listed, rule 6a read below)
        assert got.fates is not None
        for p in got.fates.ambiguous.tolist():
            s = spender(p)
            t = creator(p)
            a = int(out_addr[np.array([p])][0])
            pair = [int(first_out[s]), int(first_out[s]) + 1]
            ts = [int(otype[o]) for o in pair]
            other = []
            for o in pair:
                x = spender(o)
                c = int(setup.out_cluster[np.array([o])][0])
                # the other inputs of the tx that spent it: a cluster the tags or services name
                joined = ""
                if x >= 0 and n_in(x) >= 2:
                    ins = spent_out[int(first_in[x]) : int(first_in[x]) + n_in(x)]
                    ins = ins[ins != o]
                    cs = np.asarray(setup.out_cluster[ins]).tolist()
                    names = {attribution[k] for k in cs if k in attribution}
                    joined = ";".join(sorted(f"{n}:{cat}" for n, cat in names))
                other.append(
                    {
                        "type": int(otype[o]),
                        "value": int(oval[o]),
                        "spent": x >= 0,
                        "spender_in": n_in(x) if x >= 0 else 0,
                        "spender_out": n_out(x) if x >= 0 else 0,
                        "spender_batch": bool(setup.batch_tx[x]) if x >= 0 else False,
                        "spender_sweep": bool(setup.sweep_tx[x]) if x >= 0 else False,
                        "named": c in named,
                        "kind": kind_of_addr.get(int(out_addr[np.array([o])][0]), "?"),
                        "joined_named": joined,
                        "spender_payees": int(
                            sum(
                                int(out_addr[np.array([k])][0]) >= 0 and oval[k] > 0
                                for k in range(int(first_out[x]), int(first_out[x]) + n_out(x))
                            )
                        )
                        if x >= 0
                        else 0,
                    }
                )
            rows.append(
                {
                    "world": name,
                    "population": label,
                    "payee": p,
                    "exchange": kind_of_addr.get(a) == "exchange",
                    "in_type": int(otype[p]),
                    "out_types": ts,
                    "switched": all(x != int(otype[p]) for x in ts),
                    "rule6a": bool(
                        _switched_type(np.array([p]), np.array([s]), first_out, otype)[0]
                    ),
                    "fp_same": None if fp is None else bool(fp[s] == fp[t]),
                    "fp": -1 if fp is None else int(fp[s]),
                    "value": int(oval[p]),
                    "habits": habits,
                    "age": int(g.tx_height[s]) - int(g.tx_height[t]),
                    "outs": other,
                    "whole_fee": fee_whole(s),
                    # two outputs in BIP69 order (value, then script; equal values are rare)
                    "sorted": bool(oval[pair[0]] <= oval[pair[1]]),
                    "addr_uses": int(addr_uses[a]) if a >= 0 else 0,
                    "addr_swept": bool(swept_addr[a]) if a >= 0 else False,
                    "out_addr_uses": [
                        int(addr_uses[addr_all[o]]) if addr_all[o] >= 0 else 0 for o in pair
                    ],
                }
            )
    store.close()
    return rows


def _exchange_habits(lookalikes: dict[str, Any]) -> list[dict[str, Any]]:
    """The tagged exchanges' habits as case.json's `lookalike_exchanges` words them, as codes:
    deposit and hot script type, batch fingerprint (`read_fingerprints`' code), round amounts
    (1, 0, -1 not known)."""
    from chainsleuth.core.script_types import SCRIPT_TYPE_NAMES

    def code(habit: str, text: str) -> int:
        if habit in ("hot_type", "deposit_type"):
            return SCRIPT_TYPE_NAMES.index(text) if text in SCRIPT_TYPE_NAMES else -1
        if habit == "fingerprint":
            parts = text.split(", ")
            if len(parts) != 3:
                return -1
            v = {"v0": 0, "v1": 1, "v2": 2}.get(parts[0], 3)
            lt = 4 if parts[1] == "locktime set" else 0
            seq = ("final", "0xfffffffe", "RBF", "other").index(parts[2].split(" ")[-1])
            return v | lt | (seq << 3)
        if habit == "fee_rate":
            return {"whole sat/vB": 1, "fractional": 0}.get(text, -1)
        if habit == "output_order":
            return {"sorted (BIP69)": 1, "not sorted": 0}.get(text, -1)
        return {"round": 1, "not round": 0}.get(text, -1)

    out = []
    for name, hab in (lookalikes.get("exchanges") or {}).items():
        out.append(
            {"name": name}
            | {
                h: code(h, str(hab[h]["value"])) if hab.get(h, {}).get("read") else -1
                for h in (
                    "deposit_type",
                    "hot_type",
                    "fingerprint",
                    "round_amounts",
                    "fee_rate",
                    "output_order",
                )
            }
        )
    return out


_ROUND_SAT = 100_000  # trace.services.STYLE_ROUND_SAT; a fee-deducting exchange sends 50,000 less


def _kept(r: dict[str, Any]) -> bool:
    """The spend keeps the payee's script type on an output (a person's change looks so)."""
    return bool(r["in_type"] in r["out_types"])


def _exchange_fp(r: dict[str, Any]) -> bool:
    """The spend carries a tagged exchange's batch fingerprint, with locktime 0 and nSequence
    final (rule 6b's fingerprint condition)."""
    return (r["fp"] & 0b11100) == 0 and any(h["fingerprint"] == r["fp"] for h in r["habits"])


def _pair(r: dict[str, Any]) -> bool:
    """A tagged exchange receives on the payee's type, keeps its hot wallet in one output's type
    and writes the spend's fingerprint."""
    a, b = r["out_types"]
    return any(
        h["deposit_type"] == r["in_type"]
        and h["hot_type"] in (a, b)
        and h["fingerprint"] == r["fp"]
        for h in r["habits"]
    )


def _round(r: dict[str, Any]) -> bool:
    """An output of a round amount, or 50,000 sat short of one (a withdrawal fee deducted)."""
    return any(
        o["value"] % _ROUND_SAT == 0 or (o["value"] + 50_000) % _ROUND_SAT == 0 for o in r["outs"]
    )


def _pair_types(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The tagged exchanges that receive on the payee's type and keep their hot wallet in one
    output's type (rule 6b's pair, any fingerprint)."""
    return [
        h
        for h in r["habits"]
        if h["deposit_type"] == r["in_type"] and h["hot_type"] in r["out_types"]
    ]


def _pair_whole(r: dict[str, Any]) -> bool:
    """The spend pays a whole sat/vB rate, and an exchange of the pair pays whole rates."""
    return bool(r.get("whole_fee")) and any(h.get("fee_rate") == 1 for h in _pair_types(r))


def _pair_sorted(r: dict[str, Any]) -> bool:
    """The two outputs are in BIP69 order, and an exchange of the pair sorts by BIP69."""
    return bool(r.get("sorted")) and any(h.get("output_order") == 1 for h in _pair_types(r))


def _core_fp(r: dict[str, Any]) -> bool:
    """A Core-like fingerprint: a locktime set or a non-final nSequence (what rule 6b rules out)."""
    return (r["fp"] & 0b11100) != 0


SIGNS = {
    "rule 6b (shipped, not rule 6a)": lambda r: (
        not r["rule6a"]
        and not _kept(r)
        and all(t in (2, 3, 4, 5) for t in [r["in_type"], *r["out_types"]])
        and _exchange_fp(r)
        and _pair(r)
    ),
    "exchange fingerprint": _exchange_fp,
    "payee of a tagged exchange's deposit type, exchange fingerprint": lambda r: (
        _exchange_fp(r) and any(h["deposit_type"] == r["in_type"] for h in r["habits"])
    ),
    "neither output of the payee's type, exchange fingerprint": lambda r: (
        not _kept(r) and _exchange_fp(r)
    ),
    "type kept: exchange pair": lambda r: _kept(r) and _pair(r),
    "type kept: exchange pair, round output": lambda r: _kept(r) and _pair(r) and _round(r),
    "type kept: exchange pair, spent within 5 blocks": lambda r: (
        _kept(r) and _pair(r) and r["age"] <= 5
    ),
    "type kept: exchange pair, round output, within 5 blocks, an output unspent": lambda r: (
        _kept(r)
        and _pair(r)
        and _round(r)
        and r["age"] <= 5
        and any(not o["spent"] for o in r["outs"])
    ),
    "pair types (any fingerprint)": lambda r: bool(_pair_types(r)),
    "pair types, Core-like fingerprint": lambda r: bool(_pair_types(r)) and _core_fp(r),
    "whole fee rate": lambda r: bool(r.get("whole_fee")),
    "pair types, whole fee, exchange pays whole": _pair_whole,
    "pair types, whole fee, exchange pays whole, Core-like fingerprint": lambda r: (
        _pair_whole(r) and _core_fp(r)
    ),
    "pair types, whole fee, exchange pays whole, not rule 6a/6b": lambda r: (
        _pair_whole(r) and not r["rule6a"] and not (_exchange_fp(r) and _pair(r) and not _kept(r))
    ),
    "pair types, BIP69 order, exchange sorts": _pair_sorted,
    "pair types, whole fee + BIP69 (both habits)": lambda r: _pair_whole(r) and _pair_sorted(r),
    "payee address paid 2+ times": lambda r: r.get("addr_uses", 0) >= 2,
    "payee address also swept": lambda r: bool(r.get("addr_swept")),
    "an output's address paid 2+ times": lambda r: any(u >= 2 for u in r.get("out_addr_uses", [])),
    "spent within 5 blocks": lambda r: r["age"] <= 5,
    "spent within 1 block": lambda r: r["age"] <= 1,
    "both unspent, pair types": lambda r: (
        not any(o["spent"] for o in r["outs"]) and bool(_pair_types(r))
    ),
    "pair types, within 5 blocks": lambda r: bool(_pair_types(r)) and r["age"] <= 5,
    "pair types, within 5 blocks, neither output of the payee's type": lambda r: (
        bool(_pair_types(r)) and r["age"] <= 5 and not _kept(r)
    ),
    "pair types, within 5 blocks, Core-like fingerprint": lambda r: (
        bool(_pair_types(r)) and r["age"] <= 5 and _core_fp(r)
    ),
    "pair types, within 1 block": lambda r: bool(_pair_types(r)) and r["age"] <= 1,
    "pair types, within 5 blocks, whole fee, exchange pays whole": lambda r: (
        _pair_whole(r) and r["age"] <= 5
    ),
    "pair types, within 5 blocks, an output unspent": lambda r: (
        bool(_pair_types(r)) and r["age"] <= 5 and any(not o["spent"] for o in r["outs"])
    ),
    "switched": lambda r: r["switched"],
    "rule 6a (shipped)": lambda r: r["rule6a"],
    "fp_differs": lambda r: r["fp_same"] is False,
    "an output spent by a batch": lambda r: any(o["spender_batch"] for o in r["outs"]),
    "an output spent with others (2+ inputs)": lambda r: any(
        o["spender_in"] >= 2 for o in r["outs"]
    ),
    "an output named": lambda r: any(o["named"] for o in r["outs"]),
    "both unspent": lambda r: not any(o["spent"] for o in r["outs"]),
    "one output spent beside named inputs (2+ inputs, 3+ payees)": lambda r: (
        sum(
            bool(o["spender_in"] >= 2 and o["spender_payees"] >= 3 and o["joined_named"])
            for o in r["outs"]
        )
        == 1
    ),
}


def _world_rows(name: str) -> list[dict[str, Any]]:
    """`features(name)`, kept in bench-output/cashout_forward_signs/<name>.json (read back when
    there: a small world takes about a minute, most of it the recorded investigation)."""
    import json

    path = Path("bench-output/cashout_forward_signs") / f"{name}-v2.json"
    if path.exists():
        rows: list[dict[str, Any]] = json.loads(path.read_text())
        return rows
    rows = features(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def main(argv: list[str]) -> int:
    rows = [r for n in argv for r in _world_rows(n)]
    by: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in rows:
        key = "exchange" if r["exchange"] else "not"
        by[(r["population"], "all")][key] += 1
        for sign, f in SIGNS.items():
            if f(r):
                by[(r["population"], sign)][key] += 1
    print("| population | sign | marked | exchange addresses among them | others per 1,000 |")
    print("|---|---|---|---|---|")
    for (pop, sign), c in sorted(by.items()):
        n = c["exchange"] + c["not"]
        base = by[(pop, "all")]["not"]
        print(
            f"| {pop} | {sign} | {n} | {c['exchange']} ({c['exchange'] / max(n, 1):.3f}) | "
            f"{1000 * c['not'] / max(base, 1):.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
