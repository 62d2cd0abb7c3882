"""Which path a wrong exchange's lead row took to a missed deposit (issue 11, precision).

For each world cached by `bench.accuracy_matrix`, the missed eligible deposits that
`bench.recall_misses` classes `wrong_exchange` (a wrong exchange B decides at >= the cut) or
`wrong_below_cut` (only B's rows, below it) get their wrong row's `path` (funding tx first,
the payment into the deposit last) read against the truth (`truth/txs.csv`, wallet and kind
per tx). A is the deposit's funding exchange (truth). Classes, first that applies:

- `funding_not_b:<wallet kind>:<attributed_via>`: the row's funding tx (the tx spending the
  named cluster's coin) is not B's own tx: the walk stopped at the right wallet but a rule
  lent it B's name (`a` when that wallet is A's own), not a walk through a wallet;
- `through_a:<A's tx kinds>`: a tx of the path after the funding tx is A's own (the walk went
  through A's wallet, untagged, to B further back). With the store, each such A tx's spender
  cluster is checked: `detected` (service-like by `trace.services`: batches >= MIN_EVENTS) or
  `undetected`, with its batches, sweeps received and size;
- `through_other_exchange:<kinds>`: through a third exchange C's own tx;
- `customer:<wallet kinds>`: only user / customer / other wallets between B's tx and the
  deposit: B's coins changed hands (a customer withdrew from B and paid on): a stale but real
  lead, or a wrong pick among a payer's inputs.

With `--signs`, every deciding lead (the row `cases.evaluate.score_case` scores at the cut),
right and wrong, is checked for the candidate chain signs of a forward on its path
(`SIGNS`): what a rule stopping the walk at such a tx would cost (right leads) and gain
(wrong ones).

Reads the truth (bench code only).
Usage: python -m bench.wrong_paths [--store] [--signs] hard-small-1 ...
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT
from bench.recall_misses import _SUBPOENA, deposit_outcomes


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wrong_rows(
    world: Path, case: Path, cut: float = 0.5
) -> list[tuple[str, str, set[str], dict[str, str]]]:
    """(deposit, 'at_cut' | 'below_cut', right exchanges, the wrong row) per missed deposit
    that a wrong exchange's row decides (at the cut) or tops (below it, no right row)."""
    out = []
    for d, _holding, right, rows, best in deposit_outcomes(world, case, cut):
        if best is not None:
            if best["source_entity"] not in right:
                out.append((d, "at_cut", right, best))
            continue
        if not rows or any(r["source_entity"] in right for r in rows):
            continue
        plain = [r for r in rows if r["source_category"] != "coinjoin"] or rows
        top = max(plain, key=lambda r: int(r["amount_sat"]))
        if top["source_category"] in _SUBPOENA:
            out.append((d, "below_cut", right, top))
    return out


def classify(name: str, root: Path = OUT, cut: float = 0.5, store: bool = False) -> dict[str, Any]:
    """Path classes of world `name`'s wrong rows (see the module doc)."""
    world, case = root / name / "world", root / name / "case"
    tx = {t["txid"]: (t["wallet_id"], t["kind"]) for t in _rows(world / "truth" / "txs.csv")}
    wrong = wrong_rows(world, case, cut)
    per: Counter[str] = Counter()
    a_txs: list[tuple[str, str]] = []  # (level, A's txid) for the store check
    examples: dict[str, list[str]] = {}
    for d, level, right, row in wrong:
        b = row["source_entity"]
        path = [t for t in row["path"].split(";") if t]
        fw, _fk = tx.get(row["funding_txid"], ("?", "?"))
        mid = [(t, *tx.get(t, ("?", "?"))) for t in path[1:]]
        own_a = [(t, k) for t, w, k in mid if w in {"exchange-" + a for a in right}]
        other = [k for _t, w, k in mid if w.startswith("exchange-")]
        if fw != "exchange-" + b:
            who = "a" if fw in {"exchange-" + a for a in right} else fw.split("-")[0]
            cls = f"funding_not_b:{who}:{row.get('attributed_via') or 'tag'}"
        elif own_a:
            cls = "through_a:" + "+".join(sorted({k for _t, k in own_a}))
            a_txs += [(level, t) for t, _k in own_a[:1]]
        elif other:
            cls = "through_other_exchange:" + "+".join(sorted(set(other)))
        else:
            cls = "customer:" + "+".join(sorted({w.split("-")[0] for _t, w, _k in mid}) or ["-"])
        per[level + " " + cls] += 1
        examples.setdefault(level + " " + cls, [])
        if len(examples[level + " " + cls]) < 2:
            examples[level + " " + cls].append(d)
    res: dict[str, Any] = {"world": name, "classes": dict(per), "examples": examples}
    if store and a_txs:
        res["a_spenders"] = _spenders(root / name, [t for _l, t in a_txs], [lv for lv, _t in a_txs])
    return res


def _spenders(base: Path, txids: list[str], levels: list[str]) -> list[dict[str, Any]]:
    """Per A tx the walk passed: its spender cluster's service stats as the case reads them."""
    from chainsleuth.cases.investigate import prepare_case

    setup = prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    st, cl = setup.store, setup.cluster_of
    g = setup.chain.graph
    first_in = np.asarray(g.tx_first_input, np.int64)
    in_addr = np.asarray(g.input_address, np.int64)
    sizes = np.bincount(np.asarray(cl[:], np.int64))
    batch = np.asarray(setup.batch_tx)
    first_out = np.asarray(g.tx_first_output, np.int64)
    n_out = np.diff(np.r_[first_out, np.asarray(g.output_address).shape[0]])
    n_in = np.diff(np.r_[first_in, in_addr.shape[0]])
    out = []
    for t, lv in zip(txids, levels, strict=True):
        i = st.tx_id_of(t)
        if i is None:
            continue
        c = int(cl[int(in_addr[first_in[i]])])
        att = setup.lead_attribution.get(c)
        out.append(
            {
                "level": lv,
                "cluster": c,
                "size": int(sizes[c]) if c < sizes.shape[0] else 0,
                "batches": int(setup.service_stats.batches[np.array([c])][0]),
                "sweeps_in": int(setup.service_stats.sweeps_in[np.array([c])][0]),
                "attributed": att[1] if att else "",
                "tx_inputs": int(n_in[i]),
                "tx_outputs": int(n_out[i]),
                "tx_batch": bool(batch[i]),
            }
        )
    return out


#: Candidate signs of a forward on a lead's path, each a set of features one path tx (after the
#: funding tx) must all show: `1in2out` one input, two outputs; `single` its input's cluster is
#: one address; `spends_funding` it spends the funding tx's output; `prev_batch` the tx before
#: it on the path is a payout of 3+ payees (`TxShapes.small_batch` is not used: the case's
#: `batch_tx`); `other_unspent` its output off the path is unspent (never for the last hop);
#: `funding_fp` it carries the funding tx's wallet fingerprint (`cluster.learned.read_fingerprints`:
#: the exchange's own software on the forward, where `cases.rows.fingerprint_change` needs two
#: txs after the funding tx to see a change).
SIGNS = (
    frozenset({"1in2out", "single", "prev_batch", "other_unspent"}),
    frozenset({"1in2out", "single", "spends_funding", "prev_batch"}),
    frozenset({"1in2out", "single", "spends_funding", "prev_batch", "other_unspent"}),
    frozenset({"1in2out", "spends_funding", "funding_fp"}),
)


def path_features(
    path: list[int],
    n_in: np.ndarray,
    n_out: np.ndarray,
    first_out: np.ndarray,
    spent: np.ndarray,
    in_cluster_size: np.ndarray,
    batch: np.ndarray,
    fingerprint: np.ndarray | None = None,
) -> list[frozenset[str]]:
    """The features (`SIGNS`) of each one-input, two-output tx of `path` (tx ids, the funding
    tx first) after its funding tx; `in_cluster_size` per tx: its first input's cluster size."""
    out = []
    for k in range(1, len(path)):
        i, prev = path[k], path[k - 1]
        if n_in[i] != 1 or n_out[i] != 2:
            continue
        f = {"1in2out"}
        if in_cluster_size[i] == 1:
            f.add("single")
        if k == 1:
            f.add("spends_funding")
        if batch[prev]:
            f.add("prev_batch")
        if fingerprint is not None and fingerprint[i] == fingerprint[path[0]]:
            f.add("funding_fp")
        if k + 1 < len(path):
            nxt = path[k + 1]
            o0 = int(first_out[i])
            if any(spent[o] < 0 for o in range(o0, o0 + 2) if spent[o] != nxt):
                f.add("other_unspent")
        out.append(frozenset(f))
    return out


def signs(name: str, root: Path = OUT, cut: float = 0.5) -> dict[str, Any]:
    """Deciding leads of world `name`, right and wrong (`wrong_through_a`: through the funding
    exchange's own tx, as `classify`'s `through_a`), and those each of `SIGNS` flags."""
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.cluster.learned import read_fingerprints

    base = root / name
    setup = prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    st = setup.store
    fp = np.asarray(read_fingerprints(st, 0, st.counts["txs"]))
    cl = np.asarray(setup.cluster_of[:], np.int64)
    g = setup.chain.graph
    first_in = np.asarray(g.tx_first_input, np.int64)
    first_out = np.asarray(g.tx_first_output, np.int64)
    in_addr = np.asarray(g.input_address, np.int64)
    n_in = np.diff(np.r_[first_in, in_addr.shape[0]])
    n_out = np.diff(np.r_[first_out, np.asarray(g.output_address).shape[0]])
    sizes = np.bincount(cl)
    first = np.where(n_in > 0, in_addr[np.minimum(first_in, in_addr.shape[0] - 1)], -1)
    ok = (first >= 0) & (first < cl.shape[0])
    in_size = np.zeros(first.shape[0], np.int64)
    in_size[ok] = sizes[cl[first[ok]]]
    spent, batch = st.spent_by_tx(), np.asarray(setup.batch_tx)
    wallet = {t["txid"]: t["wallet_id"] for t in _rows(base / "world" / "truth" / "txs.csv")}
    tally: Counter[str] = Counter()
    for _d, _h, right, _rows_d, best in deposit_outcomes(base / "world", base / "case", cut):
        if best is None:
            continue
        ok_ = "right" if best["source_entity"] in right else "wrong"
        hexes = [t for t in best["path"].split(";") if t]
        if ok_ == "wrong" and any(
            wallet.get(t) in {"exchange-" + a for a in right} for t in hexes[1:]
        ):
            ok_ = "wrong_through_a"
        path = [st.tx_id_of(t) for t in best["path"].split(";") if t]
        feats = path_features(
            [int(t) for t in path if t is not None],
            n_in,
            n_out,
            first_out,
            spent,
            in_size,
            batch,
            fp,
        )
        tally["all " + ok_] += 1
        for s in SIGNS:
            if any(s <= f for f in feats):
                tally["+".join(sorted(s)) + " " + ok_] += 1
    return {"world": name, "signs": dict(tally)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--store", action="store_true", help="check A's spender clusters")
    ap.add_argument("--signs", action="store_true", help="what the forward signs would flag")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.signs:
        res = [signs(w, a.root) for w in a.worlds]
        tot: Counter[str] = Counter()
        for r in res:
            print(r["world"], r["signs"])
            tot.update(r["signs"])
        for k, v in sorted(tot.items()):
            print(f"  {v:5d} {k}")
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        return
    out = [classify(w, a.root, store=a.store) for w in a.worlds]
    total: Counter[str] = Counter()
    for o in out:
        print(o["world"], o["classes"])
        total.update(o["classes"])
    print("all:")
    for k, v in sorted(total.items()):
        print(f"  {v:5d} {k}")
    if a.store:
        sp = [s for o in out for s in o.get("a_spenders", [])]
        print("A spenders:", len(sp))
        for k in ("attributed", "tx_batch", "batches", "tx_outputs", "tx_inputs"):
            print(f"  {k}:", dict(Counter(s[k] for s in sp).most_common(12)))
        print("  size:", dict(Counter(min(s["size"], 50) for s in sp).most_common(12)))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
