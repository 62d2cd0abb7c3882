"""How an exchange's unnamed wallet fragments touch its named ones on chain (issue 11).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/: world/ with its
truth, store/ clustered and tagged, case/ investigated), the case's attribution is rebuilt as
`cases.investigate.prepare_case` builds it (tags, service entities, funder links, wallet styles,
change spends, send-all receivers). The `unident_own` misses of `bench.recall_misses` (the walk
reached the funding exchange E's own tx, whose spender is an `unidentified_service` label L) are
taken with their label, and every *chain* connection between a label L and the clusters named
after an exchange N is listed, by kind (clusters, not the truth, decide what a connection is):

- `n_pays_l`: a tx with an input in N's named clusters pays an output into L (a refill, a
  payout of N's that lands in L);
- `l_pays_n`: the converse;
- `cospend`: one tx spends coins of both (the cluster stage did not join them);
- `via_z`: N pays an unattributed cluster Z, and Z pays L (N -> cold/unnamed -> L);
- `via_z_rev`: L pays Z, Z pays N;
- `shared_payee`: N and L both pay one unattributed cluster Z;
- `shared_funder`: one unattributed cluster Z pays both N and L.

Each kind is scored twice from the truth (`truth/addresses.csv`): *links*, every (N, L) pair,
right when L's majority owner is N; *labels*, those L whose links of the kind imply exactly one
N (how a rule would lend a name), right / wrong; and *recovered*, the `unident_own` misses whose
label the kind would name after the funding exchange. With `--shape`, the direct kinds are split
by the connecting tx's shape (inputs, payees) and the truth's tx kind.

    python -m bench.fund_links hard-small-1 hard-small-2
    python -m bench.fund_links --shape --json out.json hard-medium-1

Reads the truth (bench code only). Writes nothing unless --json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT
from bench.recall_misses import deposit_outcomes

KINDS = (
    "n_pays_l",
    "l_pays_n",
    "cospend",
    "via_z",
    "via_z_rev",
    "shared_payee",
    "shared_funder",
)
_SUBPOENA = {"exchange", "otc_broker", "wallet_service", "atm", "payment_processor"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def unident_own(name: str, root: Path = OUT, cut: float = 0.5) -> list[tuple[str, str, int]]:
    """(deposit, funding exchange, source cluster) of each `unident_own` miss, classed as
    `bench.recall_misses.classify` classes them."""
    world, case = root / name / "world", root / name / "case"
    tx_wallet = {t["txid"]: t["wallet_id"] for t in _rows(world / "truth" / "txs.csv")}
    out = []
    for d, holding, right, rows, best in deposit_outcomes(world, case, cut):
        ex = holding[0]["funding_exchange"]
        if (best is not None and best["source_entity"] in right) or best is not None or not rows:
            continue
        if any(r["source_entity"] in right for r in rows):
            continue
        plain = [r for r in rows if r["source_category"] != "coinjoin"] or rows
        top = max(plain, key=lambda r: int(r["amount_sat"]))
        if top["source_category"] != "unidentified_service" or not top["source_cluster"]:
            continue
        if tx_wallet.get(top["funding_txid"]) == "exchange-" + ex:
            out.append((d, ex, int(top["source_cluster"])))
    return out


def _pairs(con: Any, sql: str) -> np.ndarray:
    r = con.execute(sql).fetchnumpy()
    return (
        np.stack([r["n"], r["l"]], axis=1).astype(np.int64)
        if len(r["n"])
        else np.zeros((0, 2), np.int64)
    )


def analyse(name: str, root: Path = OUT, shape: bool = False) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa

    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE

    base = root / name
    setup = prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    store = setup.store
    cluster_of = np.asarray(setup.cluster_of[:], np.int64)
    n_addr = cluster_of.shape[0]
    g = setup.chain.graph
    first_in = np.asarray(g.tx_first_input, np.int64)
    first_out = np.asarray(g.tx_first_output, np.int64)
    in_addr = np.asarray(g.input_address, np.int64)
    out_addr = np.asarray(g.output_address, np.int64)
    n_txs = first_in.shape[0]
    in_tx = np.repeat(np.arange(n_txs), np.diff(np.r_[first_in, in_addr.shape[0]]))
    out_tx = np.repeat(np.arange(n_txs), np.diff(np.r_[first_out, out_addr.shape[0]]))
    ok_in = (in_addr >= 0) & (in_addr < n_addr)
    ok_out = (out_addr >= 0) & (out_addr < n_addr)
    # names: exchange codes and label codes per cluster
    att = setup.lead_attribution
    exch = sorted({v[0] for v in att.values() if v[1] in EXCHANGE_CATEGORIES and v[0]})
    ex_code = {e: i for i, e in enumerate(exch)}
    labels = sorted({v[0] for v in att.values() if v[1] == UNIDENTIFIED_SERVICE and v[0]})
    lab_code = {x: i for i, x in enumerate(labels)}
    cl_ids = np.array(sorted(att), np.int64)
    nm = np.array([ex_code.get(att[c][0], -1) if att[c][1] in EXCHANGE_CATEGORIES else -1
                   for c in cl_ids.tolist()], np.int64)  # fmt: skip
    lb = np.array([lab_code.get(att[c][0], -1) if att[c][1] == UNIDENTIFIED_SERVICE else -1
                   for c in cl_ids.tolist()], np.int64)  # fmt: skip
    con = duckdb.connect()
    con.register(
        "ins",
        pa.table({"t": in_tx[ok_in], "c": cluster_of[in_addr[ok_in]]}),
    )
    con.register(
        "outs",
        pa.table({"t": out_tx[ok_out], "c": cluster_of[out_addr[ok_out]]}),
    )
    con.register("cls", pa.table({"c": cl_ids, "nm": nm, "lb": lb}))
    con.execute("create table i as select distinct t, c from ins")
    con.execute("create table o as select distinct t, c from outs")
    # cluster flow edges (distinct), with the tx
    con.execute(
        "create table e as select i.c a, o.c b, i.t t from i join o using (t) where i.c <> o.c"
    )
    con.execute(
        "create table ea as select e.*, ca.nm anm, ca.lb alb, cb.nm bnm, cb.lb blb "
        "from e left join cls ca on ca.c = e.a left join cls cb on cb.c = e.b"
    )
    q = {
        "n_pays_l": "select distinct anm n, blb l from ea where anm >= 0 and blb >= 0",
        "l_pays_n": "select distinct bnm n, alb l from ea where bnm >= 0 and alb >= 0",
        "cospend": "select distinct x.nm n, y.lb l from i i1 join cls x on x.c = i1.c "
        "join i i2 on i1.t = i2.t join cls y on y.c = i2.c where x.nm >= 0 and y.lb >= 0",
        "via_z": "select distinct e1.anm n, e2.blb l from ea e1 join ea e2 on e1.b = e2.a "
        "where e1.anm >= 0 and e1.bnm is null and e2.blb >= 0",
        "via_z_rev": "select distinct e2.bnm n, e1.alb l from ea e1 join ea e2 on e1.b = e2.a "
        "where e1.alb >= 0 and e1.bnm is null and e2.bnm >= 0",
        "shared_payee": "select distinct e1.anm n, e2.alb l from ea e1 join ea e2 on e1.b = e2.b "
        "where e1.anm >= 0 and e1.bnm is null and e2.alb >= 0",
        "shared_funder": "select distinct e1.bnm n, e2.blb l from ea e1 join ea e2 on e1.a = e2.a "
        "where e1.bnm >= 0 and e1.anm is null and e1.alb is null and e2.blb >= 0",
    }
    pairs = {k: _pairs(con, s) for k, s in q.items()}
    # truth: majority owner entity of each label
    owner_of = {
        r["address"]: r["entity"] or r["wallet_id"]
        for r in _rows(base / "world" / "truth" / "addresses.csv")
    }
    lab_cluster_ids = cl_ids[lb >= 0]
    member = np.flatnonzero(np.isin(cluster_of, lab_cluster_ids))
    names = store.addresses(member).to_pylist()
    lab_by_c = dict(zip(cl_ids.tolist(), lb.tolist(), strict=True))
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for a, x in zip(member.tolist(), names, strict=True):
        tally[lab_by_c[int(cluster_of[a])]][owner_of.get(x, "?")] += 1
    lab_owner = {k: v.most_common(1)[0][0] for k, v in tally.items()}
    lab_size = {k: sum(v.values()) for k, v in tally.items()}
    # misses
    misses = unident_own(name, root)
    miss_lab: list[tuple[str, int]] = []
    for _d, ex, c in misses:
        v = att.get(c)
        if v is None or v[1] != UNIDENTIFIED_SERVICE:
            continue
        miss_lab.append((ex, lab_code[v[0]]))
    res: dict[str, Any] = {"world": name, "unident_own": len(misses),
                           "labels_missed": len({x for _e, x in miss_lab})}  # fmt: skip
    for k, p in pairs.items():
        right = np.array([lab_owner.get(int(lab)) == exch[int(n)] for n, lab in p.tolist()], bool)
        by_lab: dict[int, set[int]] = defaultdict(set)
        for n, lab in p.tolist():
            by_lab[lab].add(n)
        one = {lab: next(iter(ns)) for lab, ns in by_lab.items() if len(ns) == 1}
        lr = sum(lab_owner.get(lab) == exch[n] for lab, n in one.items())
        la = sum(lab_size.get(lab, 0) for lab, n in one.items() if lab_owner.get(lab) != exch[n])
        rec = sum(1 for ex, lab in miss_lab if lab in one and exch[one[lab]] == ex)
        rec_any = sum(
            1 for ex, lab in miss_lab if ex in ex_code and ex_code[ex] in by_lab.get(lab, ())
        )
        res[k] = {
            "links": int(p.shape[0]),
            "links_right": int(right.sum()),
            "labels_one": len(one),
            "labels_one_right": int(lr),
            "labels_one_wrong_addresses": int(la),
            "recovered": rec,
            "touching": rec_any,
        }
    if shape:
        n_in = np.diff(np.r_[first_in, in_addr.shape[0]])
        txid_kind = {
            r["txid"]: (r["kind"], r["wallet_id"])
            for r in _rows(base / "world" / "truth" / "txs.csv")
        }
        rows = con.execute(
            "select distinct anm n, blb l, t from ea where anm >= 0 and blb >= 0"
        ).fetchnumpy()
        tids = rows["t"].astype(np.int64)
        txids = store.txids(tids).to_pylist() if tids.shape[0] else []
        n_out = np.diff(np.r_[first_out, out_addr.shape[0]])
        sh: Counter[str] = Counter()
        for n, lab, t, x in zip(
            rows["n"].tolist(), rows["l"].tolist(), tids.tolist(), txids, strict=True
        ):
            ok = lab_owner.get(lab) == exch[n]
            kind = txid_kind.get(x, ("?", "?"))[0]
            sh[
                f"{'right' if ok else 'wrong'} in={min(int(n_in[t]), 3)} out={min(int(n_out[t]), 3)} {kind}"
            ] += 1
        res["n_pays_l_shapes"] = dict(sh.most_common())
    return res


def flows(name: str, root: Path = OUT) -> Counter[str]:
    """By the truth: is each `unident_own` miss's label joined to its funding exchange E's named
    clusters by E's own txs (edges of `bench.attribution_bound`: every input of an E tx to its
    E-owned outputs, co-spent inputs, clusters as built), and by what shortest path (each step:
    the truth's tx kind, forward or back, and where its ends lie: N named E, L an
    `unidentified_service`, - unattributed, other)."""
    from collections import deque

    from bench import attribution_bound as ab
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE

    base = root / name
    att = prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv").lead_attribution
    w = ab.World(name, root)
    cl = w.cluster_of
    out: Counter[str] = Counter()
    by_ex: dict[str, list[int]] = defaultdict(list)
    for _d, ex, c in unident_own(name, root):
        by_ex[ex].append(c)
    for ex, cs in by_ex.items():
        wallet = w.windex["exchange-" + ex]
        named = {c for c, v in att.items() if v[0] == ex and v[1] in EXCHANGE_CATEGORIES}
        adj: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
        for t in np.flatnonzero(w.tx_maker == wallet).tolist():
            kind = str(w.tx_kind[t])
            ins = [a for a in w.inputs(t).tolist() if 0 <= a < w.n_addr and w.owner[a] == wallet]
            outs = [a for a in w.outputs(t).tolist() if 0 <= a < w.n_addr and w.owner[a] == wallet]
            if not ins:
                continue
            if kind == "exchange_cold_move":
                kind = "refill" if w.role[ins[0]] == "cold" else "cold_move"
            for a in ins:
                for b in outs:
                    adj[a].append((b, kind + ":fwd", t))
                    adj[b].append((a, kind + ":back", t))
            for a in ins[1:]:
                adj[ins[0]].append((a, "cospend", t))
                adj[a].append((ins[0], "cospend", t))

        def side(a: int, named: set[int] = named) -> str:
            c = int(cl[a])
            v = att.get(c)
            if c in named:
                return "N"
            if v is None:
                return "-"
            return "L" if v[1] == UNIDENTIFIED_SERVICE else "other"

        for c in cs:
            out["misses"] += 1
            if att[c][1] != UNIDENTIFIED_SERVICE:
                # named by this code's rules (the misses are the case's under `root`)
                out["named by this code: " + str(att[c][0] == ex)] += 1
                continue
            label = att[c][0]
            members = [x for x, v in att.items() if v[0] == label]
            src = np.flatnonzero(np.isin(cl, members) & (w.owner == wallet)).tolist()
            prev: dict[int, tuple[int, str] | None] = {a: None for a in src}
            todo, hit = deque(src), None
            while todo:
                a = todo.popleft()
                if int(cl[a]) in named:
                    hit = a
                    break
                for b, k, _t in adj[a]:
                    if b not in prev:
                        prev[b] = (a, k)
                        todo.append(b)
            if hit is None:
                out["not joined by any flow of E"] += 1
                continue
            steps, a = [], hit
            while (p := prev[a]) is not None:
                steps.append(f"{p[1]}:{side(p[0])}>{side(a)}")
                a = p[0]
            out["joined"] += 1
            out["path " + " | ".join(reversed(steps))] += 1
    return out


def case_before_change_links(base: Path) -> Any:
    """The case of the world under `base` as `prepare_case` builds it before any change link
    (`cases.investigate._lend_by_change` left out for the call): each link kind is measured
    from the same start."""
    from chainsleuth.cases import investigate as inv

    keep = inv._lend_by_change
    try:
        inv._lend_by_change = lambda *args, **kw: np.zeros(0, np.int64)  # type: ignore[assignment]
        return inv.prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    finally:
        inv._lend_by_change = keep


def returns(name: str, root: Path = OUT) -> dict[str, Any]:
    """The change-return links as `cases.investigate._lend_by_change` makes them, scored: each
    variant's links between an `unidentified_service` label L and a named cluster N (one round,
    on the case's attribution before any change link), right when L's majority owner is N's
    name; labels implied one name, right; the `unident_own` misses of the case under `root`
    it would name right (run on main's cases for the misses main leaves). And the shipped rule's
    clusters named by a change return (this code's prepare_case), by their majority owner and
    by every address's owner."""
    import dataclasses

    from chainsleuth.cases import investigate as inv
    from chainsleuth.cases.rows import EXCHANGE_CATEGORIES, UNIDENTIFIED_SERVICE
    from chainsleuth.trace import services as sv

    base = root / name
    setup = inv.prepare_case(base / "store", base / "world" / "seeds" / "deposits.csv")
    store, mask = setup.store, setup.service_mask
    cl = np.asarray(setup.cluster_of[:], np.int64)
    owner_of = {
        r["address"]: r["entity"] or r["wallet_id"]
        for r in _rows(base / "world" / "truth" / "addresses.csv")
    }
    res: dict[str, Any] = {"world": name}
    # the shipped rule's outcome
    ret = np.asarray(setup.returned_clusters, np.int64)
    member = np.flatnonzero(np.isin(cl, ret))
    names = store.addresses(member).to_pylist()
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for a, x in zip(member.tolist(), names, strict=True):
        tally[int(cl[a])][owner_of.get(x, "?")] += 1
    right = [c for c, t in tally.items() if t.most_common(1)[0][0] == setup.attribution[c][0]]
    res["shipped"] = {
        "clusters": len(tally),
        "clusters_right": len(right),
        "addresses": int(member.shape[0]),
        "addresses_right": sum(t[setup.attribution[c][0]] for c, t in tally.items()),
    }
    # the variants, on the case's attribution before any change link (`_lend_by_change` left
    # out of prepare_case): each kind measured from the same start
    before = case_before_change_links(base)
    att = before.attribution
    is_cj, _mixer = inv._coinjoins(base / "store", store.counts["txs"])
    shapes = sv.tx_shapes(store, setup.cluster_of, is_cj)
    named = np.array(sorted(c for c, v in att.items() if v[1] in EXCHANGE_CATEGORIES), np.int64)
    cand = np.array(
        sorted(c for c, v in att.items() if v[1] == UNIDENTIFIED_SERVICE and not mask[c]), np.int64
    )
    member = np.flatnonzero(np.isin(cl, cand))
    lab_tally: dict[tuple[str | None, str], Counter[str]] = defaultdict(Counter)
    for a, x in zip(member.tolist(), store.addresses(member).to_pylist(), strict=True):
        lab_tally[att[int(cl[a])]][owner_of.get(x, "?")] += 1
    lab_owner = {k: v.most_common(1)[0][0] for k, v in lab_tally.items()}
    misses = [(ex, before.lead_attribution.get(c)) for _d, ex, c in unident_own(name, root)]
    payees = np.maximum(np.asarray(shapes.n_payees), 2).astype(np.asarray(shapes.n_payees).dtype)
    variants = {
        "change_spend (shipped before)": (shapes, False),
        "change_return (shipped)": (shapes, True),
        "change_return, 3+ payees": (dataclasses.replace(shapes, batch=shapes.small_batch), True),
        "change_return, 1-payee spend too": (dataclasses.replace(shapes, n_payees=payees), True),
    }
    for k, (sh, converse) in variants.items():
        if converse:
            ls, ns = sv.change_spend_links(store, sh, cand, named)
        else:
            ns, ls = sv.change_spend_links(store, sh, named, cand)
        implied: dict[Any, set[Any]] = defaultdict(set)
        for n_, l_ in zip(ns.tolist(), ls.tolist(), strict=True):
            implied[att[l_]].add(att[n_][0])
        one = {lab: next(iter(v)) for lab, v in implied.items() if len(v) == 1}
        res[k] = {
            "links": int(ns.shape[0]),
            "links_right": sum(
                lab_owner.get(att[l_]) == att[n_][0]
                for n_, l_ in zip(ns.tolist(), ls.tolist(), strict=True)
            ),
            "labels": len(one),
            "labels_right": sum(lab_owner.get(lab) == n for lab, n in one.items()),
            "misses_named": sum(1 for ex, lab in misses if one.get(lab) == ex),
        }
    # through transit clusters (measured, not used): unattributed clusters that pay a payout
    # of 3+ payees (every 6+-payee payer is an unidentified_service already) join the
    # candidates under labels of their own, so that L -> T -> N chains of change links name L;
    # payouts of 3+ payees count as batches in both runs; only the case's own labels are scored
    shapes3 = dataclasses.replace(shapes, batch=shapes.small_batch)
    plain = dict(att)
    inv._lend_by_change(store, shapes3, plain, mask)
    spenders = np.asarray(shapes.spender)[np.asarray(shapes.small_batch)]
    transit = sorted({int(c) for c in spenders.tolist() if c >= 0 and c not in att and not mask[c]})
    ext = dict(att)
    for c in transit:
        ext[c] = (f"transit:{c}", UNIDENTIFIED_SERVICE)
    inv._lend_by_change(store, shapes3, ext, mask)
    new = {
        att[c]: ext[c]
        for c in cand.tolist()
        if ext[c][1] in EXCHANGE_CATEGORIES and plain[c][1] not in EXCHANGE_CATEGORIES
    }
    res["transit"] = {
        "transit_clusters": len(transit),
        "labels": len(new),
        "labels_right": sum(lab_owner.get(lab) == n[0] for lab, n in new.items()),
        "misses_named": sum(1 for ex, lab in misses if lab in new and new[lab][0] == ex),
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--shape", action="store_true", help="split n_pays_l by tx shape and kind")
    ap.add_argument("--flows", action="store_true", help="only the truth's flows (see flows)")
    ap.add_argument("--returns", action="store_true", help="only the change returns, scored")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.flows or a.returns:
        each: list[Any] = []
        total: Counter[str] = Counter()
        sums: dict[str, Counter[str]] = defaultdict(Counter)
        for w in a.worlds:
            if a.flows:
                f = flows(w, a.root)
                total.update(f)
                each.append({"world": w, **f})
                print(w, dict(f), flush=True)
            else:
                r = returns(w, a.root)
                each.append(r)
                print(json.dumps(r), flush=True)
                for k, v in r.items():
                    if isinstance(v, dict):
                        sums[k].update(v)
        if a.flows:
            for k, v in total.most_common():
                print(v, k)
        for k, v in sums.items():
            print(k, dict(v))
        if a.json:
            a.json.write_text(json.dumps(each, indent=1))
        return
    out = []
    for w in a.worlds:
        r = analyse(w, a.root, a.shape)
        print(json.dumps(r), flush=True)
        out.append(r)
    tot: dict[str, Counter[str]] = defaultdict(Counter)
    for r in out:
        for k in KINDS:
            tot[k].update(r[k])
    print(
        "| kind | links right / all | labels (one name) right / all | wrong labels' addresses"
        " | misses named right | misses touching |"
    )
    print("|---|---|---|---|---|---|")
    for k in KINDS:
        t = tot[k]
        print(
            f"| {k} | {t['links_right']} / {t['links']} | {t['labels_one_right']} / "
            f"{t['labels_one']} | {t['labels_one_wrong_addresses']} | {t['recovered']} | "
            f"{t['touching']} |"
        )
    print("unident_own misses:", sum(r["unident_own"] for r in out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
