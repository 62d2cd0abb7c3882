"""Every transaction the CoinJoin rules flag on cached worlds, with the truth's kind (issue 11).

`python -m bench.coinjoin_flags WORLD_DIR [WORLD_DIR ...] [--csv OUT.csv]` reads each world's
`store/` and `world/truth/txs.csv` (bench code only: the package never reads the truth) and
prints, per world, the flags of each CoinJoin rule by the truth's kind of transaction, and for
the generic `equal_output` rule the on-chain features that could tell an exchange batch from a
mixing round: input and output counts, distinct input addresses, input and payee script types,
the most common payee value and how many share it, whether it is a round BTC amount, and how
many distinct prior transactions and final clusters the inputs come from. It also checks every
true mix against the shape test alone (`coinjoin_shaped`, as if the specific rules had missed
it), so a change to the test that would lose a mix shows here.

With `--wasabi`, every tx of Wasabi shape by the counts and inputs alone (the `wasabi1` or
`wabisabi` rule's counts, every input P2WPKH or P2TR: what those rules asked before their
output test) gets the share of its value-sharing outputs paid to another type (P2PKH, P2SH,
P2WSH), summarised per truth kind: the rules now flag a tx only at a quarter or less.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from chainsleuth.cluster import kernels
from chainsleuth.cluster.engine import Clusters
from chainsleuth.cluster.ranges import analyze_range
from chainsleuth.cluster.rules import BY_CODE
from chainsleuth.core.script_types import ScriptType
from chainsleuth.store.store import Store

MIX_KINDS = ("whirlpool_mix", "wasabi_mix", "joinmarket_mix")


def _kinds(world: Path, txids: np.ndarray) -> np.ndarray:
    index = {bytes(t[::-1]).hex(): i for i, t in enumerate(txids)}
    kind = np.full(len(txids), "", dtype=object)
    with open(world / "world" / "truth" / "txs.csv", newline="") as f:
        for row in csv.DictReader(f):
            i = index.get(row["txid"])
            if i is not None:
                kind[i] = row["kind"]
    return kind


def tx_features(g, t: int, cluster_of: np.ndarray | None, kind: np.ndarray) -> dict[str, object]:
    """On-chain features of tx `t` (and the truth's kinds of the txs that funded it)."""
    fi, fi2 = (
        int(g.tx_first_input[t]),
        int(g.tx_first_input[t + 1] if t + 1 < g.n_txs else g.n_inputs),
    )
    fo, fo2 = (
        int(g.tx_first_output[t]),
        int(g.tx_first_output[t + 1] if t + 1 < g.n_txs else g.n_outputs),
    )
    spent = np.asarray(g.input_spent_output[fi:fi2])
    in_addr = np.asarray(g.input_address[fi:fi2]).astype(np.int64)
    in_types = np.asarray(g.output_script_type[spent])
    in_values = np.asarray(g.output_value[spent]).astype(np.int64)
    funding = np.searchsorted(np.asarray(g.tx_first_output), spent, side="right") - 1
    values = np.asarray(g.output_value[fo:fo2]).astype(np.int64)
    types = np.asarray(g.output_script_type[fo:fo2])
    pay = (values > 0) & (types != int(ScriptType.OP_RETURN))
    pv, pt = values[pay], types[pay]
    uniq, counts = np.unique(pv, return_counts=True)
    mode_v = int(uniq[counts.argmax()])
    mode_c = int(counts.max())
    repeated = int(counts[counts >= 2].sum())
    distinct_in = len(np.unique(in_addr))
    mode_types = int(np.bitwise_or.reduce(1 << pt[pv == mode_v].astype(np.int64)))
    shared = np.isin(pv, uniq[counts >= 2])
    repeated_types = int(np.bitwise_or.reduce(1 << pt[shared].astype(np.int64), initial=0))
    in_mask = int(np.bitwise_or.reduce(1 << in_types.astype(np.int64)))
    segwit = (int(ScriptType.P2WPKH), int(ScriptType.P2TR))
    row: dict[str, object] = {
        "n_in": fi2 - fi,
        "distinct_in": distinct_in,
        "n_pay": int(pay.sum()),
        "mode_v": mode_v,
        "mode_c": mode_c,
        "repeated": repeated,
        "distinct_values": len(uniq),
        "in_types": "/".join(sorted({str(ScriptType(int(x))) for x in in_types})),
        "pay_types": "/".join(sorted({str(ScriptType(int(x))) for x in pt})),
        "in_all_wabisabi_types": bool(np.isin(in_types, segwit).all()),
        "pay_all_wabisabi_types": bool(np.isin(pt, segwit).all()),
        "mode_round_0.001": mode_v % 100_000 == 0,
        "in_value_cv": float(in_values.std() / in_values.mean()) if in_values.mean() else 0.0,
        "funding_txs": len(np.unique(funding)),
        "funding_kinds": ";".join(
            f"{k}:{c}" for k, c in Counter(kind[funding].tolist()).most_common()
        ),
        "branch": "single" if 4 * mode_c >= distinct_in else "multi",
        "equal_types": "/".join(str(ScriptType(b)) for b in range(16) if mode_types >> b & 1),
        "shaped_by_counts": bool(
            kernels.coinjoin_shaped(int(pay.sum()), mode_c, repeated, distinct_in)
        ),
        "shaped": bool(
            kernels.coinjoin_shaped(
                int(pay.sum()), mode_c, repeated, distinct_in, mode_types, repeated_types, in_mask
            )
        ),
    }
    if cluster_of is not None:
        cl = np.asarray(cluster_of[in_addr])
        row["final_in_clusters"] = len(np.unique(cl))
        row["largest_in_cluster_share"] = float(
            np.unique(cl, return_counts=True)[1].max() / len(cl)
        )
    return row


def world_flags(world: Path) -> tuple[list[dict[str, object]], Counter, Counter]:
    store = Store.open(world / "store")
    g = store.graph
    analysis, _ = analyze_range(g, 0, g.n_txs, -1, want_votes=False, want_fresh=False)
    code = np.asarray(analysis.coinjoin)
    kind = _kinds(world, g.tx_txid)
    try:
        cluster_of = np.asarray(Clusters(world / "store").cluster_of[: g.n_addresses])
    except Exception:  # noqa: BLE001 - a world without clusters: the feature is left out
        cluster_of = None
    flags: Counter = Counter()
    for t in np.flatnonzero(code):
        flags[(BY_CODE[int(code[t])].name, kind[t])] += 1
    rows = []
    for t in np.flatnonzero(code == kernels.CJ_EQUAL_OUTPUT):
        row = {"world": world.name, "tx": int(t), "truth": kind[t]}
        row.update(tx_features(g, int(t), cluster_of, kind))
        rows.append(row)
    # Every true mix against the shape test alone: (kind, by counts, with script types, branch).
    shape: Counter = Counter()
    for t in np.flatnonzero(np.isin(kind, MIX_KINDS)):
        f = tx_features(g, int(t), None, kind)
        shape[(kind[t], f["shaped_by_counts"], f["shaped"], f["branch"])] += 1
    return rows, flags, shape


def wasabi_shares(world: Path) -> dict[str, list[float]]:
    """Per truth kind, the share of value-sharing outputs of a non-Wasabi script type of each
    tx that the Wasabi rules' counts and input types alone would flag."""
    g = Store.open(world / "store").graph
    kind = _kinds(world, g.tx_txid)
    first_in, first_out = np.asarray(g.tx_first_input), np.asarray(g.tx_first_output)
    n_in = np.diff(np.append(first_in, g.n_inputs))
    n_out = np.diff(np.append(first_out, g.n_outputs))
    segwit = (int(ScriptType.P2WPKH), int(ScriptType.P2TR))
    out: dict[str, list[float]] = {}
    for t in np.flatnonzero((n_in >= 10) & (n_out >= 10)):
        fi, fo = int(first_in[t]), int(first_out[t])
        spent = np.asarray(g.input_spent_output[fi : fi + n_in[t]])
        if not np.isin(np.asarray(g.output_script_type[spent]), segwit).all():
            continue
        values = np.asarray(g.output_value[fo : fo + n_out[t]]).astype(np.int64)
        types = np.asarray(g.output_script_type[fo : fo + n_out[t]])
        pay = (values > 0) & (types != int(ScriptType.OP_RETURN))
        pv, pt = values[pay], types[pay]
        uniq, counts = np.unique(pv, return_counts=True)
        mode_v, mode_c = int(uniq[counts.argmax()]), int(counts.max())
        shared = np.isin(pv, uniq[counts >= 2])
        wasabi1 = mode_c >= 10 and n_in[t] >= mode_c and 9_000_000 <= mode_v <= 12_000_000
        wabisabi = n_in[t] >= 50 and len(pv) >= 50 and 2 * int(shared.sum()) >= len(pv)
        if wasabi1 or wabisabi:
            other = int((shared & ~np.isin(pt, segwit)).sum())
            out.setdefault(kind[t] or "?", []).append(other / max(int(shared.sum()), 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("worlds", nargs="+", type=Path)
    ap.add_argument("--csv", type=Path, default=None)
    ap.add_argument("--wasabi", action="store_true", help="Wasabi-shaped txs' output types only")
    args = ap.parse_args()
    if args.wasabi:
        for world in args.worlds:
            for k, shares in sorted(wasabi_shares(world).items()):
                q = np.quantile(shares, [0, 0.5, 1])
                print(f"{world.name} {k:20s} {len(shares):5d} txs, share of other types "
                      f"min {q[0]:.2f} median {q[1]:.2f} max {q[2]:.2f}, "
                      f"over a quarter {sum(x > 0.25 for x in shares)}")  # fmt: skip
        return
    every: list[dict[str, object]] = []
    for world in args.worlds:
        rows, flags, shape = world_flags(world)
        every += rows
        print(f"== {world.name}")
        for (rule, k), c in sorted(flags.items()):
            print(f"  flag {rule:12s} {k or '?':22s} {c}")
        for key, c in sorted(shape.items()):
            print(f"  mix-shape {key} {c}")
    if args.csv and every:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(every[0].keys()))
            w.writeheader()
            w.writerows(every)


if __name__ == "__main__":
    main()
