"""Wallet habits read per period vs pooled over the chain, on cached accuracy worlds (issue 11).

`python -m bench.period_habits WORLD...` (names under bench-output/accuracy/, e.g.
hard_swswitch-small-1) runs investigate three times on each world's store, into
`case-pooled/`, `case-period/` and `case-strict/` beside its `case/`: habits pooled over the
chain (`habit_period_months=0`, main's read), per calendar half-year (the default,
`trace.services.STYLE_PERIOD_MONTHS`), and per half-year with `STYLE_PERIOD_STRICT` (pairs that
share no window never compared). Prints lead precision, recall, the worst exchange's recall, the
wrong lead rows and the clusters named by wallet style for each, one line per world and read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import chainsleuth.trace.services as services
from chainsleuth.cases.evaluate import score_case
from chainsleuth.cases.investigate import investigate

OUT = Path(__file__).resolve().parents[1] / "bench-output" / "accuracy"

READS = (("pooled", 0, False), ("period", None, False), ("strict", None, True))


def run(world: str) -> list[dict[str, object]]:
    root = OUT / world
    rows = []
    for name, months, strict in READS:
        services.STYLE_PERIOD_STRICT = strict
        case = root / f"case-{name}"
        investigate(root / "store", root / "world" / "seeds" / "deposits.csv", case,
                    report=False, habit_period_months=months)  # fmt: skip
        s = score_case(root / "world", case).as_dict()
        per = s["per_exchange"]
        worst = min(per, key=lambda e: per[e]["recall"])
        styled = json.loads((case / "case.json").read_text()).get("services", {})
        rows.append({
            "world": world, "read": name, "precision": round(s["lead_precision"], 3),
            "recall": round(s["lead_recall"], 3), "worst": f"{per[worst]['recall']:.3f} ({worst})",
            "wrong": s["named"] - s["correct"], "named": s["named"],
            "styled": styled.get("named_by_wallet_style") if isinstance(styled, dict) else None,
        })  # fmt: skip
    services.STYLE_PERIOD_STRICT = False
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+")
    args = parser.parse_args()
    print("| world | read | lead precision | lead recall | worst exchange | wrong / named |")
    print("|---|---|---|---|---|---|")
    for world in args.worlds:
        for r in run(world):
            print(f"| {r['world']} | {r['read']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                  f"{r['worst']} | {r['wrong']} / {r['named']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
