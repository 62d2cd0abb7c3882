"""How well a case's requests.csv (`cases.candidate_requests`) covers the deposits it misses,
scored against the truth of a cached world (issue 11, style twins).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/: world/ with its
truth, case/ investigated) it reports:

- `missed`: eligible deposits `cases.evaluate.score_case` counts as missed (no right exchange
  lead at confidence >= 0.5; `bench.recall_misses.deposit_outcomes`);
- `asked`: of those, the deposits requests.csv asks about, and `funder_in`: those where a
  request goes to an exchange that funded a trail-holding payment into the deposit;
- `requests_per_deposit`: rows per deposit asked about (every candidate asked at once);
  `ask_order_mean`: the funder's `ask_order` (asking one at a time, in the file's order: the
  requests made until the funder is asked), and the share reached within 1 and 2 requests;
- `not_missed`: deposits asked about that are not missed eligible ones (unpaid, or paid only
  through a trail-breaking CoinJoin): requests the truth says lead nowhere;
- `recall_if_confirmed`: recall if every request that reaches the funder were answered "yes";
- `single_*`: the same for deposits asked of one exchange only (`set_size` 1: style names off,
  `rule_in_or_out_style_only`): `single_asked` deposits, `single_missed` of them missed eligible,
  `single_funder_in` whose one exchange funded it (a trail-holding payment), `single_wrong`
  missed ones whose one exchange did not.

Reads the truth (bench code only). Usage: python -m bench.candidate_requests hard-small-9 ...
`--from-leads DIR` scores worlds cached in DIR (e.g. main's bench-output/accuracy, left
untouched) without re-running investigate: requests.csv is a function of leads.csv and the cut
alone, so it is written from each world's leads.csv into a scratch folder (`--scratch`) that
links the world and the leads.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.attribution_bound import OUT
from bench.recall_misses import deposit_outcomes


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def score_requests(name: str, root: Path = OUT, cut: float = 0.5) -> dict[str, Any]:
    """requests.csv of world `name` against its truth (see the module's docstring)."""
    world, case = root / name / "world", root / name / "case"
    asked: dict[str, dict[str, int]] = defaultdict(dict)  # deposit -> exchange -> ask_order
    single: set[str] = set()  # deposits asked of one exchange (set_size 1)
    for r in _rows(case / "requests.csv"):
        asked[r["deposit_address"]][r["exchange"]] = int(r["ask_order"])
        if r.get("set_size") == "1":  # a file from before the column: none
            single.add(r["deposit_address"])
    single_missed = single_in = 0
    eligible = missed = hit = 0
    funder_in = 0
    orders: list[int] = []
    missed_set: set[str] = set()
    for d, _holding, right, _rows_of, best in deposit_outcomes(world, case, cut):
        eligible += 1
        if best is not None and best["source_entity"] in right:
            hit += 1
            continue
        missed += 1
        missed_set.add(d)
        if d not in asked:
            continue
        found = [o for e, o in asked[d].items() if e in right]
        if d in single:
            single_missed += 1
            single_in += bool(found)
        if found:
            funder_in += 1
            orders.append(min(found))
    n_asked_missed = sum(d in asked for d in missed_set)
    n_rows = sum(len(v) for v in asked.values())
    return {
        "world": name,
        "eligible": eligible,
        "named_right": hit,
        "missed": missed,
        "asked_deposits": len(asked),
        "asked_missed": n_asked_missed,
        "funder_in": funder_in,
        "funder_in_share_of_asked": round(funder_in / n_asked_missed, 4) if n_asked_missed else 1.0,
        "funder_in_share_of_missed": round(funder_in / missed, 4) if missed else 1.0,
        "not_missed": len(asked) - n_asked_missed,
        "rows": n_rows,
        "requests_per_deposit": round(n_rows / len(asked), 3) if asked else 0.0,
        "ask_order_mean": round(sum(orders) / len(orders), 3) if orders else 0.0,
        "within_1": sum(o <= 1 for o in orders),
        "within_2": sum(o <= 2 for o in orders),
        "recall": round(hit / eligible, 4) if eligible else 1.0,
        "recall_if_confirmed": round((hit + funder_in) / eligible, 4) if eligible else 1.0,
        "single_asked": len(single),
        "single_missed": single_missed,
        "single_funder_in": single_in,
        "single_wrong": single_missed - single_in,
    }


def from_leads(name: str, source: Path, scratch: Path, cut: float = 0.5) -> Path:
    """Write requests.csv for the world `source/name` from its leads.csv into
    `scratch/name/case/` (the world and leads.csv linked, not copied); returns `scratch`."""
    import pyarrow.csv as pacsv

    from chainsleuth.cases.candidate_requests import REQUEST_COLUMNS, request_table
    from chainsleuth.cases.rows import LEAD_COLUMNS, schema_of

    case = scratch / name / "case"
    case.mkdir(parents=True, exist_ok=True)
    for link, target in ((scratch / name / "world", source / name / "world"),
                         (case / "leads.csv", source / name / "case" / "leads.csv")):  # fmt: skip
        if not link.exists():
            link.symlink_to(target.resolve())
    leads = pacsv.read_csv(
        case / "leads.csv",
        convert_options=pacsv.ConvertOptions(column_types=schema_of(LEAD_COLUMNS)),
    )
    pacsv.write_csv(request_table(leads, cut).select(REQUEST_COLUMNS), case / "requests.csv")
    return scratch


def table(out: list[dict[str, Any]]) -> str:
    """The scores as a markdown table (docs/investigations.md)."""
    lines = [
        "| world | recall | missed | asked (missed) | funder in requests | not missed | "
        "requests / deposit | funder's ask_order (mean) | within 1 / 2 | recall if confirmed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in out:
        lines.append(
            f"| {o['world']} | {o['recall']:.3f} | {o['missed']} | {o['asked_missed']} | "
            f"{o['funder_in']} ({o['funder_in_share_of_missed']:.3f} of missed, "
            f"{o['funder_in_share_of_asked']:.3f} of asked) | {o['not_missed']} | "
            f"{o['requests_per_deposit']:.2f} | {o['ask_order_mean']:.2f} | "
            f"{o['within_1']} / {o['within_2']} | {o['recall_if_confirmed']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+", help="cached world names, e.g. hard-small-9")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--from-leads", type=Path, help="score worlds cached here from leads.csv")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/candidate-requests"))
    a = parser.parse_args(argv)
    if a.from_leads:
        out = [score_requests(w, from_leads(w, a.from_leads, a.scratch)) for w in a.worlds]
    else:
        out = [score_requests(w) for w in a.worlds]
    print(json.dumps(out, indent=2) if a.json else table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
