"""Does the case's look-alike warning fire where the truth says exchanges are style twins?

For each world built by `bench.accuracy_matrix` (bench-output/accuracy/<world>/, its case/
investigated at the code under test), compares case.json's `lookalike_exchanges` (read from
the chain: `cases.lookalikes`) with `bench.accuracy_matrix.style_twins` (world.json's
`exchange_habits`, the truth, on the habits the style rules read). Per world: the truth's twin
groups, the warning's groups and unreadable exchanges, whether each fires, and per pair of
exchanges where they disagree, the habits both sides show (so a disagreement can be
explained). A pair is *alike on the chain* when a warning group holds both, *unreadable* when
one of them is listed as showing no habit (alike with every exchange, so the style rule
cannot tell it from the other either).

    python -m bench.lookalike_agreement hard-small-1 hard-small-9
    python -m bench.lookalike_agreement --all            # every world with a case/case.json
    python -m bench.lookalike_agreement --all --json out.json

Reads the truth (bench code only; the package never does). Writes nothing unless --json.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from bench.accuracy_matrix import OUT, RULE_HABITS, style_twins


def _pairs(groups: list[list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}  # type: ignore[misc]


def compare(root: Path) -> dict[str, Any]:
    """One world's agreement (see the module's docstring)."""
    meta = json.loads((root / "world" / "world.json").read_text())
    habits = meta.get("exchange_habits") or {}
    truth = style_twins(habits)
    section = json.loads((root / "case" / "case.json").read_text()).get("lookalike_exchanges")
    if section is None:
        raise SystemExit(f"{root}: case.json has no lookalike_exchanges (investigate again)")
    groups = [g["exchanges"] for g in section["groups"]]
    unreadable = list(section["unreadable"])
    truth_pairs, chain_pairs = _pairs(truth), _pairs(groups)
    names = sorted(habits)
    blind_pairs = {
        tuple(sorted((u, n))) for u in unreadable for n in names if n != u and u in habits
    }
    disagreements = []
    for a, b in itertools.combinations(names, 2):
        pair = (a, b)
        t, c, u = pair in truth_pairs, pair in chain_pairs, pair in blind_pairs
        if t == c or (u and not t):
            # agreed, or a pair with an exchange that showed nothing (its own column)
            continue
        read = section["exchanges"]
        disagreements.append(
            {
                "pair": list(pair),
                "truth_twins": t,
                "chain": "alike" if c else "one showed no habit" if u else "told apart",
                "truth": {n: {k: habits[n].get(k) for k in RULE_HABITS} for n in pair},
                "read": {
                    n: {h: v["value"] + f" ({v['txs']})" for h, v in read.get(n, {}).items()}
                    for n in pair
                },
            }
        )
    return {
        "world": root.name,
        "truth_twins": truth,
        "groups": groups,
        "unreadable": unreadable,
        "extra_tagged": sorted(set(section["exchanges"]) - set(habits)),
        "truth_fires": bool(truth),
        "fires": bool(groups),
        "fires_or_unreadable": bool(groups or unreadable),
        "pairs": {
            "truth": len(truth_pairs),
            "chain": len(chain_pairs),
            "both": len(truth_pairs & chain_pairs),
            "false_alarm": len(chain_pairs - truth_pairs),
            "missed": len(truth_pairs - chain_pairs),
            "missed_unreadable": len((truth_pairs - chain_pairs) & blind_pairs),
        },
        "disagreements": disagreements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="*", help="e.g. hard-small-9")
    parser.add_argument("--all", action="store_true", help="every world with a case.json")
    parser.add_argument("--json", type=Path, help="write every world's comparison here")
    args = parser.parse_args()
    names = args.worlds or []
    if args.all:
        names += sorted(p.parent.parent.name for p in OUT.glob("*/case/case.json"))
    results = [compare(OUT / n) for n in dict.fromkeys(names)]
    print("| world | truth: style twins | warning: alike groups | no habit read | agree |")
    print("|---|---|---|---|---|")
    for r in results:
        agree = (
            "yes"
            if r["truth_fires"] == r["fires"]
            else ("**false alarm**" if r["fires"] else "**miss**")
        )
        print(
            f"| {r['world']} | {', '.join('+'.join(g) for g in r['truth_twins']) or '—'} | "
            f"{', '.join('+'.join(g) for g in r['groups']) or '—'} | "
            f"{', '.join(r['unreadable']) or '—'} | {agree} |"
        )
    for r in results:
        for d in r["disagreements"]:
            print(f"\n{r['world']} {'+'.join(d['pair'])}: truth twins {d['truth_twins']}, "
                  f"chain {d['chain']}")  # fmt: skip
            for n in d["pair"]:
                print(f"  {n} truth {d['truth'][n]}")
                print(f"  {n} read  {d['read'][n]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
