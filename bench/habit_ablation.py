"""What the wallet habits of 2026-12-07 add (issue 11, docs/accuracy-log.md "More wallet
habits (2026-12-07)" and "Signing habits for style twins"): round payment amounts, output
order (BIP69) and whole sat/vB fee rates, which only rule a tagged wallet out
(`trace.services._more_habits`). The batch and sweep cadences measured beside it were dropped
(block-counted intervals are the simulator's, not a real exchange's); the docs keep their rows.

For worlds built by `bench.accuracy_matrix` (bench-output/accuracy/<profile>-<scale>-<seed>/,
store clustered and tagged), each variant investigates the store again into
`--work/<variant>/<world>` with only the named habits on, and scores the case
(`cases.evaluate.score_case`): lead precision, recall, worst exchange. Variants: `none` (the
older habits alone), `round` (main before the signing habits), `order`, `fee` (each on top of
`round`), `all`. With `--named`, instead, the clusters
the wallet styles name otherwise with the habit than without, scored by their majority owner (the truth; `bench.link_candidates._owners`).

    python -m bench.habit_ablation --variants none all hard-small-4 hard-medium-7
    python -m bench.habit_ablation --named hard-medium-1

Reads the truth (bench code only). Writes only the cases under --work.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.attribution_bound import OUT

#: The habits each variant switches on: `round` is main's before the output order and fee rate
#: (docs/accuracy-log.md "Signing habits for style twins").
VARIANTS = {
    "none": (),
    "round": ("round",),
    "order": ("round", "order"),
    "fee": ("round", "fee"),
    "all": ("round", "order", "fee"),
}

#: Each part's habit in `trace.services.STYLE_HABITS`.
PARTS = {"round": "round_amounts", "order": "output_order", "fee": "fee_rate"}


def only(parts: tuple[str, ...]) -> Callable[..., np.ndarray]:
    """A `trace.services._more_habits` with only `parts` on."""
    from chainsleuth.trace import services as sv

    keep = [sv.STYLE_HABITS.index(PARTS[p]) for p in parts]

    def more(styles: Any, named: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        seen = sv.style_habits(styles, candidate, seen=True)
        tagged = sv.style_habits(styles, named)
        ok, _shown = sv._alike(tuple(seen[h] for h in keep), tuple(tagged[h] for h in keep))
        return ok

    return more


def score(name: str, variant: str, work: Path, root: Path = OUT) -> dict[str, Any]:
    """Investigate world `name` with `variant`'s habits and score it."""
    from chainsleuth.cases.evaluate import score_case
    from chainsleuth.cases.investigate import investigate
    from chainsleuth.trace import services as sv

    world = root / name
    case = work / variant / name
    keep = sv._more_habits
    try:
        sv._more_habits = only(VARIANTS[variant])
        investigate(world / "store", world / "world" / "seeds" / "deposits.csv", case, report=False)
    finally:
        sv._more_habits = keep
    s = score_case(world / "world", case).as_dict()
    per = {k: round(v["recall"], 3) for k, v in s["per_exchange"].items()}
    worst = min(per.items(), key=lambda kv: kv[1]) if per else ("-", 1.0)
    return {
        "world": name,
        "variant": variant,
        "lead_precision": round(s["lead_precision"], 4),
        "lead_recall": round(s["lead_recall"], 3),
        "worst": list(worst),
        "per_exchange": per,
    }


def named(name: str, root: Path = OUT) -> dict[str, Any]:
    """Clusters named otherwise with the three habits than with none, by majority owner."""
    from bench import link_candidates as lc
    from chainsleuth.trace import services as sv

    world, store_dir = root / name / "world", root / name / "store"
    seeds = world / "seeds" / "deposits.csv"
    keep = sv._more_habits
    try:
        sv._more_habits = only(())
        without = lc._attribution_before_change(store_dir, seeds)["attribution"]
    finally:
        sv._more_habits = keep
    state = lc._attribution_before_change(store_dir, seeds)
    with_ = state["attribution"]
    changed = np.array(sorted(c for c, v in with_.items() if without.get(c) != v), np.int64)
    out: dict[str, Any] = {"world": name, "changed": int(changed.shape[0])}
    if changed.shape[0] == 0:
        return out
    owner = lc._owners(state["store"], state["cluster_of"], world, changed)
    verdict: Counter[str] = Counter()
    for c in changed.tolist():
        now, who = with_[c][0], owner.get(c, "?")
        if who == now:
            verdict["right"] += 1
        elif isinstance(now, str) and now.startswith("cluster:"):
            verdict["no longer named"] += 1
        elif who.startswith(("user-", "customer-", "payer-")):
            verdict["a person's cluster"] += 1
        else:
            verdict[f"wrong exchange ({who} named {now})"] += 1
    return {**out, **verdict}


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worlds", nargs="+", help="<profile>-<scale>-<seed> under bench-output")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=OUT.parent / "habit-ablation")
    parser.add_argument("--root", type=Path, default=OUT)
    parser.add_argument("--named", action="store_true", help="only the clusters named otherwise")
    args = parser.parse_args(argv)
    for name in args.worlds:
        if args.named:
            out(json.dumps(named(name, args.root)))
            continue
        for v in args.variants:
            out(json.dumps(score(name, v, args.work, args.root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
