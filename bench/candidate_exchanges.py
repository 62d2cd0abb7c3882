"""How the leads' `candidate_exchanges` sets fare on the missed deposits (issue 11).

For a world built by `bench.accuracy_matrix` (bench-output/accuracy/<profile>-<scale>-<seed>/,
its case/ investigated at the code under test), every *missed* deposit (eligible by
`cases.evaluate`'s rules: paid by an exchange on a trail no CoinJoin broke, and no right
exchange lead at confidence >= 0.5; `bench.attribution_bound._eligible`) is taken with its
largest lead row (by amount, as the seed-9 diagnosis did). Counted: how many such rows carry a
candidate set, the sets' sizes, and how often an exchange that funded the deposit (the truth's
`funding_exchange` of a trail-holding payment) is in the set. The same over every eligible
deposit whose largest lead carries a set, and over every lead row with a set (the row's
deposit funded by a listed exchange or not).

    python -m bench.candidate_exchanges hard-small-1 hard-small-9 realistic-small-9
    python -m bench.candidate_exchanges --json out.json hard-small-9

Reads the truth (bench code only; the package never does). Writes nothing unless --json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from bench.attribution_bound import OUT, _eligible


def _largest(case: Path) -> tuple[dict[str, dict[str, str]], list[dict[str, str]]]:
    """Per deposit its largest lead row (first in file order on ties), and every row."""
    with open(case / "leads.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    best: dict[str, dict[str, str]] = {}
    for r in rows:
        d = r["deposit_address"]
        if d not in best or int(r["amount_sat"]) > int(best[d]["amount_sat"]):
            best[d] = r
    return best, rows


def measure(name: str, root: Path = OUT) -> dict[str, Any]:
    """The counts for one world (see the module's doc)."""
    from chainsleuth.cases.evaluate import _holds, _truth

    world, case = root / name / "world", root / name / "case"
    payments, _ = _truth(world)
    best, rows = _largest(case)
    if rows and "candidate_exchanges" not in rows[0]:
        raise SystemExit(f"{case}/leads.csv has no candidate_exchanges column: re-run the case")
    missed = Counter()
    every = Counter()
    for d, _pay, is_missed in _eligible(world, case):
        right = {p["funding_exchange"] for p in payments.get(d, []) if _holds(p)}
        r = best.get(d)
        s = (r.get("candidate_exchanges") or "") if r is not None else ""
        names = [n for n in s.split(";") if n]
        tally = [every] + ([missed] if is_missed else [])
        for t in tally:
            t["deposits"] += 1
            if not names:
                continue
            t["with_set"] += 1
            t[f"size_{len(names)}"] += 1
            t["truth_in_set" if right & set(names) else "truth_not_in_set"] += 1
    rows_with = Counter()
    for r in rows:
        names = [n for n in (r.get("candidate_exchanges") or "").split(";") if n]
        if not names:
            continue
        right = {p["funding_exchange"] for p in payments.get(r["deposit_address"], []) if _holds(p)}
        rows_with["rows"] += 1
        rows_with["attributed_rows"] += r["source_category"] != "unidentified_service"
        rows_with[
            "funder_in_set"
            if right & set(names)
            else ("funder_not_in_set" if right else "deposit_not_exchange_funded")
        ] += 1
    return {
        "world": name,
        "missed": dict(sorted(missed.items())),
        "eligible": dict(sorted(every.items())),
        "rows": dict(sorted(rows_with.items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out = [measure(w) for w in args.worlds]
    total: dict[str, Counter[str]] = {"missed": Counter(), "eligible": Counter(), "rows": Counter()}
    for m in out:
        print(json.dumps(m))
        for k in total:
            total[k].update(m[k])
    summary = {"world": "all", **{k: dict(sorted(v.items())) for k, v in total.items()}}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(out + [summary], indent=1) + "\n")


if __name__ == "__main__":
    main()
