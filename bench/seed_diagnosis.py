"""Why a world's never-reuse exchanges stay unnamed: the wallet-style rule's view (issue 11).

For a world built by `bench.accuracy_matrix` (bench-output/accuracy/<profile>-<scale>-<seed>/:
world/, store/ clustered and tagged, case/ investigated), reading the truth (bench code only):

- `styles`: the first wallet-style round as `cases.investigate._lend_by_style` runs it (after
  the service entities and `_lend_to_funders`): each named wallet's habits, and the untagged
  services grouped by their majority owner, with the names `trace.services.style_matches`
  finds them compatible with and what they show (H hot type, F fingerprint, P change position,
  D deposit type, A fresh/reused change; lower case: not shown).
- `tags`: each exchange tag, the txs that pay and spend it (truth kind, inputs, outputs).
- `own`: per exchange, what spends its own (non-deposit) outputs by the end of the world (and
  what made those never spent), and
  the heights of its sweeps modulo 4 (the simulator's schedule phase, never used by a rule).
- `split`: the exchanges' multi-input txs whose inputs the clusters do not join, by kind, and
  how many of them the cluster stage flagged as CoinJoins.
- `unblind`: an experiment, not a rule: investigate again with named wallets whose style is
  unseen (blind) left out of `style_matches`, score, and count wrong deciding leads at >= 0.5
  by (true exchange, named exchange). Writes the case under --work.

    python -m bench.seed_diagnosis styles hard-medium-7 realistic-medium-7
    python -m bench.seed_diagnosis unblind --work /tmp/x hard-medium-7

Writes nothing but the experiment's case.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT, World, _rows, deciding
from bench.link_candidates import _attribution_before_change

EXCHANGE_PREFIX = "exchange-"


def styles(name: str, root: Path = OUT) -> dict[str, Any]:
    """Named wallets' habits and the untagged services by majority owner (module docstring)."""
    from chainsleuth.cases import investigate as inv
    from chainsleuth.cases.rows import UNIDENTIFIED_SERVICE
    from chainsleuth.cluster.learned import read_fingerprints
    from chainsleuth.trace import services as sv

    w = World(name, root)
    st = _attribution_before_change(w.store_dir, w.world / "seeds" / "deposits.csv", styles=False)
    store, cluster_of, attribution = st["store"], st["cluster_of"], st["attribution"]
    clusters = np.fromiter(attribution.keys(), np.int64, len(attribution))
    names: dict[tuple[str | None, str], int] = {}
    label = np.fromiter(
        (names.setdefault(v, len(names)) for v in attribution.values()), np.int64, len(attribution)
    )
    by_label = list(names)
    unident = np.array([v[1] == UNIDENTIFIED_SERVICE for v in by_label], np.bool_)
    mixing = np.array([v[1] in inv._MIXING_CATEGORIES for v in by_label], np.bool_)
    named = np.flatnonzero(~unident & ~mixing)
    # majority owner (wallet, exchange wallets by entity) of each label's addresses
    members = np.flatnonzero(np.isin(w.cluster_of, clusters))
    lab_of = dict(zip(clusters.tolist(), label.tolist(), strict=True))
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for a in members.tolist():
        o = int(w.owner[a])
        wallet = w.wallets[o] if o >= 0 else "?"
        tally[lab_of[int(w.cluster_of[a])]][wallet.removeprefix(EXCHANGE_PREFIX)] += 1

    def owner(g: int) -> str:
        return tally[g].most_common(1)[0][0] if tally[g] else "?"

    fp = read_fingerprints(store, 0, store.counts["txs"], sv.TX_SLICE)
    group = sv.ClusterGroups.of(clusters, label)
    s = sv.wallet_styles(store, st["shapes"], cluster_of, group, fp)
    s = sv.blind_styles(store, st["shapes"], cluster_of, s, group, named, fp)
    asked = np.union1d(named, np.flatnonzero(unident))  # as `_lend_by_style` asks
    s = sv.received_deposits(store, st["shapes"], cluster_of, s, group, asked)
    pos_n = s.change_position(sv.STYLE_MIN_LAST, sv.STYLE_MIN_SHUFFLED)
    addr_n = s.change_address(sv.STYLE_MIN_CHANGE_ADDRESS)
    out: dict[str, Any] = {"world": name, "named": {}, "candidates": {}}
    for g in named.tolist():
        out["named"][str(by_label[g][0])] = {
            "owner": owner(g),
            "addresses": sum(tally[g].values()),
            "hot": int(s.hot[g]),
            "fingerprint": int(s.fingerprint[g]),
            "deposit": int(s.deposit[g]),
            "change_last_elsewhere": [int(s.change_last[g]), int(s.change_elsewhere[g])],
            "change_fresh_reused": [int(s.change_fresh[g]), int(s.change_reused[g])]
            if s.change_fresh is not None and s.change_reused is not None
            else None,
            "position": int(pos_n[g]),
            "fresh": int(addr_n[g]),
        }
    cand = np.flatnonzero(unident)
    match = sv.style_matches(s, named, cand)
    pos_c = s.change_position(sv.STYLE_MIN_LAST, 1)[cand]
    addr_c = s.change_address(1)[cand]
    habits_c = (s.hot[cand], s.fingerprint[cand], pos_c, s.deposit[cand])
    habits_n = (s.hot[named], s.fingerprint[named], pos_n[named], s.deposit[named])
    compatible = np.ones((cand.shape[0], named.shape[0]), np.bool_)
    for hc, hn in zip(habits_c, habits_n, strict=True):
        both = (hc[:, None] >= 0) & (hn[None, :] >= 0)
        compatible &= ~both | (hc[:, None] == hn[None, :])
    an = addr_n[named]
    both = (addr_c[:, None] >= 0) & (an[None, :] >= 0)
    compatible &= ~both | (addr_c[:, None] == an[None, :])
    ex = [str(by_label[g][0]) for g in named.tolist()]
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for i, g in enumerate(cand.tolist()):
        shows = "".join(
            c.upper() if v >= 0 else c
            for c, v in zip("hfpd", (h[i] for h in habits_c), strict=True)
        ) + ("A" if addr_c[i] >= 0 else "a")
        compat = "+".join(n for n, ok in zip(ex, compatible[i], strict=True) if ok) or "none"
        got = str(by_label[match[i]][0]) if match[i] >= 0 else "-"
        rows[owner(g)][f"compatible {compat} | shows {shows} | named {got}"] += 1
    out["candidates"] = {
        o: {"services": sum(c.values()), "by": dict(c.most_common())}
        for o, c in sorted(rows.items())
        if not o.startswith(("user-", "customer-", "merchant-", "miner-", "privacy-", "?"))
    }
    return out


def tags(name: str, root: Path = OUT) -> dict[str, list[dict[str, Any]]]:
    """Each exchange tag: its role (truth) and the txs that pay and spend it."""
    w = World(name, root)
    spent_by = w.store.spent_by_tx()

    def tx(t: int) -> str:
        kind = w.tx_kind[t] or "?"
        maker = w.wallets[w.tx_maker[t]] if w.tx_maker[t] >= 0 else ""
        return f"{kind} by {maker}, {w.inputs(t).shape[0]} in, {w.outputs(t).shape[0]} out"

    out: dict[str, list[dict[str, Any]]] = {}
    for ex, ids in sorted(w.tags.items()):
        for a in ids:
            outputs = np.flatnonzero(w.output_address == a)
            made = np.searchsorted(w.first_output, outputs, side="right") - 1
            out.setdefault(ex, []).append(
                {
                    "role": str(w.role[a]),
                    "paid_by": [tx(int(t)) for t in made.tolist()],
                    "spent_by": [
                        tx(int(s)) if s >= 0 else "unspent"
                        for s in np.asarray(spent_by[outputs]).tolist()
                    ],
                }
            )
    return out


def own(name: str, root: Path = OUT) -> dict[str, Any]:
    """Per exchange: the spends of its own (non-deposit) outputs, and its sweeps' height mod 4."""
    w = World(name, root)
    spent_by = np.asarray(w.store.spent_by_tx(), np.int64)
    heights = {r["txid"]: int(r["block_height"]) for r in _rows(w.world / "truth" / "txs.csv")}
    height = np.full(w.n_txs, -1, np.int64)
    for t, i in w.tid.items():
        height[i] = heights.get(t, -1)
    paid = (w.output_address >= 0) & (w.output_address < w.n_addr)
    out_owner = np.full(w.output_address.shape[0], -1, np.int64)
    out_role = np.full(w.output_address.shape[0], "", object)
    out_owner[paid] = w.owner[w.output_address[paid]]
    out_role[paid] = w.role[w.output_address[paid]]
    res: dict[str, Any] = {}
    for wallet, i in sorted(w.windex.items()):
        if not wallet.startswith(EXCHANGE_PREFIX):
            continue
        mine = np.flatnonzero((out_owner == i) & (out_role != "deposit"))
        spends = Counter(
            str(w.tx_kind[s]) if s >= 0 else "unspent" for s in spent_by[mine].tolist()
        )
        sweeps = height[(w.tx_kind == "exchange_sweep") & (w.tx_maker == i)]
        unspent = mine[spent_by[mine] < 0]
        made = np.searchsorted(w.first_output, unspent, side="right") - 1
        res[wallet.removeprefix(EXCHANGE_PREFIX)] = {
            "own_outputs": int(mine.shape[0]),
            "spent_by": dict(spends.most_common()),
            "unspent_made_by": dict(Counter(str(k) for k in w.tx_kind[made]).most_common()),
            "sweep_height_mod_4": dict(sorted(Counter((sweeps % 4).tolist()).items())),
        }
    return res


def split(name: str, root: Path = OUT) -> dict[str, dict[str, int]]:
    """The exchanges' multi-input txs by kind: inputs in one cluster or split, and flagged."""
    from chainsleuth.cases import investigate as inv

    w = World(name, root)
    flagged, _mixer = inv._coinjoins(w.store_dir, w.n_txs)
    flagged = np.asarray(flagged, np.bool_)
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for t in np.flatnonzero(w.tx_maker >= 0).tolist():
        wallet = w.wallets[w.tx_maker[t]]
        if not wallet.startswith(EXCHANGE_PREFIX):
            continue
        ins = w.inputs(t)
        ins = ins[(ins >= 0) & (ins < w.n_addr)]
        if ins.shape[0] < 2:
            continue
        how = "split" if np.unique(w.cluster_of[ins]).shape[0] > 1 else "one cluster"
        key = f"{w.tx_kind[t]} {how}" + (", flagged CoinJoin" if flagged[t] else "")
        out[wallet.removeprefix(EXCHANGE_PREFIX)][key] += 1
    return {ex: dict(sorted(c.items())) for ex, c in sorted(out.items())}


def unblind(name: str, work: Path, root: Path = OUT) -> dict[str, Any]:
    """The experiment: blind named wallets do not block style matches (module docstring)."""
    from chainsleuth.cases import investigate as inv
    from chainsleuth.cases.evaluate import _holds, _truth, score_case
    from chainsleuth.trace import services as sv

    original = inv.style_matches

    def seeing_only(styles: Any, named: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        blind = (styles.hot[named] == sv.STYLE_UNSEEN) & (
            styles.fingerprint[named] == sv.STYLE_UNSEEN
        )
        return original(styles, named[~blind], candidate)

    world = root / name / "world"
    case = work / name / "case"
    inv.style_matches = seeing_only  # type: ignore[assignment]
    try:
        inv.investigate(root / name / "store", world / "seeds" / "deposits.csv", case, report=False)
    finally:
        inv.style_matches = original  # type: ignore[assignment]
    score = score_case(world, case).as_dict()
    payments, deposits = _truth(world)
    best = deciding(case)
    wrong: Counter[str] = Counter()
    for d in deposits:
        holding = [p for p in payments.get(d, []) if _holds(p)]
        if not holding or d not in best:
            continue
        right = {p["funding_exchange"] for p in holding}
        if best[d][1] not in right:
            wrong[f"{holding[0]['funding_exchange']} named {best[d][1]}"] += 1
    return {
        "world": name,
        "lead_precision": round(score["lead_precision"], 4),
        "lead_recall": round(score["lead_recall"], 4),
        "named": score["named"],
        "correct": score["correct"],
        "per_exchange": {k: round(v["recall"], 3) for k, v in score["per_exchange"].items()},
        "wrong": dict(wrong.most_common()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("styles", "tags", "own", "split", "unblind"))
    parser.add_argument("worlds", nargs="+", help="<profile>-<scale>-<seed> under --root")
    parser.add_argument("--root", type=Path, default=OUT, help="where the worlds are built")
    parser.add_argument("--work", type=Path, default=Path("/tmp/seed_diagnosis"),
                        help="unblind: where its cases go")  # fmt: skip
    args = parser.parse_args(argv)
    for name in args.worlds:
        if args.what == "unblind":
            result: Any = unblind(name, args.work, args.root)
        else:
            result = {"styles": styles, "tags": tags, "own": own, "split": split}[args.what](
                name, args.root
            )
        print(json.dumps({"world": name, args.what: result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
