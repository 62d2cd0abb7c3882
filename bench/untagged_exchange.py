"""One exchange left untagged: do its customers' deposits get named after another exchange?

Every simulated profile tags every exchange (a few addresses each); on the real chain many
exchanges carry no tag at all. Their customers' deposits must then come out unattributed
(no lead >= 0.5), never as a tagged exchange (a subpoena to the wrong exchange).

For a world cached by `bench.accuracy_matrix` (`bench-output/accuracy/<world>/`), `prepare`
builds a variant under `bench-output/untagged/<world>/<exchange>/`: the world's TagPacks with
every tag of `exchange`'s actor removed (`world/tags/`; truth, seeds and blocks are links to the
cached world's), and a copy of the cached store (the clusters are kept: the clusterer reads no
tags) with those packs imported the way `bench.world.tag_world` does. `run` investigates the
variant with the code in the working directory (`investigate`'s defaults) into `case-<label>/`
and scores it (`cases.evaluate.score_case`) with three extra figures:

- `untagged_wrong`: deposits the untagged exchange funded (one of its trail-holding payments)
  whose deciding lead names an exchange that funded none of them: named the wrong exchange
  because the true one is untagged; with each such row's `attributed_via` and the truth's kind
  of the wallet that sent its funding tx (`untagged_wrong_via`);
- `untagged_named`: such deposits with any deciding lead (right ones come from a co-funder);
- `tagged_recall`: correct / eligible over the tagged exchanges' deposits.

    python -m bench.untagged_exchange prepare hard-small-1 arcadia
    python -m bench.untagged_exchange run hard-small-1 arcadia --label main
    python -m bench.untagged_exchange run hard-small-1 - --label main   # all tags kept
    python -m bench.untagged_exchange run hard-small-1 arcadia --label off --no-style-names
    python -m bench.untagged_exchange prepare hard-small-1 arcadia+cobalt   # two untagged at once
    python -m bench.untagged_exchange prepare hard-small-1 pairs            # every pair
    python -m bench.untagged_exchange run hard-small-1 pairs --label main

`-` as the exchange runs on the cached world itself (`case-<label>/` beside the variants).
An exchange spec may name several actors joined by `+` (`arcadia+cobalt`): every tag of each is
removed, and the figures above count them as one untagged set (a deposit any of them funded,
named after an exchange that funded none of it, is wrong; `tagged_recall` is over the others);
such a variant's score also splits `untagged_funded` and `untagged_wrong` per actor
(`untagged_by_exchange`). `pairs` is every pair of the world's exchanges.
Reads the truth (bench code only).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench-output" / "accuracy"
OUT = ROOT / "bench-output" / "untagged"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def untagged_set(exchange: str) -> frozenset[str]:
    """The actors an exchange spec leaves untagged: `-` none, `a+b` both a and b."""
    if exchange == "-":
        return frozenset()
    names = exchange.split("+")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise SystemExit(f"exchange spec {exchange!r}: actors joined by '+', each once")
    return frozenset(names)


def variant_dir(world: str, exchange: str) -> Path:
    return OUT / world / (exchange if exchange != "-" else "all-tagged")


def prepare(world: str, exchange: str, *, link: bool = False) -> Path:
    """The variant of cached `world` with `exchange`'s tags removed (every actor of an
    `a+b` spec), tags re-imported."""
    from bench.world import tag_world

    untagged = untagged_set(exchange)
    src = CACHE / world
    dst = variant_dir(world, exchange)
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "world" / "tags").mkdir(parents=True)
    for entry in (src / "world").iterdir():
        if entry.name != "tags":
            (dst / "world" / entry.name).symlink_to(entry.resolve())
    removed = 0
    present: set[str] = set()
    for pack in sorted((src / "world" / "tags").iterdir()):
        doc = yaml.safe_load(pack.read_text())
        tags = doc.get("tags") or []
        present |= {t.get("actor") or doc.get("actor") for t in tags}
        kept = [t for t in tags if (t.get("actor") or doc.get("actor")) not in untagged]
        removed += len(tags) - len(kept)
        doc["tags"] = kept
        (dst / "world" / "tags" / pack.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    missing = ", ".join(repr(x) for x in sorted(untagged - present))
    if removed == 0 or missing:
        raise SystemExit(f"{src / 'world' / 'tags'}: no tag with actor {missing or repr(exchange)}")
    # hard links are safe: investigate reads the store, and the tags are imported afresh
    copy = _link if link else shutil.copy2
    shutil.copytree(src / "store", dst / "store", copy_function=copy,
                    ignore=shutil.ignore_patterns("tags"))  # fmt: skip
    tag_world(dst / "world", dst / "store")
    (dst / "untagged.json").write_text(json.dumps({"exchange": exchange, "removed": removed}))
    return dst


def _link(src: str, dst: str) -> None:
    Path(dst).hardlink_to(src)


def run(world: str, exchange: str, label: str, style_names: bool = True) -> dict[str, Any]:
    """Investigate the variant with the working directory's code and score it
    (`style_names`: investigate's, False as `--no-style-names`)."""
    from chainsleuth.cases.investigate import investigate

    root = CACHE / world if exchange == "-" else variant_dir(world, exchange)
    case = (variant_dir(world, "-") if exchange == "-" else root) / f"case-{label}"
    shutil.rmtree(case, ignore_errors=True)
    seeds = root / "world" / "seeds" / "deposits.csv"
    investigate(root / "store", seeds, case, report=False, style_names=style_names)
    result = score(root / "world", case, exchange)
    import chainsleuth

    result.update(world=world, exchange=exchange, label=label, code=chainsleuth.__file__)
    result["style_names"] = style_names
    case.parent.mkdir(parents=True, exist_ok=True)
    (case.parent / f"score-{label}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def score(world_dir: Path, case: Path, exchange: str) -> dict[str, Any]:
    """`score_case` and the untagged exchange's figures (module docstring); `exchange` may
    name several actors (`a+b`), counted as one untagged set."""
    from chainsleuth.cases.evaluate import _SUBPOENA_CATEGORIES, _holds, deciding_leads, score_case

    s = score_case(world_dir, case)
    untagged = untagged_set(exchange)
    by_exchange: dict[str, Counter[str]] = {x: Counter() for x in sorted(untagged)}
    payments: dict[str, list[dict[str, str]]] = {}
    for p in _rows(world_dir / "truth" / "payments.csv"):
        payments.setdefault(p["deposit_address"], []).append(p)
    rows = [r for r in _rows(case / "leads.csv") if r["source_category"] in _SUBPOENA_CATEGORIES]
    best = deciding_leads(
        (r["deposit_address"], r["source_entity"], int(r["amount_sat"]), float(r["confidence"]))
        for r in rows
    )
    # the deciding row itself (first of the largest amount at the cut, as deciding_leads)
    row_of: dict[str, dict[str, str]] = {}
    for r in rows:
        d = r["deposit_address"]
        if d in row_of or d not in best or float(r["confidence"]) < 0.5:
            continue
        if (int(r["amount_sat"]), r["source_entity"]) == best[d]:
            row_of[d] = r
    wallet_of = {t["txid"]: t["wallet_id"] for t in _rows(world_dir / "truth" / "txs.csv")}
    kind_of = {w["wallet_id"]: w["wallet_kind"] for w in _rows(world_dir / "truth" / "wallets.csv")}
    entity_of = {w["wallet_id"]: w["entity"] for w in _rows(world_dir / "truth" / "wallets.csv")}
    funded = wrong = named = 0
    wrong_named: Counter[str] = Counter()
    wrong_via: Counter[str] = Counter()
    wrong_all = 0
    for d, ps in payments.items():
        right = {p["funding_exchange"] for p in ps if _holds(p)}
        pick = best.get(d)
        if pick is not None and right and pick[1] not in right:
            wrong_all += 1
        if not untagged & right:
            continue
        funded += 1
        for x in untagged & right:
            by_exchange[x]["funded"] += 1
        if pick is None:
            continue
        named += 1
        if pick[1] not in right:
            wrong += 1
            wrong_named[pick[1]] += 1
            for x in untagged & right:
                by_exchange[x]["wrong"] += 1
            r = row_of[d]
            w = wallet_of.get(r["funding_txid"], "")
            sender = f"{kind_of.get(w, '?')}:{entity_of.get(w, '?')}" if w else "?"
            if entity_of.get(w) in untagged:
                sender = "untagged_exchange"
            wrong_via[f"{r['attributed_via'] or 'walk'}<-{sender}"] += 1
    tagged = {k: v for k, v in s.per_exchange.items() if k not in untagged}
    eligible = sum(int(v["eligible"]) for v in tagged.values())
    correct = sum(int(v["correct"]) for v in tagged.values())
    # a several-actor spec's split per actor (left out for one actor: its score as before)
    split = (
        {"untagged_by_exchange": {x: dict(c) for x, c in by_exchange.items()}}
        if len(untagged) > 1
        else {}
    )
    return {
        "lead_precision": s.lead_precision,
        "named": s.named,
        "correct": s.correct,
        "wrong": s.named - s.correct,
        "lead_recall": s.lead_recall,
        "tagged_recall": correct / eligible if eligible else 1.0,
        "worst_tagged_recall": min((v["recall"] for v in tagged.values()), default=1.0),
        "untagged_funded": funded,
        "untagged_named": named,
        "untagged_wrong": wrong,
        "untagged_wrong_named": dict(wrong_named),
        "untagged_wrong_via": dict(wrong_via),
        "unpaid_attributed": s.unpaid_attributed,
        "cashout_precision": s.cashout_precision,
        "cashout_recall": s.cashout_recall,
        "cashout_total_ratio": s.cashout_total_ratio,
        **split,
    }


def exchanges(world: str) -> list[str]:
    """The world's exchanges (world.json)."""
    meta = json.loads((CACHE / world / "world" / "world.json").read_text())
    ex = meta["exchanges"]
    return sorted(ex if isinstance(ex, list) else ex.keys())


def pairs(world: str) -> list[str]:
    """Every pair of the world's exchanges as `a+b` specs (names in order)."""
    from itertools import combinations

    return [f"{a}+{b}" for a, b in combinations(exchanges(world), 2)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["prepare", "run"])
    parser.add_argument("world", help="a world cached in bench-output/accuracy/")
    parser.add_argument(
        "exchanges",
        nargs="+",
        help="exchange(s) to untag, 'a+b' several at once; 'all': each (and '-' to run); "
        "'pairs': every pair; '-': none",
    )
    parser.add_argument("--label", default="main", help="case-<label>/, score-<label>.json")
    parser.add_argument("--link", action="store_true", help="hard-link the store's files")
    parser.add_argument(
        "--no-style-names", action="store_true", help="investigate with style_names=False"
    )
    args = parser.parse_args(argv)
    names = exchanges(args.world) if args.exchanges == ["all"] else args.exchanges
    if args.exchanges == ["pairs"]:
        names = pairs(args.world)
    if args.exchanges == ["all"] and args.what == "run":
        names = ["-", *names]  # the world as cached, all tags kept, for comparison
    for x in names:
        if args.what == "prepare":
            print(prepare(args.world, x, link=args.link), flush=True)
        else:
            r = run(args.world, x, args.label, not args.no_style_names)
            keys = ("lead_precision", "wrong", "untagged_funded", "untagged_named",
                    "untagged_wrong", "tagged_recall", "untagged_wrong_via")  # fmt: skip
            print(args.world, x, args.label, {k: r[k] for k in keys}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
