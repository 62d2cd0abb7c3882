"""How far chain evidence could carry an exchange's name, per exchange: an upper bound (issue 11).

For a world built by `bench.accuracy_matrix` (bench-output/accuracy/<profile>-<scale>-<seed>/:
world/, store/ clustered and tagged, case/ investigated), every *missed* deposit (eligible by
`cases.evaluate`'s rules, and no right exchange lead at confidence >= 0.5) is taken with the
exchange E that funded its first trail-holding payment (`truth/payments.csv`). The tx that
funded it (`funding_txid`, E's own tx) has inputs in E's wallet. The question asked: are those
inputs connected to an address of E's tags by flows *among E's own txs* (by the truth's
ownership: `truth/txs.csv` says who made each tx, `truth/addresses.csv` who owns each address),
and which kinds of E's txs does the connection need?

Edges, each between two addresses E owns (never through another owner's address):

- `cluster`: two E addresses in one cluster of the store (the clustering as built);
- `cospend`: two inputs of one of E's txs (what the multi-input rule would join);
- `batch_change`: an input of E's batched withdrawal and its change (the output E owns);
- `forward_change`: an input of E's forward (a deposit paid straight to a buyer) and its change;
- `sweep_hot` / `sweep_cold`: a swept deposit and the sweep's one output (hot / cold address);
- `cold_move`: a hot input of a move to cold storage and its outputs (cold address, change);
- `refill`: a cold input of a refill and its outputs (hot address, cold change).

Levels add the kinds one at a time in that order (`cumulative`), and each kind alone on top of
`cluster` (`alone`). A missed deposit is *reachable* at a level when one of its funding tx's
inputs is in a component holding a tag of E. The last cumulative level uses every flow among
E's txs: the honest upper bound for any rule that lends E's name along E's own money.

Observable features of each kind's txs (what could tell them apart on chain without the truth)
are summarized per kind over the whole world: inputs, outputs, script types of inputs and
outputs, tx version, nLockTime set, RBF signalled, output order (change last), and for the
one-output, 3+-input shape the share owned by an exchange (how a "sweep link" would score).

    python -m bench.attribution_bound hard-medium-1 hard-small-7
    python -m bench.attribution_bound --json out.json --exchanges ember cobalt hard-medium-1

Reads the truth (bench code only; the package never does). Writes nothing unless --json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"


def world_parser(doc: str | None) -> argparse.ArgumentParser:
    """A per-world bench script's parser: the world names (`<profile>-<scale>-<seed>`) under
    `--root` (the cached accuracy worlds), and `--json` for the figures."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--json", type=Path)
    return ap


#: Edge kinds, in the order the cumulative levels add them.
KINDS = (
    "cluster",
    "cospend",
    "batch_change",
    "forward_change",
    "sweep_hot",
    "sweep_cold",
    "cold_move",
    "refill",
)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = coo_matrix((np.ones(a.shape[0], np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(m, directed=False)
    return np.asarray(labels, np.int64)


def deciding(case: Path) -> dict[str, tuple[int, str]]:
    """{deposit: (amount, exchange)}: the case's lead that counts per deposit, at confidence
    >= 0.5, as `cases.evaluate` picks it."""
    from chainsleuth.cases.evaluate import _SUBPOENA_CATEGORIES, deciding_leads

    rows = [r for r in _rows(case / "leads.csv") if r["source_category"] in _SUBPOENA_CATEGORIES]
    return deciding_leads(
        (r["deposit_address"], r["source_entity"], int(r["amount_sat"]), float(r["confidence"]))
        for r in rows
    )


def _eligible(world: Path, case: Path) -> list[tuple[str, dict[str, str], bool]]:
    """(deposit, its first trail-holding payment, missed) of every eligible deposit; missed when
    it has no right exchange lead at confidence >= 0.5 (the deciding row as `cases.evaluate`
    picks it)."""
    from chainsleuth.cases.evaluate import _holds, _truth

    payments, deposits = _truth(world)
    best = deciding(case)
    out = []
    for d in deposits:
        holding = [p for p in payments.get(d, []) if _holds(p)]
        if not holding:
            continue
        right = {p["funding_exchange"] for p in holding}
        named = best.get(d)
        out.append((d, holding[0], named is None or named[1] not in right))
    return out


class World:
    """A built world's arrays joined to its truth: owner and role per address id, maker and
    kind per tx id."""

    def __init__(self, name: str, root: Path = OUT) -> None:
        from chainsleuth.cluster.engine import Clusters
        from chainsleuth.cluster.layers import LayeredIds
        from chainsleuth.store.store import Store

        self.name = name
        self.world, self.store_dir, self.case = (
            root / name / "world",
            root / name / "store",
            root / name / "case",
        )
        store = Store.open(self.store_dir)
        self.store = store
        ids = Clusters(self.store_dir).cluster_of
        self.cluster_of = np.asarray(
            ids.indexable() if isinstance(ids, LayeredIds) else ids, np.int64
        )
        g = store.graph
        self.first_input = np.asarray(g.tx_first_input, np.int64)
        self.first_output = np.asarray(g.tx_first_output, np.int64)
        self.input_address = np.asarray(g.input_address, np.int64)
        self.output_address = np.asarray(g.output_address, np.int64)
        self.output_type = np.asarray(g.output_script_type)
        self.input_spent_output = np.asarray(g.input_spent_output, np.int64)
        n_txs, n_addr = self.first_input.shape[0], store.counts["addresses"]
        self.n_txs, self.n_addr = n_txs, n_addr
        aid = {a: i for i, a in enumerate(store.addresses(np.arange(n_addr)).to_pylist())}
        self.aid = aid
        self.owner = np.full(n_addr, -1, np.int64)  # wallet index
        self.role = np.full(n_addr, "", object)
        self.wallets: list[str] = []
        windex: dict[str, int] = {}
        self.entity_of_wallet: dict[str, str] = {}
        for r in _rows(self.world / "truth" / "addresses.csv"):
            i = aid.get(r["address"])
            if i is None:
                continue
            w = r["wallet_id"]
            if w not in windex:
                windex[w] = len(self.wallets)
                self.wallets.append(w)
            self.owner[i] = windex[w]
            self.role[i] = r["role"]
        self.windex = windex
        tid = {t: i for i, t in enumerate(store.txids(np.arange(n_txs)).to_pylist())}
        self.tid = tid
        self.tx_kind = np.full(n_txs, "", object)
        self.tx_maker = np.full(n_txs, -1, np.int64)
        for r in _rows(self.world / "truth" / "txs.csv"):
            i = tid.get(r["txid"])
            if i is None:
                continue
            self.tx_kind[i] = r["kind"]
            self.tx_maker[i] = windex.get(r["wallet_id"], -1)
        self.tags: dict[str, list[int]] = defaultdict(list)
        import yaml

        for f in sorted((self.world / "tags").glob("*.yaml")):
            for t in (yaml.safe_load(f.read_text()) or {}).get("tags", []):
                i = aid.get(t["address"])
                if i is not None and t.get("category") == "exchange":
                    self.tags[t["actor"]].append(i)

    def inputs(self, t: int) -> np.ndarray:
        hi = self.first_input[t + 1] if t + 1 < self.n_txs else self.input_address.shape[0]
        return self.input_address[self.first_input[t] : hi]

    def outputs(self, t: int) -> np.ndarray:
        hi = self.first_output[t + 1] if t + 1 < self.n_txs else self.output_address.shape[0]
        return self.output_address[self.first_output[t] : hi]


def _edges(w: World, wallet: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Edges of each kind among `wallet`'s addresses."""
    mine = np.flatnonzero(w.owner == wallet)
    edges: dict[str, tuple[list[int], list[int]]] = {k: ([], []) for k in KINDS}
    # cluster: every member to the first member of its cluster
    cl = w.cluster_of[mine]
    order = np.argsort(cl, kind="stable")
    cl_s, mine_s = cl[order], mine[order]
    head = np.r_[True, cl_s[1:] != cl_s[:-1]]
    first = mine_s[np.maximum.accumulate(np.where(head, np.arange(head.shape[0]), 0))]
    edges["cluster"] = (list(first), list(mine_s))
    for t in np.flatnonzero(w.tx_maker == wallet).tolist():
        kind = w.tx_kind[t]
        ins = w.inputs(t)
        ins = ins[(ins >= 0) & (ins < w.n_addr)]
        ins = ins[w.owner[ins] == wallet]
        outs = w.outputs(t)
        outs = outs[(outs >= 0) & (outs < w.n_addr)]
        outs = outs[w.owner[outs] == wallet]
        if ins.shape[0] == 0:
            continue
        a0 = int(ins[0])
        for x in ins[1:].tolist():
            edges["cospend"][0].append(a0)
            edges["cospend"][1].append(x)
        if kind == "exchange_withdrawal":
            k = "batch_change"
        elif kind == "exchange_forward":
            k = "forward_change"
        elif kind == "exchange_sweep":
            cold = outs.shape[0] and w.role[outs[0]] == "cold"
            k = "sweep_cold" if cold else "sweep_hot"
        elif kind == "exchange_cold_move":
            k = "refill" if w.role[a0] == "cold" else "cold_move"
        else:
            continue
        for y in outs.tolist():
            edges[k][0].append(a0)
            edges[k][1].append(y)
    return {k: (np.array(a, np.int64), np.array(b, np.int64)) for k, (a, b) in edges.items()}


def _reach(
    w: World, kinds: tuple[str, ...], edges: dict[str, Any], tagged: list[int]
) -> np.ndarray:
    """Bool per address: in a component (edges of `kinds`) holding one of `tagged`."""
    a = np.concatenate([edges[k][0] for k in kinds] + [np.zeros(0, np.int64)])
    b = np.concatenate([edges[k][1] for k in kinds] + [np.zeros(0, np.int64)])
    comp = _components(a, b, w.n_addr)
    hit = np.zeros(w.n_addr, np.bool_)
    if tagged:
        hit = np.isin(comp, comp[np.asarray(tagged, np.int64)])
    return hit


def bound(w: World, exchanges: list[str] | None = None) -> dict[str, Any]:
    """Per exchange: missed deposits, and the share reachable at each level."""
    by_ex: dict[str, list[tuple[str, dict[str, str], bool]]] = defaultdict(list)
    for d, p, miss in _eligible(w.world, w.case):
        by_ex[p["funding_exchange"]].append((d, p, miss))
    out: dict[str, Any] = {}
    for ex in sorted(by_ex):
        if exchanges and ex not in exchanges:
            continue
        wallet = w.windex.get(f"exchange-{ex}")
        if wallet is None:
            continue
        edges = _edges(w, wallet)
        funders = []
        missed = np.array([m for _d, _p, m in by_ex[ex]], np.bool_)
        for _d, p, _m in by_ex[ex]:
            t = w.tid.get(p["funding_txid"])
            if t is None:
                funders.append(np.zeros(0, np.int64))
                continue
            ins = w.inputs(t)
            ins = ins[(ins >= 0) & (ins < w.n_addr)]
            funders.append(ins[w.owner[ins] == wallet])
        tagged = w.tags.get(ex, [])

        def reach(
            kinds: tuple[str, ...], edges: Any = edges, funders: Any = funders, tagged: Any = tagged
        ) -> np.ndarray:
            hit = _reach(w, kinds, edges, tagged)
            return np.array([bool(f.shape[0]) and bool(hit[f].any()) for f in funders], np.bool_)

        cumulative, cumulative_eligible = {}, {}
        for i in range(len(KINDS)):
            r = reach(KINDS[: i + 1])
            cumulative[KINDS[i]] = int((r & missed).sum())
            cumulative_eligible[KINDS[i]] = int(r.sum())
        alone = {k: int((reach(("cluster", k)) & missed).sum()) for k in KINDS[1:]}
        # how many components the whole flow leaves E's wallet in, and how many hold a tag
        mine = np.flatnonzero(w.owner == wallet)
        a = np.concatenate([edges[k][0] for k in KINDS])
        b = np.concatenate([edges[k][1] for k in KINDS])
        comp = _components(a, b, w.n_addr)[mine]
        out[ex] = {
            "eligible": len(funders),
            "missed": int(missed.sum()),
            "funder_in_wallet": sum(bool(f.shape[0]) for f in funders),
            "tags": len(tagged),
            "cumulative": cumulative,
            "cumulative_eligible": cumulative_eligible,
            "alone": alone,
            "edges": {k: int(edges[k][0].shape[0]) for k in KINDS},
            "components": int(np.unique(comp).shape[0]),
            "addresses": int(mine.shape[0]),
            "tx_kinds": dict(Counter(w.tx_kind[w.tx_maker == wallet].tolist())),
        }
    return out


def features(w: World) -> dict[str, Any]:
    """Observable features of each exchange tx kind, and of look-alike shapes by owner."""

    n_in = np.diff(np.r_[w.first_input, w.input_address.shape[0]])
    n_out = np.diff(np.r_[w.first_output, w.output_address.shape[0]])
    ex_wallets = {i for i, x in enumerate(w.wallets) if x.startswith("exchange-")}
    is_ex = np.isin(w.tx_maker, list(ex_wallets))
    res: dict[str, Any] = {}
    for kind in ("exchange_sweep", "exchange_withdrawal", "exchange_cold_move", "exchange_forward"):
        sel = np.flatnonzero(w.tx_kind == kind)
        res[kind] = {
            "txs": int(sel.shape[0]),
            "inputs_median": float(np.median(n_in[sel])) if sel.shape[0] else 0.0,
            "inputs_1": int((n_in[sel] == 1).sum()),
            "outputs_median": float(np.median(n_out[sel])) if sel.shape[0] else 0.0,
        }
    # the sweep shape: 3+ inputs, one output; who made them
    shape = (n_in >= 3) & (n_out == 1)
    res["shape_3in_1out"] = {
        "txs": int(shape.sum()),
        "by_kind": dict(Counter(w.tx_kind[shape].tolist()).most_common(8)),
        "exchange_share": float(is_ex[shape].mean()) if shape.any() else 0.0,
    }
    # one output paid to the same owner as the inputs (send-all to self), by input count
    same = np.zeros(w.n_txs, np.bool_)
    one = np.flatnonzero(n_out == 1)
    first_in = w.input_address[np.minimum(w.first_input[one], w.input_address.shape[0] - 1)]
    out0 = w.output_address[w.first_output[one]]
    ok = (first_in >= 0) & (first_in < w.n_addr) & (out0 >= 0) & (out0 < w.n_addr)
    same[one[ok]] = w.owner[first_in[ok]] == w.owner[out0[ok]]
    res["one_output_same_owner_by_inputs"] = {
        str(k): [int((same & (n_out == 1) & (np.minimum(n_in, 5) == k)).sum()),
                 int(((n_out == 1) & (np.minimum(n_in, 5) == k)).sum())]
        for k in range(1, 6)
    }  # fmt: skip
    return res


def habit_gain(name: str, root: Path = OUT) -> dict[str, Any]:
    """Clusters the wallet styles name with the change-address habit and not without it (or
    name otherwise), scored by their majority owner (`bench.link_candidates._owners`)."""
    from bench import link_candidates as lc
    from chainsleuth.trace import services as sv

    world, store_dir = root / name / "world", root / name / "store"
    seeds = world / "seeds" / "deposits.csv"
    keep = sv.STYLE_MIN_CHANGE_ADDRESS
    try:
        sv.STYLE_MIN_CHANGE_ADDRESS = 1 << 40  # a named wallet's habit is never known
        without = lc._attribution_before_change(store_dir, seeds)["attribution"]
    finally:
        sv.STYLE_MIN_CHANGE_ADDRESS = keep
    state = lc._attribution_before_change(store_dir, seeds)
    with_ = state["attribution"]
    changed = np.array(sorted(c for c, v in with_.items() if without.get(c) != v), np.int64)
    out: dict[str, Any] = {"world": name, "changed": int(changed.shape[0])}
    if changed.shape[0] == 0:
        return {**out, "right": 0, "wrong": 0, "right_addresses": 0, "wrong_addresses": 0}
    owner = lc._owners(state["store"], state["cluster_of"], world, changed)
    all_ids = np.asarray(state["cluster_of"][:], np.int64)
    sizes = np.bincount(np.searchsorted(changed, all_ids[np.isin(all_ids, changed)]),
                        minlength=changed.shape[0])  # fmt: skip
    right = np.array([owner.get(int(c)) == with_[int(c)][0] for c in changed.tolist()], bool)
    by_name = Counter(with_[int(c)][0] for c in changed.tolist())
    return {
        **out,
        "right": int(right.sum()),
        "wrong": int((~right).sum()),
        "right_addresses": int(sizes[right].sum()),
        "wrong_addresses": int(sizes[~right].sum()),
        "by_name": dict(by_name),
        "wrong_owners": dict(Counter(owner.get(int(c), "?") for c in changed[~right].tolist())),
    }


def misses(name: str, root: Path = OUT) -> dict[str, dict[str, int]]:
    """Per exchange: where each missed deposit's deciding row at any confidence ends (its
    largest-amount row of leads.csv): category, right or wrong exchange, above or below 0.5."""
    world, case = root / name / "world", root / name / "case"
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(case / "leads.csv"):
        rows[r["deposit_address"]].append(r)
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for d, p, missed in _eligible(world, case):
        if not missed:
            continue
        ex = p["funding_exchange"]
        if not rows.get(d):
            out[ex]["no row"] += 1
            continue
        best = max(rows[d], key=lambda r: int(r["amount_sat"]))
        kind = best["source_category"]
        if kind == "exchange":
            kind = "exchange right" if best["source_entity"] == ex else "exchange wrong"
        out[ex][f"{kind} {'>=' if float(best['confidence']) >= 0.5 else '<'} 0.5"] += 1
    return {ex: dict(c) for ex, c in sorted(out.items())}


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "| world | exchange | missed / eligible | "
        + " | ".join(f"+{k}" for k in KINDS)
        + " | eligible reachable, all flow | components / addresses |",
        "|---|---|---|" + "---|" * (len(KINDS) + 2),
    ]
    for r in results:
        for ex, v in r["bound"].items():
            m = v["missed"] or 1
            cells = [f"{v['cumulative'][k] / m:.2f}" for k in KINDS]
            lines.append(
                f"| {r['world']} | {ex} | {v['missed']} / {v['eligible']} | " + " | ".join(cells)
                + f" | {v['cumulative_eligible'][KINDS[-1]] / max(v['eligible'], 1):.2f}"
                + f" | {v['components']} / {v['addresses']} |"
            )  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+", help="<profile>-<scale>-<seed> under bench-output")
    parser.add_argument("--exchanges", nargs="*", help="only these exchanges")
    parser.add_argument("--features", action="store_true", help="also the tx features")
    parser.add_argument("--root", type=Path, default=OUT, help="where the worlds are built")
    parser.add_argument("--misses", action="store_true",
                        help="only where each exchange's missed deposits end")  # fmt: skip
    parser.add_argument("--habit", action="store_true",
                        help="only score what the change-address habit adds to the styles")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    if args.misses:
        for name in args.worlds:
            out(json.dumps({"world": name, "misses": misses(name, args.root)}))
        return 0
    if args.habit:
        for name in args.worlds:
            h = habit_gain(name, args.root)
            out(json.dumps(h))
            results.append(h)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    for name in args.worlds:
        w = World(name, args.root)
        r: dict[str, Any] = {"world": name, "bound": bound(w, args.exchanges)}
        if args.features:
            r["features"] = features(w)
        out(json.dumps(r))
        results.append(r)
    out(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
