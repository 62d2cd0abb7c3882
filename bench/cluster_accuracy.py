"""Measure clustering accuracy against a simulated world's ground truth; write docs/clustering.md.

`python -m bench.cluster_accuracy [--scale medium] [--seed 7] [--profile hard]` simulates the
world (cached under bench-output/), ingests it, clusters it under every policy, and scores each
against the truth (pairwise precision/recall and B-cubed, over every address the truth knows;
the same restricted to exchange-owned addresses, with the number of clusters the exchanges fall
into and the clusters holding two exchanges), plus the per-transaction accuracy of each change
rule, of the learned change classifier, and of each CoinJoin rule against the truth's labels.
`--out -` prints the tables without writing docs/clustering.md.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainsleuth.cluster import learned as lc
from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.cluster.evaluate import score, two_exchange_clusters
from chainsleuth.cluster.ranges import analyze_range
from chainsleuth.cluster.rules import BY_NAME, POLICIES
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store

OUT = Path("bench-output")
# Policies whose rule-based change decisions are scored transaction by transaction.
POLICY_CHANGE_ROWS = ("conservative", "conservative_fresh", "value_vote", "strict")
MIX_KINDS = {"whirlpool_mix", "wasabi_mix", "joinmarket_mix"}


def build_world(
    scale: str, seed: int, profile: str | None = None
) -> tuple[Path, Path, float, float]:
    from chainsleuth.simulate import simulate

    suffix = f"-{profile}" if profile else ""
    world = OUT / f"world-{scale}-{seed}{suffix}"
    store = OUT / f"store-{scale}-{seed}{suffix}"
    gen_seconds = ingest_seconds = 0.0
    if not (world / "world.json").exists():
        started = time.perf_counter()
        if profile:
            simulate(world, seed=seed, scale=scale, profile=profile)  # type: ignore[call-arg]
        else:
            simulate(world, seed=seed, scale=scale)
        gen_seconds = time.perf_counter() - started
    if not (store / "manifest.json").exists():
        shutil.rmtree(store, ignore_errors=True)
        started = time.perf_counter()
        ingest_blocks_dir(world / "blocks", store)
        ingest_seconds = time.perf_counter() - started
    return world, store, gen_seconds, ingest_seconds


def change_rule_accuracy(world: Path, store_dir: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Per change rule and per CoinJoin rule: how often it fires and how often it is right."""
    store = Store.open(store_dir)
    arrays = store.graph
    n = arrays.n_txs
    txids = store.graph.tx_txid
    index = {bytes(t[::-1]).hex(): i for i, t in enumerate(txids)}
    change: dict[int, set[int]] = {}
    kind: dict[int, str] = {}
    with open(world / "truth" / "txs.csv", newline="") as f:
        for row in csv.DictReader(f):
            i = index.get(row["txid"])
            if i is None:
                continue
            kind[i] = row["kind"]
            change[i] = {int(v) for v in row["change_vouts"].split(";") if v}
    analysis, _ = analyze_range(arrays, 0, n, -1)
    coinjoin, votes = analysis.coinjoin, analysis.votes
    first_out = arrays.tx_first_output
    with_change = sum(1 for i, c in change.items() if c and not coinjoin[i])
    rows = []
    for name, v in zip(
        ("fresh_address", "script_type", "round_amount", "optimal_change"), votes, strict=True
    ):
        fired = np.flatnonzero(v >= 0)
        right = sum(1 for i in fired.tolist() if int(v[i] - first_out[i]) in change.get(i, ()))
        rows.append(
            [
                name,
                f"{fired.shape[0]:,}",
                f"{right / max(fired.shape[0], 1):.4f}",
                f"{right / max(with_change, 1):.4f}",
                f"{BY_NAME[name].confidence:.2f}",
            ]
        )
    for name in POLICY_CHANGE_ROWS:
        policy = POLICIES[name]
        chosen = np.empty(n, np.int64)
        lc.rule_choice(
            coinjoin,
            tuple(votes),
            policy.change_rule(),
            arrays.output_address,
            analysis.fresh,
            int(first_out[0]),
            analysis.hot,
            chosen,
        )
        fired = np.flatnonzero(chosen >= 0)
        right = sum(1 for i in fired.tolist() if int(chosen[i] - first_out[i]) in change.get(i, ()))
        rows.append(
            [
                f"{name} policy (rules agreeing)",
                f"{fired.shape[0]:,}",
                f"{right / max(fired.shape[0], 1):.4f}",
                f"{right / max(with_change, 1):.4f}",
                "",
            ]
        )
    rows.extend(learned_rows(arrays, store, change, kind, with_change))
    cj_rows = []
    flagged = Counter((int(coinjoin[i]), kind.get(i, "?")) for i in np.flatnonzero(coinjoin))
    mixes = [i for i, k in kind.items() if k in MIX_KINDS]
    missed = Counter(kind[i] for i in mixes if not coinjoin[i])
    for (code, k), count in sorted(flagged.items()):
        rule = next(r.name for r in BY_NAME.values() if r.code == code)
        cj_rows.append([rule, k, f"{count:,}"])
    cj_rows.append(["(missed)", ", ".join(f"{k}: {c}" for k, c in missed.items()) or "none", ""])
    return rows, cj_rows


def learned_rows(
    arrays: ChainGraph,
    store: Store,
    change: dict[int, set[int]],
    kind: dict[int, str],
    with_change: int,
) -> list[list[str]]:
    """The learned change classifier alone (trained on this chain), scored like the rules,
    then its merges as conservative_learned gates them (a value rule agrees, none disagrees).

    Also its recall on exchange withdrawals whose change goes to a fresh address.
    """
    fingerprint = lc.read_fingerprints(store, 0, arrays.n_txs)
    spent_by = store.graph.output_spent_by_tx
    height = store.graph.tx_height
    policy = POLICIES["learned"]
    model = lc.train_model(
        arrays,
        policy,
        store.counts["addresses"],
        spent_by,
        height,
        fingerprint,
        lc.DEFAULT_WINDOW,
    )
    d = lc.decide(arrays, model, policy, spent_by, height, fingerprint, 0, -1)
    first_out = arrays.tx_first_output
    right = np.array(
        [
            int(o - first_out[t]) in change.get(t, ())
            for t, o in zip(d.tx.tolist(), d.out.tolist(), strict=True)
        ],
        np.bool_,
    )
    fired = dict(zip(d.tx.tolist(), right.tolist(), strict=True))
    analysis, _ = analyze_range(arrays, 0, arrays.n_txs, -1, want_votes=False)
    fresh_withdrawals = [
        t
        for t, k in kind.items()
        if k == "exchange_withdrawal"
        and change.get(t)
        and all(analysis.fresh[int(first_out[t]) + v - int(first_out[0])] for v in change[t])
    ]
    ew_right = sum(1 for t in fresh_withdrawals if fired.get(t))
    ew_fired = sum(1 for t in fresh_withdrawals if t in fired)
    LEARNED_STATS.update(
        {
            "fresh_withdrawals": len(fresh_withdrawals),
            "fired_on_fresh_withdrawals": ew_fired,
            "right_on_fresh_withdrawals": ew_right,
            "model": model,
        }
    )
    n = int(right.shape[0])
    print(
        f"learned_change: fired {n}, precision {right.mean() if n else 0:.4f}, "
        f"fresh-change exchange withdrawals {ew_right}/{ew_fired}/{len(fresh_withdrawals)} "
        f"(right/fired/all), model {model.stats}"
    )
    rows = [
        [
            "learned_change",
            f"{n:,}",
            f"{right.sum() / max(n, 1):.4f}",
            f"{right.sum() / max(with_change, 1):.4f}",
            f"{BY_NAME['learned_change'].confidence:.2f}",
        ]
    ]
    gated = lc.decide(
        arrays, model, POLICIES["conservative_learned"], spent_by, height, fingerprint, 0, -1
    )
    g_right = sum(
        1
        for t, o in zip(gated.tx.tolist(), gated.out.tolist(), strict=True)
        if int(o - first_out[t]) in change.get(t, ())
    )
    g_n = int(gated.tx.shape[0])
    rows.append(
        [
            "learned_change gated (conservative_learned)",
            f"{g_n:,}",
            f"{g_right / max(g_n, 1):.4f}",
            f"{g_right / max(with_change, 1):.4f}",
            f"{BY_NAME['learned_change'].confidence:.2f}",
        ]
    )
    return rows


LEARNED_STATS: dict[str, object] = {}


@dataclass
class WorldResult:
    """Every table of one world (scale, seed, profile), and the figures the matrix reads."""

    scale: str
    seed: int
    profile: str | None
    counts: dict[str, int]
    n_truth_wallets: int
    n_scored: int
    gen_s: float
    ingest_s: float
    table: list[list[str]]
    ex_table: list[list[str]]
    rule_rows: list[list[str]]
    cj_rows: list[list[str]]
    figures: dict[str, dict[str, float]]  # policy -> pp, exr, mixed


def truth_owners(world: Path, store: Store) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every address the truth knows (`world/truth/addresses.csv`) that the store holds: its
    address ids, their owners (wallets, as consecutive ints) and whether each is an exchange's."""
    ids = {
        r["address"]: r["address_id"]
        for r in store.sql(
            "SELECT DISTINCT address, address_id FROM outputs WHERE address IS NOT NULL"
        ).to_pylist()
    }
    with open(world / "truth" / "addresses.csv", newline="") as f:
        pairs = [
            (ids[r["address"]], r["wallet_id"], r["wallet_kind"] == "exchange")
            for r in csv.DictReader(f)
            if r["address"] in ids
        ]
    address_ids = np.array([a for a, _, _ in pairs])
    _, owners = np.unique([w for _, w, _ in pairs], return_inverse=True)
    return address_ids, owners, np.array([e for _, _, e in pairs], np.bool_)


def evaluate_world(scale: str, seed: int, profile: str | None, policies: list[str]) -> WorldResult:
    world, store_dir, gen_s, ingest_s = build_world(scale, seed, profile)
    store = Store.open(store_dir)
    address_ids, owners, exchange = truth_owners(world, store)
    table = []
    ex_table = []
    figures: dict[str, dict[str, float]] = {}
    for name in policies:
        policy = POLICIES[name]
        report = cluster_store(store_dir, name, from_scratch=True)
        predicted = np.asarray(Clusters(store_dir).cluster_of)[address_ids]
        s = score(predicted, owners)
        table.append(
            [
                name,
                f"{s.pairwise_precision:.4f}",
                f"{s.pairwise_recall:.4f}",
                f"{s.bcubed_precision:.4f}",
                f"{s.bcubed_recall:.4f}",
                f"{s.clusters:,}",
                f"{s.largest_cluster:,}",
                f"{report.coinjoins:,}",
                f"{report.quarantined:,}",
                f"{report.seconds:.2f}",
                policy.description,
            ]
        )
        print(scale, seed, profile, " | ".join(table[-1][:10]), flush=True)
        ex = score(predicted[exchange], owners[exchange])
        mixed = two_exchange_clusters(predicted, owners, exchange)
        ex_table.append(
            [
                name,
                f"{ex.pairwise_recall:.4f}",
                f"{ex.bcubed_recall:.4f}",
                f"{ex.clusters:,}",
                f"{mixed}",
                f"{report.rules.get('learned_change', 0):,}",
            ]
        )
        figures[name] = {
            "pp": s.pairwise_precision,
            "b3r": s.bcubed_recall,
            "exr": ex.pairwise_recall,
            "exb3r": ex.bcubed_recall,
            "mixed": mixed,
        }
    cluster_store(store_dir, "conservative", from_scratch=True)
    rule_rows, cj_rows = change_rule_accuracy(world, store_dir)
    return WorldResult(
        scale,
        seed,
        profile,
        dict(store.counts),
        int(owners.max()) + 1 if owners.shape[0] else 0,
        len(address_ids),
        gen_s,
        ingest_s,
        table,
        ex_table,
        rule_rows,
        cj_rows,
        figures,
    )


def md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def world_report(r: WorldResult, command: str, level: str = "#") -> str:
    """The detailed tables of one world."""
    return f"""{level} Clustering accuracy against ground truth: {r.scale} seed {r.seed}, profile {r.profile or "easy"}

Generated by `{command}` on {time.strftime("%Y-%m-%d")}. The simulated world: {r.counts["txs"]:,}
transactions, {r.counts["addresses"]:,} addresses, {r.n_truth_wallets:,} true wallets (generation
{r.gen_s:.0f} s and ingest {r.ingest_s:.0f} s when not cached). Scores are over the
{r.n_scored:,} addresses the truth knows. Pairwise: a pair of addresses is predicted linked when
they share a cluster, truly linked when they share a wallet. B-cubed averages per address.

{level}# Policies

{md(["policy", "pairwise precision", "pairwise recall", "B³ precision", "B³ recall", "clusters", "largest", "CoinJoins", "quarantined", "seconds", "what it does"], r.table)}

Pairwise recall is low for every policy because the big true wallets (exchanges) are linked
on-chain mostly through transactions no precise rule may merge: a sweep of deposits into a
single hot-wallet output has no change to find, and withdrawals pay customers from several
hot addresses that only the multi-input rule links. B-cubed recall, which weighs every address
equally, shows the gain of the change rules better.

{level}# Exchange wallets

Scores restricted to the addresses the truth gives to exchanges: pairwise and B³ recall of the
exchange wallets, how many clusters their addresses fall into, how many clusters hold
addresses of two different exchanges (a false link between exchanges), and the learned change
merges the policy made.

{md(["policy", "exchange pairwise recall", "exchange B³ recall", "exchange clusters", "clusters with 2 exchanges", "learned merges"], r.ex_table)}

{level}# Change rules, one transaction at a time

Each rule's vote compared with the truth's change outputs (transactions that are not CoinJoins).
"Precision" is the share of its votes that pick the true change output; "recall" the share of
transactions with change where it does. The "policy" rows are the change outputs each
rule-based policy merges (its rules agreeing, none against, a fresh change address).

{md(["rule", "fired", "precision", "recall", "confidence used"], r.rule_rows)}

`learned_change` is the classifier trained on this chain's own self-revealed change, scored
alone (every eligible transaction, not only where the rules are silent). On exchange
withdrawals whose change goes to a fresh address it fired on
{LEARNED_STATS.get("fired_on_fresh_withdrawals")} of {LEARNED_STATS.get("fresh_withdrawals")}
and was right on {LEARNED_STATS.get("right_on_fresh_withdrawals")}.

{level}# CoinJoin detection

Transactions flagged by each CoinJoin rule, by the kind the truth gives them (a Whirlpool Tx0 is
one wallet's premix transaction: flagging it costs recall, not precision).

{md(["rule", "truth kind", "transactions"], r.cj_rows)}
"""


MATRIX_POLICIES = ("conservative", "conservative_fresh", "strict", "multi_input")
MATRIX_POLICIES += ("learned", "conservative_learned", "aggressive")


def matrix_report(results: list[WorldResult], command: str) -> str:
    """Policy x profile (worst case over the worlds of each profile) and rule x profile."""
    profiles = list(dict.fromkeys(r.profile or "easy" for r in results))
    by_profile = {p: [r for r in results if (r.profile or "easy") == p] for p in profiles}
    worlds = {p: ", ".join(f"{r.scale} {r.seed}" for r in rs) for p, rs in by_profile.items()}
    policies = list(dict.fromkeys(k for r in results for k in r.figures))
    rows = []
    for name in policies:
        row = [name]
        for p in profiles:
            f = [r.figures[name] for r in by_profile[p] if name in r.figures]
            row.append(f"{min(x['pp'] for x in f):.4f}")
        for p in profiles:
            f = [r.figures[name] for r in by_profile[p] if name in r.figures]
            row.append(f"{min(x['exr'] for x in f):.4f}")
        for p in profiles:
            f = [r.figures[name] for r in by_profile[p] if name in r.figures]
            row.append(f"{max(int(x['mixed']) for x in f)}")
        for p in profiles:
            f = [r.figures[name] for r in by_profile[p] if name in r.figures]
            row.append(f"{min(x['b3r'] for x in f):.4f}")
        rows.append(row)
    rows.sort(key=lambda r: min(float(x) for x in r[1 : 1 + len(profiles)]))
    header = ["policy"]
    header += [f"pairwise precision, {p}" for p in profiles]
    header += [f"exchange pairwise recall, {p}" for p in profiles]
    header += [f"clusters with 2 exchanges, {p}" for p in profiles]
    header += [f"B³ recall, {p}" for p in profiles]
    rule_names = list(dict.fromkeys(row[0] for r in results for row in r.rule_rows))
    rule_table = []
    for name in rule_names:
        row = [name]
        for p in profiles:
            prec = [
                float(x[2])
                for r in by_profile[p]
                for x in r.rule_rows
                if x[0] == name and x[1] != "0"
            ]
            row.append(f"{min(prec):.4f}" if prec else "n/a")
        fired = [int(x[1].replace(",", "")) for r in results for x in r.rule_rows if x[0] == name]
        row.append(f"{min(fired):,}–{max(fired):,}")
        rule_table.append(row)
    rule_table.sort(key=lambda r: min(float(x) if x != "n/a" else 1.0 for x in r[1:-1]))
    per_world = [
        [
            r.profile or "easy",
            f"{r.scale} {r.seed}",
            f"{r.counts['txs']:,}",
            f"{r.figures['conservative']['pp']:.5f}" if "conservative" in r.figures else "",
            f"{r.figures['conservative']['exr']:.4f}" if "conservative" in r.figures else "",
            f"{int(r.figures['conservative']['mixed'])}" if "conservative" in r.figures else "",
            f"{r.figures['conservative_fresh']['pp']:.5f}"
            if "conservative_fresh" in r.figures
            else "",
            f"{int(r.figures['conservative_fresh']['mixed'])}"
            if "conservative_fresh" in r.figures
            else "",
        ]
        for r in results
    ]
    return f"""## Every profile, worst case first

Generated by `{command}` on {time.strftime("%Y-%m-%d")}. Worlds per profile:
{"; ".join(f"{p}: {w}" for p, w in worlds.items())}. Each figure is the worst over that
profile's worlds (lowest precision and recall, most clusters holding two exchanges); rows are
ordered by their worst pairwise precision.

{md(header, rows)}

Change rules and the policies' change decisions, one transaction at a time against the truth
(lowest precision over each profile's worlds; "fired" is the range over all worlds):

{md(["rule"] + [f"precision, {p}" for p in profiles] + ["fired"], rule_table)}

Every world, the default (conservative) beside the default before issue 11
(conservative_fresh):

{md(["profile", "world", "txs", "conservative pairwise precision", "conservative exchange recall", "conservative clusters with 2 exchanges", "conservative_fresh pairwise precision", "conservative_fresh clusters with 2 exchanges"], per_world)}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile",
        default=None,
        help="one world of this profile only (no matrix)",
    )
    parser.add_argument(
        "--profiles",
        default="easy,realistic,hard",
        help="matrix: the profiles (when --profile is not given)",
    )
    parser.add_argument(
        "--small-seeds",
        default="1,2,3",
        help="matrix: small worlds per profile, beside --scale/--seed",
    )
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--out", default="docs/clustering.md")
    args = parser.parse_args()
    policies = args.policies.split(",")
    if args.profile:
        command = (
            f"python -m bench.cluster_accuracy --scale {args.scale} --seed {args.seed} "
            f"--profile {args.profile}"
        )
        text = world_report(evaluate_world(args.scale, args.seed, args.profile, policies), command)
    else:
        results = []
        worlds = [("small", int(s)) for s in args.small_seeds.split(",") if s]
        worlds.append((args.scale, args.seed))
        detail = None
        for profile in args.profiles.split(","):
            for scale, seed in dict.fromkeys(worlds):
                results.append(evaluate_world(scale, seed, profile, policies))
                if (scale, seed) == (args.scale, args.seed) and profile == "hard":
                    detail = results[-1]
        command = (
            f"python -m bench.cluster_accuracy --scale {args.scale} --seed {args.seed} "
            f"--profiles {args.profiles} --small-seeds {args.small_seeds}"
        )
        text = (
            "# Clustering accuracy against ground truth\n\n" + HOW + matrix_report(results, command)
        )
        if detail is not None:
            text += "\n" + world_report(detail, command, level="##")
    if args.out == "-":
        print(text)
        return
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


HOW = """Scored against the simulator's truth on three profiles (`easy`, `realistic`, `hard`; see
docs/simulator.md), small seeds 1-3 and medium seed 7 each. Reproduce everything below with
`python -m bench.cluster_accuracy --scale medium --seed 7` (about 5 minutes; worlds are cached
under bench-output/), one world with `--scale small --seed N --profile P --out -`.

### What changed in issue 11, and why

The default before issue 11 (kept as `conservative_fresh` for measurement) merged a change
output whenever any two change rules agreed. On `hard` it joined two wallets: 24 false merges
on small seed 1 (3 clusters holding two exchanges), 44 clusters holding two exchanges on medium
seed 7. Traced back through the merge evidence (`cluster_merges`), 71 of the 72 false merges on
small hard seeds 1-2 and realistic seeds 1-2 had the same pair and the same shape:
`fresh_address` + `script_type` on a one-input, two-output `exchange_forward` transaction (the
72nd was the same pair on a payment). An exchange spends a customer's deposit address, pays a
buyer, and returns the change to its own hot address, which it reuses and which has another
script type than its deposit addresses. Both rules read only the addresses, and both point at
the buyer's output: it is the only fresh one (the change went to a reused address) and the only
one of the deposit's script type.

What gives those transactions away is the reused output: it pays an address that has already
spent in a batch (a transaction with three or more outputs that is not a CoinJoin), i.e. a
service's spending (hot) address. People pay a service's deposit addresses, not the addresses
it pays out from, so an output to such an address is as likely the service's own change as a
payment, and the address rules cannot tell which output is the change. On one-input
transactions where only `fresh_address` and `script_type` agree, the pick was right 0.51-0.69
of the time on hard (49 to 914 transactions per world, every error an exchange forward) and
0.89 on realistic small 1 (1.00 on easy) when the other output pays such an address, and
0.998-1.000 otherwise (hard small 1-3 and medium 7, realistic small 1, easy small 1 and medium 7).

The default `conservative` therefore still merges where two change rules agree, none points
elsewhere and the change address is new, but where another output pays an address that
already spent in a batch, one of the two votes must read the values (`round_amount`: of two
outputs exactly one is round; `optimal_change`: exactly one output is smaller than every
input). Only what precedes the transaction is used (one bool per address, kept in
`clusters/state/batch_spent.npy`: 1 B/address, 1.4 GB on mainnet's 1.4 G addresses), so
incremental clustering still equals one pass. No rule merges the output of a one-output
transaction, so send-all payments (a third of one-output transactions pay another owner on
`hard`) cannot mislead it. Requiring a value rule everywhere (`value_vote`, or `strict` with
fresh address only as a veto) is as precise on these worlds but costs investigations: customers'
payment chains are linked mostly by `fresh_address` + `script_type`, and with `value_vote` the
direct-lead recall of tests/cases/test_investigate.py (easy small 1) fell from 0.95 to 0.83.

The false merges left in the twelve worlds are eleven, none joining two exchanges: one on easy
small 2 (`fresh_address` + `round_amount`, an exchange withdrawal), four on easy medium 7 and
four on realistic medium 7 (payments, `fresh_address` with `script_type` or `round_amount`),
one on realistic small 2 and one on hard medium 7 (payments). The worst pairwise precision is
0.99998.

The learned change classifier (rule 25) trains on self-labelled transactions, but those nearly
all reveal a change output that was not fresh, mostly self-change (on the small hard worlds
only 15 to 21 of 1,935 to 2,162 labels reveal a fresh change output), while the classifier
fires only on fresh outputs. Its held-out self-labelled precision is 1.0 everywhere, while its
true precision on the shapes it fires on is 0.94 (one input, three or more outputs, Whirlpool
Tx0s among them) to 0.99, and 0.00 to 0.05 where a rule picks another output. A gate by
held-out self-labelled precision per transaction shape cannot see those errors, so
`conservative_learned` gates it by the rules instead: the classifier counts as one vote, one
value rule must pick the same output, and no rule may pick another (`learned.rule_gate`).
Gated, it merges 92 to 3,012 transactions per world, all right on `realistic` and `hard`, and
raises B³ recall a little; it is not the default because it adds no exchange-wallet recall.

Effect on investigations (`python -m bench.accuracy_matrix --profiles hard --scales medium
--seeds 7`, investigate's defaults, leads at confidence ≥ 0.5, run once with this default and
once with `conservative_fresh` in its place): on hard medium 7 the wrong leads fell from 88 to
48 (lead precision 0.909 to 0.948) with the same 884 right leads (recall 0.370); cash-out
recall went from 0.705 to 0.691 (two of 139 fewer), cash-out precision 0.980 both. On small
seeds 1-3 of hard and realistic the leads were the same under both, except one more right lead
on hard small 3 (recall 0.347 to 0.350).

### Exchange batches taken for CoinJoins (issue 11)

The generic `equal_output` CoinJoin rule (three or more equal outputs from at least as many
distinct input addresses) flagged only exchange withdrawals on the simulated worlds: batches of
tens of payees, a few of whom withdrew the same round amount. The specific rules (Whirlpool,
Wasabi 1, WabiSabi, JoinMarket) run first and catch every mix, so no CoinJoin reached it. A
flagged batch's inputs were not merged, `trace.services` did not count it as a batch, and the
exchange's wallet chains broke there (on hard medium 1, 132 eligible deposits ended at a
CoinJoin row because their funding batch was flagged).

`equal_output` now also asks for a CoinJoin's shape (`cluster.kernels.coinjoin_shaped`): the
payees are at most about two per distinct input address (each participant brings an input and
takes a mixed output and a change: BlockSci's `isCoinjoin`, (outputs + 1) / 2 participants no
more than the distinct input addresses), and either the equal outputs are at least a quarter
of the distinct input addresses (the participants are about as many as the equal outputs) or,
for a multi-denomination round (WabiSabi-like, under the `wabisabi` rule's 50 inputs), at
least half of the payees share their value with another and the payees are between half and
twice the distinct inputs (each participant's amount is split into several standard
denominations, so such a round has about as many outputs as inputs, usually more). An
exchange batch spends one or a few hot coins into many distinct values and fails the first
test. The second branch keeps flagged the batches that spend many coins into round amounts
(100 of 507 over the 24 worlds): a small multi-denomination CoinJoin missed would merge its
strangers' inputs, and that costs more than a batch not merged.

Measured and not used, lead recall at ≥ 0.5 with each variant of the second branch (hard
medium 1, hard medium 2, realistic medium 1; lead precision 0.991-0.999 with each):

| multi-denomination branch | batches still flagged | lead recall |
|---|---|---|
| none (single-denomination test alone) | 6 on hard medium 1 | 0.773, 0.811, 0.776 |
| repeated ≥ half the payees, ≥ 1 distinct input per 2 payees | 47, 53, 15 | 0.707, 0.742, 0.577 |
| the same, and payees ≥ half the distinct inputs (**used**) | 37, 42, 14 | 0.746, 0.752, 0.577 |

Dropping the branch gains most, but a WabiSabi round of 12-49 inputs (the `wabisabi` rule
needs 50) whose largest denomination group is under a quarter of its inputs would then be
merged as one wallet; no simulated world has such rounds, so that risk is not measured here,
and precision comes first.

Flags by the truth's kind of transaction, every world of the accuracy matrix (the kernel alone:
`chainsleuth.cluster.ranges.analyze_range` over each store, before and after):

| world | `equal_output` on exchange withdrawals, before → after | on CoinJoins | other rules' flags |
|---|---|---|---|
| hard medium 1 | 214 → 37 | 0 → 0 | identical |
| hard medium 2 | 195 → 42 | 0 → 0 | identical |
| realistic medium 1 | 62 → 14 | 0 → 0 | identical |
| hard small 1-7 | 1, 4, 5, 3, 7, 6, 3 → 0, 1, 1, 0, 0, 4, 0 | 0 → 0 | identical |
| realistic small 1-7 | 1, 1, 0, 3, 0, 1, 1 → 1, 0, 0, 0, 0, 0, 0 | 0 → 0 | identical |
| easy small 1-7 | 0 → 0 | 0 → 0 | identical |

Every Whirlpool, Wasabi and JoinMarket round also passes the new shape test (checked on hard
medium 1: 6,290, 226 and 778 rounds), so none would be lost if a specific rule missed one.

Clustering precision, conservative policy, the accuracy matrix's worlds (pairwise over every
address the truth knows, as above), before → after: pairwise precision unchanged to four
decimals on all 24 worlds (1.0000 on 22, 0.9997 hard small 4, 0.9996 easy small 5, both as
before); exchange addresses fall into fewer clusters: 20,268 → 18,089 (hard medium 1),
19,481 → 16,916 (hard medium 2), 8,507 → 8,143 (realistic medium 1), 0 to 26 fewer on the hard
and realistic small worlds, none on easy. Investigations: lead recall on hard medium 1 0.375 →
0.746 and hard medium 2 0.452 → 0.752, lead precision 0.986 → 0.991 on both
(docs/accuracy-log.md, "Same-style exchanges and batches taken for CoinJoins").

```
python -m bench.accuracy_matrix --profiles hard realistic easy --scales small --seeds 1 2 3 4 5 6 7
python -m bench.accuracy_matrix --profiles hard --scales medium --seeds 1 2
python -m bench.accuracy_matrix --profiles realistic --scales medium --seeds 1
```

(clusters rebuilt from scratch: delete each world's `store/clusters` first, an unchanged policy
resumes.) The generated tables below (medium seed 7) are from after the next section's change
(`make bench`, 2026-12-07 13:53 UTC).

### Exchange batches told from CoinJoins by script types (issue 11, branch issue11-batchjoin)

After the shape test above, the generic `equal_output` rule still flagged only exchange
withdrawals, and no CoinJoin. Every transaction a CoinJoin rule flags on the 30 cached worlds
of the accuracy matrix (hard and realistic small 1-10, easy small 1-7, hard medium 1-2,
realistic medium 1), by the truth's kind, before (main at 061b91a) → after (this branch):

| rule | truth kind | before | after |
|---|---|---|---|
| whirlpool | whirlpool_mix | 34,415 | 34,415 |
| wasabi1 | wasabi_mix | 1,857 | 1,857 |
| joinmarket | joinmarket_mix | 4,456 | 4,456 |
| joinmarket | whirlpool_tx0 | 5,704 | 5,704 |
| joinmarket | exchange_withdrawal | 1 | 1 |
| equal_output | exchange_withdrawal | 131 | 5 |
| equal_output | any CoinJoin | 0 | 0 |

Held-out seeds (hard and realistic small 11-14, simulated for this check only): `equal_output`
7 → 1, all exchange withdrawals; every mix flagged by its rule as before.

**What the 131 flagged batches look like on chain, beside the rounds.** Measured by
`bench.coinjoin_flags` (the truth only names the kinds):

- Counts do not separate them. 5-76 inputs (median 20) into 9-52 payees (median 23): one to
  two payees per input, the range of a CoinJoin. Every input address is distinct (130 of 131)
  and comes from its own funding transaction (131 of 131): the exchange's fresh hot coins,
  the change of its forwards (2,670 of the 3,114 inputs), of its earlier batches (415) and
  cold moves (29). Those coins were never spent together before: even in the final
  clustering each input is its own cluster in 130 of 131. So "the inputs are one cluster's
  history" shows nothing for a hot wallet that never reuses an address.
- Values do not separate them. The shared value (3-7 payees) is a multiple of 0.001 BTC in
  20 of 131 and of 0.0005 BTC in 51: most are one USD price at one block (the same
  withdrawal in dollars), or a round amount less a withdrawal fee (0.2495, 0.0495,
  0.0095 BTC). And 0.01, 0.02, 0.05, 0.1 BTC are WabiSabi standard denominations too.
  Input values spread as a round's do (coefficient of variation median 0.28).
- Script types do. The inputs are one type in all 131 (P2SH 63, P2WPKH 62, P2PKH 6), the hot
  wallet's; the payees include P2PKH and P2SH addresses in all 131 (and P2WPKH, P2TR or P2WSH
  in most): customers withdraw to whatever address they have. In 126 of them the outputs that
  share a value are of two or three types.

A CoinJoin's equal outputs must look alike, or the address type tells their owners apart:
Whirlpool and Wasabi 1.x rounds are P2WPKH only, a JoinMarket round is one type (offers are
typed: native segwit or wrapped), WabiSabi (Wasabi 2) registers P2WPKH and P2TR only, for
inputs and outputs. So `coinjoin_shaped` now also reads script types (bit masks the kernel
gathers only for the rare transactions that reach the generic rule):

- the outputs of the most common value are one script type, or P2WPKH and P2TR only;
- the multi-denomination branch (the WabiSabi-like round of 12-49 inputs that the counts
  alone kept flagged) asks for WabiSabi's types: every input P2WPKH or P2TR, and every output
  whose value another shares P2WPKH or P2TR.

Of the 131: 43 multi-denomination shapes spend P2PKH or P2SH coins, 43 more pay shared
values to P2PKH, P2SH or P2WSH customers, and 40 of the 45 single-denomination shapes pay
their equal amount to two or three types. The 5 left (and 1 held-out) pay 3 customers of one
type the same amount: nothing on chain tells them from a small single-type round.

Real CoinJoins in the shared mainnet blocks (`bench.real_coinjoins`, which lays each bare
block out as the kernel's arrays, input types and addresses read from scriptSigs and
witnesses or from the Floresta prevouts): block 702,861 (2021-09) holds 7 Whirlpool mixes and
a Wasabi 1.x round (100 inputs, 60 outputs of 0.10944832 BTC); each is flagged by its rule and
also passes the new shape test with its types (`tests/cluster/test_real_coinjoins.py`). The
CoinJoin flags of every shared block are identical before and after (7 whirlpool, 1 wasabi1,
10 joinmarket, 0 equal_output). The shared blocks hold no WabiSabi round (the taproot-era
block 866,342 has no transaction with 12 or more distinct input addresses whose outputs share
values), so the WabiSabi
case rests on the protocol's types and on `tests/cluster/test_cluster_rules.py`'s
WabiSabi-like round (20 P2WPKH and P2TR inputs into 24 outputs of six standard
denominations paid to both types), which stays flagged. Where a coordinator lets a client pay
another type of address from a round, that payment is an amount of its own, not a shared
denomination, so the test reads past it; a round whose shared denominations go to legacy or
P2SH addresses would be missed (none is known to us).

The two Wasabi rules now ask for the coins Wasabi takes as well: `wasabi1` and `wabisabi` flag
a transaction only when every input is P2WPKH or P2TR (Wasabi 1.x registered P2WPKH coins
only, a WabiSabi coordinator P2WPKH and P2TR). On realistic large 1 they had flagged 64
exchange batches (59 `wabisabi`, 5 `wasabi1`), 33 of them spending P2PKH or P2SH hot coins;
one each on hard medium 3, 4, 5 and 7. Only inputs are read there: a large round's outputs
may include a payment to another type whose amount happens to be a standard denomination,
and a large round taken for a batch would merge hundreds of strangers. (Since branch
issue11-cjwins the outputs are read too, with that margin: at most a quarter of the outputs
that share a value may be of another type. P2WPKH hot wallets' batches pay 55-90 % of theirs
to P2PKH, P2SH and P2WSH customers, Wasabi rounds 0 %: docs/accuracy-log.md, "Exchange
batches taken for Wasabi rounds".)

Every CoinJoin flag by the truth's kind on 47 worlds (hard and realistic small 1-14, easy
small 1-7, hard medium 1-7, realistic medium 1, 2, 4, 7, realistic large 1), main → this
branch, both changes:

| rule | truth kind | before | after |
|---|---|---|---|
| whirlpool | whirlpool_mix | 153,706 | 153,706 |
| wasabi1 | wasabi_mix | 5,021 | 5,021 |
| joinmarket | joinmarket_mix | 18,351 | 18,351 |
| joinmarket | whirlpool_tx0 | 27,851 | 27,851 |
| joinmarket | payment | 8 | 8 |
| joinmarket | exchange_withdrawal | 1 | 1 |
| wabisabi | exchange_withdrawal | 63 | 30 |
| wasabi1 | exchange_withdrawal | 5 | 1 |
| equal_output | exchange_withdrawal | 448 | 21 |

Clustering, conservative policy, re-clustered from scratch on the same cached worlds
(`bench.cluster_scores`: pairwise over every address the truth knows; owners are wallets).
Worst per profile, before → after:

| profile (worlds) | pairwise precision | pairwise recall | exchange clusters | clusters with 2 exchanges |
|---|---|---|---|---|
| hard small 1-10 | 0.999639 → 0.999639 | 0.009438 → 0.009441 | 25,866 → 25,753 (sum) | 0 → 0 |
| realistic small 1-10 | 0.998223 → 0.998223 | 0.014166 → 0.014166 | 14,155 → 14,146 (sum) | 1 → 1 (realistic small 6, as before) |
| easy small 1-7 | 0.999104 → 0.999104 | 0.017472 → 0.017472 | unchanged | 0 → 0 |
| hard medium 1 | 0.999990 → 0.999990 | 0.008623 → 0.008651 | 19,112 → 17,982 | 0 → 0 |
| hard medium 2 | 0.999995 → 0.999995 | 0.008424 → 0.008475 | 18,500 → 17,048 | 0 → 0 |
| realistic medium 1 | 0.999991 → 0.999991 | 0.012556 → 0.012563 | 8,096 → 7,863 | 0 → 0 |
| held-out hard small 11-14 | 0.999850 → 0.999850 | 0.009753 → 0.009753 | 10,935 → 10,887 (sum) | 0 → 0 |
| held-out realistic small 11-14 | 0.999832 → 0.999832 | 0.012792 → 0.012792 | unchanged | 0 → 0 |

Pairwise precision is unchanged to six decimals on all 38 worlds (the merged batches are one
owner's); the per-world figures are in docs/accuracy-log.md ("Exchange batches told from
CoinJoins by script types"). A saved clustering made by the earlier rules is rebuilt, not
extended (`rules.RULES_VERSION`, in the clusters manifest): its flags would be stale.

```
python -m bench.coinjoin_flags bench-output/accuracy/<world> ... --csv flags.csv
python -m bench.real_coinjoins --all
python -m bench.accuracy_matrix --profiles hard realistic --scales small --seeds 1 2 3 4 5 6 7 8 9 10
python -m bench.accuracy_matrix --profiles hard --scales medium --seeds 1 2
python -m bench.accuracy_matrix --profiles realistic --scales medium --seeds 1
python -m bench.accuracy_matrix --profiles easy --scales small --seeds 1 2 3 4 5 6 7
python -m bench.cluster_scores bench-output/accuracy/<world> ...
```

Hard medium 3-7 and realistic medium 2, 4, 7 (measured after the Wasabi input test, same
way): pairwise precision unchanged to six decimals on each (worst 0.999972, realistic medium
7), `equal_output` flags 49, 51, 52, 57, 43, 3, 5, 11 → 0, 5, 5, 3, 2, 0, 0, 0, exchange
clusters 1-7 % fewer. Realistic large 1: 0.999998 before and after, `equal_output` 39 → 0,
exchange clusters 50,234 → 46,311. Per world in docs/investigations.md.

### Exchange-wallet recall: what limits it

Every precise policy links 0.3-1.5 % of the exchange-address pairs. Exchange wallets are mostly
deposit addresses swept into a hot address by one-output transactions, which no precise rule
may link (a third of one-output transactions on `hard` pay another owner), and hot addresses
linked only where a withdrawal spends several together. The one signal measured that reaches
exchange withdrawals is the classifier's pick of a batch's output spent within 6 blocks by
another batch with the same wallet fingerprint (the hot wallet's next withdrawal): on small
hard seeds 1-2 and realistic seed 1 it was right 0.965-0.990 of the time (errors: Whirlpool
Tx0s, and withdrawals to customers who are exchanges), below the 0.99 bar with cross-exchange
errors among them, so no policy uses it.

"""


if __name__ == "__main__":
    main()
