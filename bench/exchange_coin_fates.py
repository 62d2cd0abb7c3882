"""What became of the exchanges' own hot-wallet coins by the tip, by the tx kind that made
them (issue 11; docs/accuracy-log.md "Cash-outs: the misses are forward remainders the
simulated hot wallets never spend").

A forward (truth kind `exchange_forward`: one customer deposit paying one withdrawal, the rest
back to the exchange's hot wallet) is told from a person paying with change only by what the
exchange later does with that rest (`cases.cashouts` rule 4: a payout spends it). This counts,
per cached world, every output paid to an exchange's `hot` address (truth `addresses.csv`)
by the kind of the tx that made it (sweep output, withdrawal change, forward remainder, ...),
split by age at the tip (made `OLD` or more blocks before it, or later), and how many are
unspent at the tip. Bench code: it reads the truth, the package never does.

    python -m bench.exchange_coin_fates hard-small-4 realistic-small-2 ...
    python -m bench.exchange_coin_fates --root OTHER/bench-output/accuracy hard-small-4 ...
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path("bench-output/accuracy")
#: blocks before the tip from which a coin counts as old (a small world has ~700 blocks)
OLD = 150


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fates(root: Path, name: str) -> Counter[tuple[str, str, bool]]:
    """(making tx kind, "old"/"young", unspent at the tip) -> outputs paid to exchange hot
    addresses."""
    from chainsleuth.cases.rows import ChainLookups
    from chainsleuth.store.layout import NONE32
    from chainsleuth.store.store import Store

    world = root / name / "world"
    store = Store.open(root / name / "store")
    g = store.graph
    n_txs = int(g.n_txs)
    hot = {
        r["address"]
        for r in _rows(world / "truth" / "addresses.csv")
        if r["wallet_kind"] == "exchange" and r["role"] == "hot"
    }
    kind_of = {r["txid"]: r["kind"] for r in _rows(world / "truth" / "txs.csv")}
    n_out = int(g.output_value.shape[0])
    outputs = np.arange(n_out, dtype=np.int64)
    addresses = ChainLookups(store, {}).addresses_of_outputs(outputs).to_pylist()
    is_hot = np.fromiter((a in hot for a in addresses), np.bool_, n_out)
    o = outputs[is_hot]
    made = np.searchsorted(np.asarray(g.tx_first_output, np.int64), o, side="right") - 1
    spent_by = np.asarray(g.output_spent_by_tx[o]).astype(np.int64)
    unspent = (spent_by == int(NONE32)) | (spent_by >= n_txs) | (spent_by < 0)
    height = np.asarray(g.tx_height, np.int64)
    old = int(height[-1]) - height[made] >= OLD
    txids = store.txids(made).to_pylist()
    out: Counter[tuple[str, str, bool]] = Counter()
    for t, a, u in zip(txids, old.tolist(), unspent.tolist(), strict=True):
        out[(kind_of.get(str(t), "?"), "old" if a else "young", bool(u))] += 1
    store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("worlds", nargs="+")
    args = ap.parse_args(argv)
    print(f"world | made by | age (old: {OLD}+ blocks) | hot coins | unspent at the tip | share")
    total: Counter[tuple[str, str, bool]] = Counter()
    for name in args.worlds:
        c = fates(args.root, name)
        total.update(c)
        for kind, age in sorted({(k, a) for k, a, _ in c}):
            u, n = c[(kind, age, True)], c[(kind, age, True)] + c[(kind, age, False)]
            print(f"{name} | {kind} | {age} | {n} | {u} | {u / n:.2f}")
    for kind, age in sorted({(k, a) for k, a, _ in total}):
        u, n = total[(kind, age, True)], total[(kind, age, True)] + total[(kind, age, False)]
        print(f"all | {kind} | {age} | {n} | {u} | {u / n:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
