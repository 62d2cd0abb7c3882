"""Leads held below the cut by a cap, by cap reason, and what lifting a cap would do (issue 11).

A lead's confidence is the calibrated model (chainsleuth.cases.confidence) unless a cap holds
it lower (chainsleuth.cases.rows.lead_confidence): COINJOIN_CAP for a source beyond a CoinJoin,
LONG_HOLD_CAP for coins held over LONG_HOLD_DAYS, FORWARD_CAP for the forward and hand-off
signs (`caution`). For every world cached by `bench.accuracy_matrix` this reads the case's
leads.csv, recomputes each exchange row's uncapped model value from its own columns (as
`rows.recalibrate_leads` does, without the caps) and the truth's verdict, and reports:

- per cap reason (the row's capping cautions, `;`-joined), per profile and scale: capped rows
  (model value above what the case shipped), of them the rows the cap holds below the cut
  (model >= 0.5, shipped < 0.5: the only ones a lift could change), their share right pooled,
  and the worst per-world share right (worlds with >= `--min-rows` such rows);
- `--lift REASONS[:CONDITION,...] ...`: the matrix's lead precision, recall and worst exchange
  recall per world, as shipped and with those rows given their model value (the deciding lead
  recomputed the way `cases.evaluate.score_case` does, on a copy of leads.csv).

Reads the truth (bench code only; the package never does).

    python -m bench.capped_leads                                # every cached world
    python -m bench.capped_leads --seeds 1 2 3 4 5 6 7 --lift 'long_hold:hops>=3'
    python -m bench.capped_leads --compare bench-output/before bench-output/after
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.cases.confidence import calibration, typical_hold_days, via_entity
from chainsleuth.cases.evaluate import lead_outcomes, score_case
from chainsleuth.cases.rows import (
    EXCHANGE_CATEGORIES,
    FORWARD_CAUTIONS,
    LONG_HOLD_DAYS,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"
CUT = 0.5

Row = dict[str, Any]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cap_reasons(r: dict[str, str]) -> str:
    """The reasons a row's confidence is capped, `;`-joined in a fixed order ("" when none):
    `mixed` (a CoinJoin source or beyond one), `long_hold`, the forward cautions."""
    caution = set((r.get("caution") or "").split(";")) - {""}
    out = []
    if r["source_category"] == "coinjoin" or r.get("through_coinjoin") == "true":
        out.append("mixed")
    if float(r.get("hold_days") or 0) > LONG_HOLD_DAYS or "long_hold" in caution:
        out.append("long_hold")
    out += sorted(caution & FORWARD_CAUTIONS)
    return ";".join(out)


def world_rows(name: str, root: Path = OUT) -> list[Row]:
    """Every exchange row of world `name`'s case with its uncapped model value, shipped
    confidence, cap reasons, chain-visible columns and the truth's verdict."""
    case, world = root / name / "case", root / name / "world"
    raw = [r for r in _csv(case / "leads.csv") if r["source_category"] in EXCHANGE_CATEGORIES]
    verdicts = lead_outcomes(world, case, 0.0)
    assert len(verdicts) == len(raw), name
    hops = np.array([int(r["hops"] or 0) for r in raw], np.float64)
    hold = np.array([float(r["hold_days"] or 0) for r in raw], np.float64)
    typical = typical_hold_days(hold, hops, calibration().reference_hold_days)
    model = np.zeros(len(raw))
    if raw:
        share = np.array([float(r["share"] or 0) for r in raw], np.float64)
        custody = np.array(
            [len(r["custody_path"].split(";")) if r["custody_path"] else 0 for r in raw], float
        )
        via = np.array([via_entity(r["attributed_via"] or "") for r in raw], np.float64)
        policies = np.array([r["policy"] for r in raw], object)
        for policy in set(policies.tolist()):
            m = policies == policy
            model[m] = calibration().lead(
                policy, hops[m], share[m], custody[m], via[m], hold[m], typical
            )
    profile, scale, seed = name.split("-")
    # per deposit, the exchanges of its other rows (for conditions on agreement)
    by_deposit: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(raw):
        by_deposit[r["deposit_address"]].append(i)
    out: list[Row] = []
    for i, (r, v) in enumerate(zip(raw, verdicts, strict=True)):
        assert v["deposit_address"] == r["deposit_address"] and v["exchange"] == r["source_entity"]
        conf = float(r["confidence"] or 0)
        reasons = cap_reasons(r)
        uncapped = round(float(model[i]), 4)
        # a row beyond a CoinJoin keeps its cap in every what-if (trail may be broken)
        others = [raw[j] for j in by_deposit[r["deposit_address"]] if j != i]
        out.append(
            {
                "world": name,
                "profile": profile,
                "scale": scale,
                "seed": int(seed),
                "index": i,
                "deposit": r["deposit_address"],
                "exchange": r["source_entity"],
                "amount": int(r["amount_sat"]),
                "confidence": conf,
                "model": uncapped,
                "reasons": reasons,
                "capped": bool(reasons) and uncapped > conf + 1e-4,
                "held": bool(reasons) and uncapped >= CUT > conf,
                "hops": int(hops[i]),
                "share": float(r["share"] or 0),
                "hold_days": float(hold[i]),
                "typical_hold": typical,
                "custody": len(r["custody_path"].split(";")) if r["custody_path"] else 0,
                "via": r["attributed_via"] or "",
                "n_paths": int(r["n_paths"] or 0),
                # another row of the deposit names the same exchange at >= the cut
                "agrees": any(
                    o["source_entity"] == r["source_entity"] and float(o["confidence"]) >= CUT
                    for o in others
                ),
                # another row of the deposit names another exchange at >= the cut
                "rival": any(
                    o["source_entity"] != r["source_entity"] and float(o["confidence"]) >= CUT
                    for o in others
                ),
                # this row carries the deposit's largest exchange amount
                "largest": all(int(o["amount_sat"]) <= int(r["amount_sat"]) for o in others),
                "correct": bool(v["correct"]),
            }
        )
    # sanity: rows without a cap ship the model's value
    for o in out:
        if not o["reasons"]:
            assert abs(o["model"] - o["confidence"]) < 2e-4, (name, o)
    return out


_COND = re.compile(r"^(\w+)\s*(<=|>=|<|>|==|!=)\s*(\S+)$")


def condition(text: str) -> Callable[[Row], bool]:
    """A row predicate from `REASONS[:COND[,COND...]]`: the row's cap reasons are exactly
    REASONS (`;`-joined, `*` for any) and each COND (`field op value`, e.g. hops<=2,
    agrees==1) holds."""
    reason, _, rest = text.partition(":")
    tests = []
    for part in filter(None, rest.split(",")):
        m = _COND.match(part)
        if not m:
            raise SystemExit(f"bad condition {part!r} (field op value)")
        field, op, value = m.groups()
        tests.append((field, op, float(value)))
    ops = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }

    def hit(o: Row) -> bool:
        if not o["reasons"] or (reason != "*" and o["reasons"] != reason):
            return False
        if "mixed" in o["reasons"]:
            return False
        return all(ops[op](float(o[f]), v) for f, op, v in tests)

    return hit


def lifted_score(
    name: str, rows: list[Row], lift: Callable[[Row], bool], root: Path = OUT
) -> dict[str, float]:
    """World `name`'s score with the rows `lift` picks given their model value."""
    case, world = root / name / "case", root / name / "world"
    raw = _csv(case / "leads.csv")
    new = {o["index"]: o["model"] for o in rows if lift(o)}
    k = -1
    for r in raw:
        if r["source_category"] in EXCHANGE_CATEGORIES:
            k += 1
            if k in new:
                r["confidence"] = f"{new[k]:.4f}"
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        with open(t / "leads.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(raw[0].keys()) if raw else [])
            w.writeheader()
            w.writerows(raw)
        shutil.copy(case / "cashouts.csv", t / "cashouts.csv")
        s = score_case(world, t)
    return {
        "precision": s.lead_precision,
        "recall": s.lead_recall,
        "worst": s.worst_exchange_recall(),
        "named": s.named,
        "correct": s.correct,
        "lifted": len(new),
    }


def worlds(root: Path, seeds: list[int] | None, scales: list[str]) -> list[str]:
    """Cached worlds with a finished case (a .json beside them), of `seeds` and `scales`."""
    out = []
    for p in sorted(root.glob("*-*-*.json")):
        name = p.stem
        _, scale, seed = name.split("-")
        ready = (root / name / "case" / "leads.csv").exists() and scale in scales
        if ready and (seeds is None or int(seed) in seeds):
            out.append(name)
    return out


def breakdown(rows: list[Row], min_rows: int) -> str:
    """Markdown: per cap reason × (profile, scale) group, the capped and held rows."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for o in rows:
        if o["capped"]:
            groups[(o["reasons"], f"{o['profile']}-{o['scale']}")].append(o)
            groups[(o["reasons"], "all")].append(o)
    lines = [
        "| cap reason | group | capped rows | right | held (model ≥ 0.5) | held right "
        f"| worst world (held, ≥ {min_rows} rows) |",
        "|---|---|---|---|---|---|---|",
    ]

    def order(key: tuple[str, str]) -> tuple[int, str, bool, str]:
        # the most capped reasons first, each with its pooled line first
        return (-len(groups[(key[0], "all")]), key[0], key[1] != "all", key[1])

    for (reason, group), os in sorted(groups.items(), key=lambda kv: order(kv[0])):
        held = [o for o in os if o["held"]]
        per: dict[str, list[bool]] = defaultdict(list)
        for o in held:
            per[o["world"]].append(o["correct"])
        worst = [(np.mean(v), len(v), w) for w, v in per.items() if len(v) >= min_rows]
        worst_text = "—"
        if worst:
            f, n, w = min(worst)
            worst_text = f"{f:.3f} ({w}, {n})"
        right = np.mean([o["correct"] for o in os])
        held_right = f"{np.mean([o['correct'] for o in held]):.3f}" if held else "—"
        lines.append(
            f"| {reason} | {group} | {len(os)} | {right:.3f} | {len(held)} | {held_right} "
            f"| {worst_text} |"
        )
    return "\n".join(lines)


def compare(before: Path, after: Path) -> str:
    """Markdown: per world saved by `bench.accuracy_matrix` in both folders (copies of
    bench-output/accuracy/*.json from two runs), lead precision, recall and worst exchange
    recall before → after, worst precision first; a precision drop is marked."""
    import json

    lines = [
        "| world | precision | → | recall | → | worst exchange recall | → |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    for p in sorted(before.glob("*-*-*.json")):
        q = after / p.name
        if not q.exists():
            continue
        a, b = json.loads(p.read_text())["score"], json.loads(q.read_text())["score"]

        def worst(s: dict[str, Any]) -> float:
            return min((v["recall"] for v in s["per_exchange"].values()), default=1.0)

        rows.append((b["lead_precision"], p.stem, a, b, worst(a), worst(b)))
    for _, name, a, b, wa, wb in sorted(rows):
        drop = " **drop**" if b["lead_precision"] < a["lead_precision"] - 1e-12 else ""
        lines.append(
            f"| {name} | {a['lead_precision']:.3f} | {b['lead_precision']:.3f}{drop} "
            f"| {a['lead_recall']:.3f} | {b['lead_recall']:.3f} | {wa:.3f} | {wb:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=OUT)
    ap.add_argument("--seeds", nargs="+", type=int)
    ap.add_argument("--scales", nargs="+", default=["small", "medium"])
    ap.add_argument("--min-rows", type=int, default=3)
    ap.add_argument("--lift", nargs="+", help="REASONS[:field op value,...] rows to lift")
    ap.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
        help="only compare two folders of saved matrix results",
    )  # fmt: skip
    a = ap.parse_args(argv)
    if a.compare:
        print(compare(*a.compare))
        return 0
    names = worlds(a.root, a.seeds, a.scales)
    rows = {n: world_rows(n, a.root) for n in names}
    allrows = [o for n in names for o in rows[n]]
    print(f"worlds: {len(names)} ({', '.join(names)})\n")
    print(breakdown(allrows, a.min_rows))
    if a.lift:
        tests = [condition(t) for t in a.lift]

        def lift(o: Row) -> bool:
            return o["held"] and any(t(o) for t in tests)

        picked = [o for o in allrows if lift(o)]
        print(
            f"\nlifted rows: {len(picked)}, right {np.mean([o['correct'] for o in picked]):.3f}"
            if picked
            else "\nlifted rows: 0"
        )
        print("\n| world | precision | → | recall | → | worst exchange recall | → | lifted |")
        print("|---|---|---|---|---|---|---|---|")
        for n in names:
            before = lifted_score(n, rows[n], lambda o: False, a.root)
            after = lifted_score(n, rows[n], lift, a.root)
            flag = " **drop**" if after["precision"] < before["precision"] - 1e-9 else ""
            print(
                f"| {n} | {before['precision']:.3f} | {after['precision']:.3f}{flag} "
                f"| {before['recall']:.3f} | {after['recall']:.3f} | {before['worst']:.3f} "
                f"| {after['worst']:.3f} | {after['lifted']} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
