"""Rule 6b's marks chain-wide (`cases.cashouts._exchange_habits_fit`), with the table the case
itself reads (`CaseSetup.exchange_habits`, per calendar half-year for an exchange whose software
changed, each spend read in its block's window): among people's one-input, two-output spends
(the population of `bench.cashout_switch_check`, by the world's truth) and among exchanges'
forwards; and, as a measured alternative, the same without rule 6b's plain-fingerprint
condition (a Core-signed exchange's rows counted too). docs/accuracy-log.md "Cash-outs: rule
6b per half-year". Bench code: it reads the truth, the package never does.

    python -m bench.cashout_6b_marks hard_swswitch-small-1 hard_sw-small-1 ...

Worlds are read from bench-output/accuracy/<world>/ (`world/` and `store/`, as
`bench.accuracy_matrix` leaves them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path("bench-output/accuracy")


def marks(world: str) -> np.ndarray:
    """people, people marked by 6b, by 6b with Core-signed rows; forwards, the same two."""
    from bench.cashout_switch_check import one_in_two_spends
    from chainsleuth.cases.cashouts import SWITCH_TYPES, _exchange_habits_fit
    from chainsleuth.cases.investigate import prepare_case

    w = ROOT / world
    setup = prepare_case(w / "store", w / "world" / "seeds" / "deposits.csv")
    assert setup.tx_fingerprint is not None
    sp = one_in_two_spends(w / "world", setup.store)
    window = None
    if setup.block_window is not None:
        heights = np.asarray(setup.store.graph.tx_height[sp.tx]).astype(np.int64)
        window = np.asarray(setup.block_window)[heights]
    table = setup.exchange_habits
    shipped = _exchange_habits_fit(
        sp.coin, sp.tx, sp.first_out, sp.out_type, setup.tx_fingerprint, table, window
    )
    d = np.asarray(sp.out_type[sp.coin]).astype(np.int64)
    a = np.asarray(sp.out_type[sp.first_out[sp.tx]]).astype(np.int64)
    b = np.asarray(sp.out_type[sp.first_out[sp.tx] + 1]).astype(np.int64)
    fp = np.asarray(setup.tx_fingerprint[sp.tx]).astype(np.int64)
    fits = np.zeros(d.shape[0], np.bool_)
    for deposit, hot, print_, win in np.asarray(table, np.int64).tolist():
        held = np.ones_like(fits) if win < 0 else (window == win) if window is not None else ~fits
        fits |= (d == deposit) & ((a == hot) | (b == hot)) & (fp == print_) & held
    known = np.isin(d, SWITCH_TYPES) & np.isin(a, SWITCH_TYPES) & np.isin(b, SWITCH_TYPES)
    any_print = known & (a != d) & (b != d) & fits
    setup.store.close()
    people, forward = sp.people, sp.forward
    return np.array(
        [
            people.sum(),
            (shipped & people).sum(),
            (any_print & people).sum(),
            forward.sum(),
            (shipped & forward).sum(),
            (any_print & forward).sum(),
        ],  # fmt: skip
        np.int64,
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    print(
        "| world | people's spends | 6b | 6b, Core-signed rows too | forwards | 6b | 6b, Core too |"
    )
    print("|---|---|---|---|---|---|---|")
    total = np.zeros(6, np.int64)
    for world in argv:
        row = marks(world)
        total += row
        print(f"| {world} | " + " | ".join(f"{int(v):,}" for v in row) + " |", flush=True)
    per = 1_000 / max(int(total[0]), 1)
    print(f"| all | {int(total[0]):,} | {int(total[1]):,} ({total[1] * per:.2f} per 1,000) | "
          f"{int(total[2]):,} ({total[2] * per:.2f} per 1,000) | {int(total[3]):,} | "
          f"{int(total[4]):,} | {int(total[5]):,} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
