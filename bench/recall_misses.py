"""Why a case's eligible deposits are missed, per funding exchange (issue 11, recall).

For each world cached by `bench.accuracy_matrix` (bench-output/accuracy/<name>/: world/ with
its truth, case/ investigated), every eligible deposit that `cases.evaluate.score_case` counts
as missed (no right exchange lead at confidence >= 0.5) gets one class from its case rows:

- `no_rows`: the case has no lead row for it at all (the walk found no attributed source);
- `right_below_cut`: a row names the right exchange below the cut (class + its `caution`);
- `wrong_exchange`: another exchange decides it (a precision loss too);
- `unident_own:<kind>`: its largest row ends at an `unidentified_service` and the tx that
  spent the stopped output (the row's funding tx) is the funding exchange's own (truth kind
  given): the exchange's wallet was reached but not named;
- `unident_other:<wallet kind>:<tx kind>`: ends at an `unidentified_service` of another owner,
  `:through_own` appended when the walk reached it through a tx of the funding exchange's own
  (its forward: the walk went past the wallet it should have stopped at);
- `coinjoin:<kind>_unbroken` (the trail-holding payment's truth path went through a CoinJoin)
  or `coinjoin:stopped_on_other_payment:<why>`, the CoinJoin row of a payment made without
  one: `flagged_own_<tx kind>` when the flagged tx is the funding exchange's own (a batch a
  CoinJoin rule took for a mix), `through_own` when the walk reached a real mix through the
  funding exchange's own tx, else `elsewhere`;
- other categories: the largest row's category.

Beside the class (not in place of it), a missed deposit whose largest row lists the funding
exchange among its `candidate_exchanges` (a style-twin set, `trace.services.style_candidates`)
is counted as `twin_set:<set size>`: the case reached a wallet that fits the funder and one or
more other tagged exchanges alike, and named none (issue 11, "style twins"). `--twins` prints,
per exchange, the misses in such a set and the rest, so that what style twins cost can be told
from other causes.

Reads the truth (bench code only). Usage: python -m bench.recall_misses hard-small-10 ...
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.attribution_bound import OUT, world_parser

_SUBPOENA = {"exchange", "otc_broker", "wallet_service", "atm", "payment_processor"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


Outcome = tuple[str, list[dict[str, str]], set[str], list[dict[str, str]], dict[str, str] | None]


def deposit_outcomes(world: Path, case: Path, cut: float = 0.5) -> list[Outcome]:
    """Per eligible deposit (paid by an exchange, its trail not broken by a CoinJoin):
    (deposit, its trail-holding payments, the right exchanges, its lead rows, the deciding row:
    the subpoena-category row at `cut` or above with the largest amount, or None)."""
    pays: dict[str, list[dict[str, str]]] = defaultdict(list)
    for p in _rows(world / "truth" / "payments.csv"):
        pays[p["deposit_address"]].append(p)
    leads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in _rows(case / "leads.csv"):
        leads[r["deposit_address"]].append(r)
    out: list[Outcome] = []
    for d, ps in pays.items():
        holding = [
            p
            for p in ps
            if p["funding_exchange"]
            and not (p["path_kind"] == "coinjoin" and p["coinjoin_broke_trail"] == "true")
        ]
        if not holding:
            continue
        rows = leads.get(d, [])
        best = None
        for r in rows:
            if (
                r["source_category"] in _SUBPOENA
                and float(r["confidence"] or 0) >= cut
                and (best is None or int(r["amount_sat"]) > int(best["amount_sat"]))
            ):
                best = r
        out.append((d, holding, {p["funding_exchange"] for p in holding}, rows, best))
    return out


def classify(name: str, root: Path = OUT, cut: float = 0.5) -> dict[str, Any]:
    """Classes of the missed eligible deposits of world `name`, per funding exchange."""
    world, case = root / name / "world", root / name / "case"
    tx_wallet = {t["txid"]: (t["wallet_id"], t["kind"]) for t in _rows(world / "truth" / "txs.csv")}
    per: dict[str, Counter[str]] = defaultdict(Counter)
    rest: Counter[str] = Counter()  # classes of the misses in no twin set
    rest_per: dict[str, Counter[str]] = defaultdict(Counter)  # the same, per funding exchange
    examples: dict[str, list[str]] = defaultdict(list)
    for d, holding, right, rows, best in deposit_outcomes(world, case, cut):
        ex = holding[0]["funding_exchange"]
        per[ex]["eligible"] += 1
        if best is not None and best["source_entity"] in right:
            per[ex]["hit"] += 1
            continue
        kind = holding[0]["path_kind"]
        twin = False
        if best is not None:
            cls = "wrong_exchange"
        elif not rows:
            cls = "no_rows"
        else:
            below = [r for r in rows if r["source_entity"] in right]
            if below:
                cls = "right_below_cut:" + (below[0]["caution"] or "calibration")
            else:
                # the largest row that is not a CoinJoin's, when there is one: a mixed deposit's
                # CoinJoin row is never what hides its trail-holding payment
                plain = [r for r in rows if r["source_category"] != "coinjoin"] or rows
                top = max(plain, key=lambda r: int(r["amount_sat"]))
                # who made the tx that spent the stopped output (the lead's funding tx), and
                # whether a later tx of the path is the funding exchange's own
                w, tkind = tx_wallet.get(top["funding_txid"], ("?", "?"))
                own = w == "exchange-" + ex
                through_own = any(
                    tx_wallet.get(t, ("", ""))[0] == "exchange-" + ex
                    for t in (top.get("path") or "").split(";")[1:]
                )
                cands = (top.get("candidate_exchanges") or "").split(";")
                if top["source_category"] == "unidentified_service" and ex in cands:
                    per[ex]["twin_set:" + str(len(cands))] += 1
                    twin = True
                if top["source_category"] == "unidentified_service":
                    if own:
                        cls = "unident_own:" + tkind
                    else:
                        cls = "unident_other:" + w.split("-")[0] + ":" + tkind
                        cls += ":through_own" if through_own else ""
                elif top["source_category"] in _SUBPOENA:
                    cls = "wrong_below_cut"
                elif top["source_category"] == "coinjoin":
                    # stopped at a CoinJoin: did the trail-holding payment's truth path go
                    # through one (an unmixed output walked on), or is the deposit mixed?
                    cj = [p for p in holding if p["path_kind"] == "coinjoin"]
                    if cj:
                        cls = "coinjoin:" + cj[0]["coinjoin_kind"] + "_unbroken"
                    else:
                        cls = "coinjoin:stopped_on_other_payment:" + (
                            "flagged_own_" + tkind
                            if own
                            else "through_own"
                            if through_own
                            else "elsewhere"
                        )
                else:
                    cls = top["source_category"]
        per[ex][cls] += 1
        per[ex]["path:" + kind] += 1
        if not twin:
            rest[cls] += 1
            rest_per[ex][cls] += 1
        if len(examples[ex + cls]) < 3:
            examples[ex + cls].append(d)
    return {
        "world": name,
        "per_exchange": {k: dict(v) for k, v in sorted(per.items())},
        "not_twin": dict(rest.most_common()),
        "not_twin_per_exchange": {k: dict(v.most_common()) for k, v in sorted(rest_per.items())},
        "examples": dict(examples),
    }


def twin_table(out: list[dict[str, Any]]) -> str:
    """Markdown: per world and exchange, eligible, named, missed, and of the missed those whose
    largest row lists the funder in a style-twin set (by set size) and the rest."""
    lines = [
        "| world | exchange | named / eligible | missed | in a twin set (size 2 / 3+) | other |",
        "|---|---|---|---|---|---|",
    ]
    tot = Counter[str]()
    for o in out:
        for ex, c in o["per_exchange"].items():
            miss = c["eligible"] - c.get("hit", 0)
            two = c.get("twin_set:2", 0)
            more = sum(v for k, v in c.items() if k.startswith("twin_set:") and k != "twin_set:2")
            lines.append(
                f"| {o['world']} | {ex} | {c.get('hit', 0)} / {c['eligible']} | {miss} "
                f"| {two + more} ({two} / {more}) | {miss - two - more} |"
            )
            tot.update(
                {"eligible": c["eligible"], "hit": c.get("hit", 0), "miss": miss}
                | {"two": two, "more": more}
            )
    twins = tot["two"] + tot["more"]
    lines.append(
        f"| **all** | | {tot['hit']} / {tot['eligible']} | {tot['miss']} "
        f"| {twins} ({tot['two']} / {tot['more']}) | {tot['miss'] - twins} |"
    )
    return "\n".join(lines)


#: Classes grouped for the worst-exchange census (`worst_table`): prefix -> group.
_GROUPS = (
    ("unident_own:", "own wallet, no set"),
    ("right_below_cut", "right below the cut"),
    ("wrong_below_cut", "another exchange below the cut"),
    ("wrong_exchange", "a wrong exchange decides"),
    ("coinjoin:", "CoinJoin"),
    ("unident_other:", "another owner's wallet"),
)


def _group(cls: str) -> str:
    for prefix, name in _GROUPS:
        if cls.startswith(prefix):
            return name
    return "other"


def worst_table(out: list[dict[str, Any]]) -> str:
    """Markdown: per world, its worst exchange (lowest named / eligible), its misses in a
    style-twin set and the others by `_GROUPS`, and how many more it needs named for 0.90; a
    last row sums them over the worlds (issue 11, "every exchange >= 0.90")."""
    cols = [name for _p, name in _GROUPS] + ["other"]
    lines = [
        "| world | worst exchange | named / eligible | short of 0.90 | in a twin set | "
        + " | ".join(cols)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(cols),
    ]
    tot: Counter[str] = Counter()
    for o in out:
        per = o["per_exchange"]
        if not per:
            continue
        ex = min(per, key=lambda k: per[k].get("hit", 0) / max(per[k]["eligible"], 1))
        c = per[ex]
        hit, n = c.get("hit", 0), c["eligible"]
        short = max(0, -(-9 * n // 10) - hit)  # ceil(0.9 n) - named
        twins = sum(v for k, v in c.items() if k.startswith("twin_set:"))
        groups: Counter[str] = Counter()
        for cls, v in o.get("not_twin_per_exchange", {}).get(ex, {}).items():
            groups[_group(cls)] += v
        tot.update({"hit": hit, "eligible": n, "short": short, "twins": twins} | dict(groups))
        lines.append(
            f"| {o['world']} | {ex} | {hit} / {n} | {short} | {twins} | "
            + " | ".join(str(groups.get(k, 0)) for k in cols)
            + " |"
        )
    lines.append(
        f"| **all** | | {tot['hit']} / {tot['eligible']} | {tot['short']} | {tot['twins']} | "
        + " | ".join(str(tot.get(k, 0)) for k in cols)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = world_parser(__doc__)
    ap.add_argument(
        "--twins",
        action="store_true",
        help="per exchange: misses whose largest row lists the funder in a style-twin set",
    )
    ap.add_argument(
        "--worst",
        action="store_true",
        help="per world: its worst exchange's misses, twin sets apart, by class group",
    )
    a = ap.parse_args()
    out = [classify(w, a.root) for w in a.worlds]
    total: Counter[str] = Counter()
    for o in out:
        print(o["world"])
        for ex, c in o["per_exchange"].items():
            miss = c["eligible"] - c.get("hit", 0)
            classes = {
                k: v
                for k, v in c.items()
                if k not in ("eligible", "hit") and not k.startswith(("path:", "twin_set:"))
            }
            paths = {k[5:]: v for k, v in c.items() if k.startswith("path:")}
            print(
                f"  {ex:10s} {c.get('hit', 0)}/{c['eligible']} missed {miss}: {classes} paths {paths}"
            )
            total.update(classes)
    print("all:", dict(total.most_common()))
    if a.twins:
        print(twin_table(out))
        rest: Counter[str] = Counter()
        for o in out:
            rest.update(o["not_twin"])
        print("misses in no twin set, by class:", dict(rest.most_common()))
    if a.worst:
        print(worst_table(out))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
