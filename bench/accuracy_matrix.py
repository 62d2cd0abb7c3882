"""Investigation accuracy over profiles × seeds × scales (issue 11), worst case first.

For each (profile, scale, seed) a world is simulated, ingested, clustered (the default policy),
given its TagPacks and investigated with `investigate`'s defaults, exactly as a new user would;
the case is then scored with `chainsleuth.cases.evaluate.score_case`. Worlds and stores are
cached under `bench-output/accuracy/` (delete it to rebuild).

    python -m bench.accuracy_matrix --profiles easy realistic hard --scales small --seeds 1 2 3
    python -m bench.accuracy_matrix --render      # re-render from bench-output/accuracy/*.json

Writes `bench-output/accuracy/<profile>-<scale>-<seed>.json` (the score, lead outcomes for the
reliability diagram) and prints the markdown table that docs/investigations.md carries.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.world import simulate_world, tag_world

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "accuracy"


def build_case(
    root: Path,
    profile: str,
    scale: str,
    seed: int,
    *,
    fresh: bool = False,
    recluster: bool = True,
    stages: dict[str, float] | None = None,
) -> Path:
    """Simulate → ingest → cluster → tags → investigate under `root`; returns the case dir.
    `stages` (when given) receives each stage's seconds (a cached stage is absent)."""
    from chainsleuth.cases.investigate import investigate
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.store.ingest import ingest_blocks_dir

    world, store, case = root / "world", root / "store", root / "case"
    times = stages if stages is not None else {}
    t = time.perf_counter()
    if fresh or not (world / "world.json").exists():
        simulate_world(world, seed, scale, profile)
        shutil.rmtree(store, ignore_errors=True)
        times["simulate"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    if not (store / "manifest.json").exists():
        shutil.rmtree(store, ignore_errors=True)
        ingest_blocks_dir(world / "blocks", store)
        times["ingest"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    if recluster or not (store / "tags" / "manifest.json").exists():
        cluster_store(store, "conservative")
        shutil.rmtree(store / "tags", ignore_errors=True)
        tag_world(world, store)
        times["cluster_and_tags"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    investigate(store, world / "seeds" / "deposits.csv", case, report=False)
    times["investigate"] = round(time.perf_counter() - t, 1)
    return case


def _commit() -> str:
    """The tree's short commit, `+` when it has uncommitted changes ("" outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        return ""
    return head + ("+" if head and dirty else "")


def measure(profile: str, scale: str, seed: int, recluster: bool = True) -> dict[str, Any]:
    from chainsleuth.cases.evaluate import cashout_outcomes, lead_outcomes, score_case

    root = OUT / f"{profile}-{scale}-{seed}"
    started = time.perf_counter()
    stages: dict[str, float] = {}
    case = build_case(root, profile, scale, seed, recluster=recluster, stages=stages)
    score = score_case(root / "world", case)
    # ru_maxrss is KiB on Linux: the process's peak so far (over every world this run measured).
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    meta = json.loads((root / "world" / "world.json").read_text())
    result = {
        # which code and when: `make bench` renders results kept from earlier runs too
        "commit": _commit(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "profile": profile,
        "scale": scale,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 1),
        "stages": stages,
        "peak_rss_mib": round(peak_rss_mib),
        "n_txs": meta["n_txs"],
        # pairs of exchanges identical on every habit (docs/simulator.md, "Exchange habits")
        "twin_exchanges": meta.get("twin_exchanges", []),
        "style_twins": style_twins(meta.get("exchange_habits") or {}),
        # exchanges the world's tags leave out (profiles *_untagged; absent elsewhere)
        **(
            {"untagged_exchanges": untagged} if (untagged := meta.get("untagged_exchanges")) else {}
        ),
        "score": score.as_dict(),
        "leads": lead_outcomes(root / "world", case, 0.0),
        "cashouts": cashout_outcomes(root / "world", case),
    }
    saved = OUT / f"{profile}-{scale}-{seed}.json"
    if saved.exists():
        # stages taken from the cache keep the times (and peak RSS) of the run that built them
        before = json.loads(saved.read_text())
        cached = {k: v for k, v in before.get("stages", {}).items() if k not in stages}
        if cached:
            result["stages"] = {**cached, **stages}
            result["peak_rss_mib"] = max(result["peak_rss_mib"], before.get("peak_rss_mib", 0))
    saved.write_text(json.dumps(result) + "\n")
    return result


#: The exchange habits the attribution rules read (trace.services' wallet styles): hot and
#: deposit script types, fresh change, change position, fee deduction, and where the profile
#: draws exchange software (`exchange_software: drawn`) the signer's version, locktime and
#: nSequence, BIP69 output order and whole sat/vB fee rates (absent, so alike, in other worlds).
#: The block cadences (`batch_every`, `sweep_every`) and address reuse are drawn too, but no
#: style rule reads them, so exchanges alike on these alone cannot be told apart by style
#: (docs/accuracy-log.md, "The two new worst worlds").
RULE_HABITS = (
    "wallet_stype",
    "deposit_stype",
    "fresh_change",
    "change_last",
    "deducts_fee",
    "tx_version",
    "locktime_at_tip",
    "sequence",
    "bip69",
    "whole_fee_rate",
)


def style_twins(habits: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Groups of two or more exchanges alike on every habit of RULE_HABITS (world.json's
    `exchange_habits`; empty for worlds without it)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for name in sorted(habits):
        groups.setdefault(tuple(habits[name].get(k) for k in RULE_HABITS), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _row(r: dict[str, Any]) -> list[str]:
    s = r["score"]
    per = s["per_exchange"]
    low = min(per, key=lambda k: per[k]["recall"], default="")
    worst = f"{per[low]['recall']:.3f} ({low})" if low else "1.000"
    twins = ", ".join("+".join(pair) for pair in r.get("twin_exchanges", [])) or "—"
    return [
        r["profile"],
        r["scale"],
        str(r["seed"]),
        f"{r['n_txs']:,}",
        f"{s['lead_precision']:.3f}",
        f"{s['lead_recall']:.3f}",
        worst,
        f"{s['cashout_precision']:.3f}",
        f"{s['cashout_recall']:.3f}",
        f"{s['cashout_total_ratio']:.2f}",
        str(s["coinjoin_attributed_above_cap"]),
        str(s["unpaid_attributed"]),
        twins if "twin_exchanges" in r else "?",
        ", ".join("+".join(g) for g in r["style_twins"]) or "—" if "style_twins" in r else "?",
        _untagged_cell(r),
    ]


def _untagged_cell(r: dict[str, Any]) -> str:
    """The untagged exchanges and their deposits named after another exchange: "name: wrong /
    deposits" ("—" where every exchange is tagged)."""
    s = r["score"]
    names = r.get("untagged_exchanges") or []
    if not names:
        return "—"
    return f"{'+'.join(names)}: {s['untagged_named_wrong']} / {s['untagged_deposits']}"


def _cashout_worst(r: dict[str, Any]) -> float:
    """A world's worst cash-out figure: the lowest of recall, precision and 1 - the total's
    distance from the truth."""
    s = r["score"]
    return min(s["cashout_recall"], s["cashout_precision"], 1 - abs(s["cashout_total_ratio"] - 1))


def render(results: list[dict[str, Any]], by: str = "leads") -> str:
    """The matrix as markdown, worst first: by the lower of lead precision and recall, or
    (`by="cashouts"`) by `_cashout_worst`."""
    header = [
        "profile", "scale", "seed", "txs", "lead precision", "lead recall",
        "worst exchange recall", "cash-out precision", "cash-out recall",
        "cashed-out total, reported ÷ true", "CoinJoin-only deposits > 0.25", "unpaid named",
        "twin exchanges", "style twins (habits the rules read)",
        "untagged exchange: deposits named wrong / its deposits",
    ]  # fmt: skip

    def worst(r: dict[str, Any]) -> float:
        s = r["score"]
        return _cashout_worst(r) if by == "cashouts" else min(s["lead_recall"], s["lead_precision"])

    results = sorted(results, key=lambda r: (worst(r), r["profile"], r["scale"], r["seed"]))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return "\n".join(lines)


def _untagged_wrong_via_style(r: dict[str, Any]) -> int:
    """How many of the world's untagged deposits named wrong were named by a wallet-style
    match (the saved lead outcomes' deciding row, `via_style`)."""
    from chainsleuth.cases.evaluate import deciding_leads

    rows = [o for o in r["leads"] if o.get("untagged")]
    best = deciding_leads(
        (o["deposit_address"], o["exchange"], o["amount_sat"], o["confidence"]) for o in rows
    )
    by_style = set()
    for o in rows:
        d = o["deposit_address"]
        if best.get(d) == (o["amount_sat"], o["exchange"]) and not o["correct"] and o["via_style"]:
            by_style.add(d)
    return len(by_style)


def render_untagged(results: list[dict[str, Any]], base: list[dict[str, Any]] | None = None) -> str:
    """The worlds with untagged exchanges (profiles *_untagged) as markdown, worst lead precision
    first: the untagged exchange, its deposits named after another exchange (and of them, by a
    wallet-style match), the figures score_case gives, and (from `base`, default `results`) the
    same chain's world with every exchange tagged (profile without `_untagged*`), where cached."""
    base = results if base is None else base
    tagged = {(r["profile"], r["scale"], r["seed"]): r["score"] for r in base}
    header = [
        "world", "untagged", "its deposits named wrong", "of them by style", "lead precision",
        "lead recall (tagged)", "worst exchange recall", "all tagged: precision, recall",
        "cash-out precision", "cash-out recall", "cashed-out total",
        "cash-outs named another exchange", "style twins",
    ]  # fmt: skip
    mine = [r for r in results if r.get("untagged_exchanges")]
    mine.sort(key=lambda r: (r["score"]["lead_precision"], r["profile"], r["scale"], r["seed"]))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in mine:
        s = r["score"]
        per = s["per_exchange"]
        low = min(per, key=lambda k: per[k]["recall"], default="")
        # hard_untagged and hard_untagged2 are both hard's chain
        b = tagged.get((r["profile"].partition("_untagged")[0], r["scale"], r["seed"]))
        cells = [
            f"{r['profile']} {r['scale']} {r['seed']}",
            "+".join(r["untagged_exchanges"]),
            f"{s['untagged_named_wrong']} / {s['untagged_deposits']}",
            str(_untagged_wrong_via_style(r)),
            f"{s['lead_precision']:.3f}",
            f"{s['lead_recall']:.3f}",
            f"{per[low]['recall']:.3f} ({low})" if low else "1.000",
            f"{b['lead_precision']:.3f}, {b['lead_recall']:.3f}" if b else "—",
            f"{s['cashout_precision']:.3f}",
            f"{s['cashout_recall']:.3f}",
            f"{s['cashout_total_ratio']:.2f}",
            f"{s.get('cashout_exchange_wrong', '?')} / {s['cashouts_found']}",
            ", ".join("+".join(g) for g in r.get("style_twins", [])) or "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_costs(results: list[dict[str, Any]], scales: tuple[str, ...] = ("large",)) -> str:
    """What each world of `scales` cost to build and investigate: seconds per stage (a stage
    taken from the cache is blank) and the measuring process's peak RSS (that of a run that
    measured this world alone; a run over several worlds reports its peak so far)."""
    header = [
        "profile", "scale", "seed", "txs", "simulate s", "ingest s", "cluster + tags s",
        "investigate s", "peak RSS MiB", "commit", "measured",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(results, key=lambda r: (r["scale"], r["profile"], r["seed"])):
        if r["scale"] not in scales:
            continue
        st = r.get("stages", {})
        cells = [r["profile"], r["scale"], str(r["seed"]), f"{r['n_txs']:,}"]
        cells += [str(st.get(k, "")) for k in ("simulate", "ingest", "cluster_and_tags")]
        cells += [str(st.get("investigate", "")), f"{r.get('peak_rss_mib', '')}"]
        cells += [r.get("commit", "") or "?", r.get("measured_at", "") or "?"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_results(
    worlds: set[tuple[str, str, int]] | None = None,
) -> list[dict[str, Any]]:
    """Saved results, all of them or those of `worlds` ((profile, scale, seed))."""
    results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*-*-*.json"))]
    if worlds is None:
        return results
    return [r for r in results if (r["profile"], r["scale"], r["seed"]) in worlds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["easy", "realistic", "hard"])
    parser.add_argument("--scales", nargs="+", default=["small"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--render", action="store_true", help="only re-render saved results")
    parser.add_argument(
        "--sort", choices=["leads", "cashouts"], default="leads", help="worst first by"
    )
    parser.add_argument(
        "--reuse-clusters", action="store_true", help="keep a cached world's clusters and tags"
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.render:
        for scale in args.scales:
            for profile in args.profiles:
                for seed in args.seeds:
                    r = measure(profile, scale, seed, recluster=not args.reuse_clusters)
                    print(
                        " | ".join(_row(r)),
                        f"({r['seconds']} s, {r['stages']}, peak RSS {r['peak_rss_mib']} MiB)",
                        flush=True,
                    )
    print(render(load_results(), args.sort))
    if any(r.get("untagged_exchanges") for r in load_results()):
        print()
        print(render_untagged(load_results()))
    if any(r["scale"] == "large" for r in load_results()):
        print()
        print(render_costs(load_results()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
