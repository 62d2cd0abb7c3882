"""Chain-wide: the fee rate of rule 6's one-input, two-output spends (`cases.cashouts`) against
their block's median fee rate, for people's coins and for exchanges' forwards, by the world's
truth (docs/accuracy-log.md "Cash-outs: forwards that fit a tagged exchange's habits"). A
sign would be a rate an exchange's software pays and a person's does not; this prints the
quantiles and, per threshold, the share of each population below it. Bench code: it reads the
truth, the package never does.

    python -m bench.cashout_feerate_check hard-small-4 realistic-small-4 ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path("bench-output/accuracy")


def relative_fee_rates(store: object, tx: np.ndarray) -> np.ndarray:
    """Fee rate (sat/vB) of each of `tx` over the median fee rate of its block's txs."""
    g = store.graph  # type: ignore[attr-defined]
    t = store.sql(  # type: ignore[attr-defined]
        "SELECT block_height, size, base_size, is_coinbase FROM txs_raw ORDER BY tx_id"
    )
    height = t.column("block_height").to_numpy()
    vsize = np.ceil((3 * t.column("base_size").to_numpy() + t.column("size").to_numpy()) / 4.0)
    coinbase = t.column("is_coinbase").to_numpy(zero_copy_only=False)
    first_in = np.asarray(g.tx_first_input, np.int64)
    first_out = np.asarray(g.tx_first_output, np.int64)
    spent = np.asarray(g.input_spent_output, np.int64)
    value = np.asarray(g.output_value, np.int64)
    in_value = np.where(spent >= 0, value[np.maximum(spent, 0)], 0)
    has_in = np.append(first_in[1:], spent.shape[0]) > first_in
    ins = np.where(has_in, np.add.reduceat(np.append(in_value, 0), first_in), 0)
    has_out = np.append(first_out[1:], value.shape[0]) > first_out
    outs = np.where(has_out, np.add.reduceat(np.append(value, 0), first_out), 0)
    rate = np.where(coinbase, np.nan, (ins - outs) / np.maximum(vsize, 1))
    ok = np.isfinite(rate)
    order = np.lexsort((rate[ok], height[ok]))
    h, r = height[ok][order], rate[ok][order]
    blocks = np.arange(int(height.max()) + 1)
    lo, hi = np.searchsorted(h, blocks), np.searchsorted(h, blocks, side="right")
    median = np.where(hi > lo, r[np.maximum((lo + hi - 1) // 2, 0)], np.nan)
    out: np.ndarray = rate[tx] / median[height[tx]]
    return out


def main(argv: list[str]) -> int:
    from bench.cashout_switch_check import one_in_two_spends
    from chainsleuth.store.store import Store

    for name in argv:
        store = Store.open(ROOT / name / "store")
        sp = one_in_two_spends(ROOT / name / "world", store)
        rel = relative_fee_rates(store, sp.tx)
        for label, mask in (("people", sp.people), ("forwards", sp.forward)):
            x = rel[mask & np.isfinite(rel)]
            q = np.round(np.percentile(x, [5, 10, 25, 50, 75, 90]), 2).tolist()
            below = [round(float(np.mean(x < t)), 3) for t in (0.5, 0.6, 0.7, 0.8)]
            print(
                f"{name} | {label} | {x.shape[0]} | quantiles 5-90% {q} | below 0.5/0.6/0.7/0.8 {below}"
            )
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
