"""How often `trace.mix_change.mix_change_links` links a CoinJoin's change to its owner's input
(issue 11; docs/investigations.md "CoinJoin change linked to its input").

For worlds built by `bench.accuracy_matrix` (bench-output/accuracy/<name>/), the CoinJoins the
case stops at (`prepare_case`'s `is_coinjoin`, one-wallet txs excluded) are linked at
`--fee-share` values; each link is scored by the truth (`truth/addresses.csv`: the wallet of
the change's address against the wallet of the linked input's address), by the truth's kind
of the CoinJoin; and the truth's change outputs of those CoinJoins (`truth/txs.csv`
`change_vouts`) give the share linked. Reads the truth (bench code only).

    python -m bench.mix_change_check hard-small-1 hard-small-2 --fee-spread 0.0005 0.001 --min-fits 2 3
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from bench.attribution_bound import OUT
from chainsleuth.trace.mix_change import MIN_FITS, MIX_FEE_SHARE, MIX_FEE_SPREAD, TWIN_SAT


def check(
    name: str,
    shares: list[float],
    root: Path = OUT,
    spreads: tuple[float, ...] = (MIX_FEE_SPREAD,),
    min_fits: tuple[int, ...] = (MIN_FITS,),
    twins: tuple[int, ...] = (TWIN_SAT,),
) -> None:
    from chainsleuth.cases.investigate import prepare_case
    from chainsleuth.trace.mix_change import mix_change_links

    world = root / name / "world"
    setup = prepare_case(root / name / "store", world / "seeds" / "deposits.csv")
    g = setup.chain.graph
    cj = setup.stops["is_coinjoin"]
    with open(world / "truth" / "addresses.csv", newline="") as f:
        owner = {r["address"]: r["wallet_id"] for r in csv.DictReader(f)}
    with open(world / "truth" / "txs.csv", newline="") as f:
        txs = {r["txid"]: r for r in csv.DictReader(f)}
    flagged = np.flatnonzero(cj)
    txids = setup.store.txids(flagged).to_pylist()
    kind_of = {int(t): txs[x]["kind"] for t, x in zip(flagged, txids, strict=True)}
    true_change = Counter()
    for x in txids:
        cv = txs[x]["change_vouts"]
        true_change[txs[x]["kind"]] += len(cv.split(";")) if cv else 0
    import itertools

    for share, spread, fits, twin in itertools.product(shares, spreads, min_fits, twins):
        outs, ins = mix_change_links(g.tx_first_input, g.tx_first_output, g.input_spent_output,
                                     g.output_value, cj, share, spread, fits, twin)  # fmt: skip
        spent = np.asarray(g.input_spent_output)[ins]
        a_out = setup.chain.addresses_of_outputs(outs).to_pylist()
        a_in = setup.chain.addresses_of_outputs(spent).to_pylist()
        creators = np.searchsorted(np.asarray(g.tx_first_output), outs, side="right") - 1
        score: Counter[str] = Counter()
        for t, x, y in zip(creators.tolist(), a_out, a_in, strict=True):
            k = kind_of.get(t, "?")
            score[k + (":right" if owner.get(x) == owner.get(y) else ":wrong")] += 1
        print(
            f"{name} fee_share {share} spread {spread} min_fits {fits} twin_sat {twin}: links "
            f"{dict(sorted(score.items()))} true change outputs {dict(true_change)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+")
    ap.add_argument("--fee-share", type=float, nargs="+", default=[MIX_FEE_SHARE])
    ap.add_argument("--fee-spread", type=float, nargs="+", default=[MIX_FEE_SPREAD])
    ap.add_argument("--min-fits", type=int, nargs="+", default=[MIN_FITS])
    ap.add_argument("--twin-sat", type=int, nargs="+", default=[TWIN_SAT])
    a = ap.parse_args()
    for w in a.worlds:
        check(w, a.fee_share, spreads=tuple(a.fee_spread), min_fits=tuple(a.min_fits),
              twins=tuple(a.twin_sat))  # fmt: skip


if __name__ == "__main__":
    main()
