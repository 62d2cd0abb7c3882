"""`make bench`: ingest throughput against a hashing floor and blockchain-parser, store size,
array traversal, an extrapolation to mainnet, the later stages (simulator, clustering against
scipy and networkx, TagPack import) and investigations of 100k and 1M seeds against networkx
(`bench.investigate_bench`), how each stage scales from 1 core to 2 (`bench.cores`), API
latency (`bench.api_bench`) and the web explorer's 1,000-node expansion (`bench.web_bench`);
writes docs/benchmarks.md (hand-written notes: docs/benchmarks-item6-rounds.md).

Why it exists: the ingest's targets (issue "benchmarks") are relative, so the baselines are
measured in the same run on the same bytes: (a) the floor, hashlib double-SHA256 of every
transaction on one core, and (b) blockchain-parser from PyPI decoding the same blk files. Each
measurement runs in its own process (`bench.measure`) for a clean peak RSS.

Data: the shared nbitcoin blk files (600 real 2009 blocks), and two regtest chains that
`bench.synth_chain` builds by re-linking the 17 real 2010-2024 blocks (one pass, and as many
passes as reach a million transactions), cached under bench-output/.

    python -m bench.run            # full run, 45-60 minutes on the shared 2-core box
    python -m bench.run --quick    # 200k-tx chain, one repetition, bench-output/benchmarks-quick.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import accuracy_matrix, api_bench, cores, investigate_bench, synth_chain, web_bench
from bench.common import (
    ROOT,
    log,
    measure,
    met,
    mib,
    scaling,
    secs,
    simulated_world,
    table,
)
from bench.ingest_report import Dataset, render

NBITCOIN = ROOT.parent / "shared" / "data" / "mainnet-blocks" / "blk" / "nbitcoin"
MAINNET_MAGIC = "f9beb4d9"
REGTEST_MAGIC = "fabfb5da"


def repeated(n: int, kind: str, **args: Any) -> dict[str, Any]:
    """The median run (by seconds) of n; peak RSS is the largest of all runs."""
    runs = [measure(kind, **args) for _ in range(n)]
    runs.sort(key=lambda r: r["seconds"])
    best = dict(runs[len(runs) // 2])
    best["runs"] = [r["seconds"] for r in runs]
    best["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
    return best


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    versions = {}
    for mod in ("numpy", "numba", "pyarrow"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "-"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_bytes": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
        "commit": commit or "unknown",
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def run(args: argparse.Namespace) -> str:
    started = time.perf_counter()
    work = Path(args.work).resolve()
    info = machine()
    log(f"machine: {info['nproc']} CPUs, {info['cpu']}, load {' '.join(info['loadavg'])}")

    chains = work / "chains"
    log("real-blocks chain (one pass over the 17 real blocks)")
    real, real_cached = synth_chain.cached_chain(chains, "real", passes=1, log=log)
    log(f"large chain (>= {args.large_txs:,} txs)")
    large, large_cached = synth_chain.cached_chain(chains, "large", min_txs=args.large_txs, log=log)
    for c, cached in ((real, real_cached), (large, large_cached)):
        log(
            f"  {c.blocks_dir}: {c.n_txs:,} txs, {mib(c.blk_bytes)}, "
            + ("cached" if cached else f"built in {c.seconds:.1f} s")
        )

    datasets = [
        Dataset(
            "nbitcoin",
            "blk/nbitcoin (600 real blocks, 2009)",
            NBITCOIN,
            MAINNET_MAGIC,
            float("inf"),
            "real mainnet blk files, heights 0-599; almost every tx is a coinbase",
        ),
        Dataset(
            "real",
            "real blocks, re-linked (1 pass)",
            Path(real.blocks_dir),
            REGTEST_MAGIC,
            float("inf"),
            "the 17 real 2010-2024 blocks once, re-linked onto a regtest chain",
        ),
        Dataset(
            "large",
            f"re-linked chain, {large.passes} passes",
            Path(large.blocks_dir),
            REGTEST_MAGIC,
            args.baseline_budget,
            f"the 17 real blocks repeated {large.passes} times and re-linked",
        ),
    ]
    scale = args.world_scale or ("medium" if args.quick else "large")
    log(f"simulated world ({scale}, seed 1)")
    world, world_seconds = simulated_world(work / "worlds", scale)
    datasets.append(
        Dataset(
            "world",
            f"simulated world ({scale})",
            world / "blocks",
            REGTEST_MAGIC,
            args.baseline_budget,
            f"`chainsleuth simulate --scale {scale} --seed 1`: the Welcome-to-Video economy",
        )
    )
    stores = work / "stores"
    results: dict[str, dict[str, Any]] = {}
    for d in datasets:
        r: dict[str, Any] = {}
        log(f"{d.key}: chainsleuth ingest x{args.repeats}")
        r["ingest"] = repeated(
            args.repeats,
            "ingest",
            blocks_dir=str(d.blocks_dir),
            data_dir=str(stores / d.key),
            warmup_dir=str(stores / f"{d.key}-warmup"),
        )
        log(
            f"  {r['ingest']['n_txs'] / r['ingest']['seconds']:,.0f} tx/s  runs {r['ingest']['runs']}"
        )
        log(f"{d.key}: floor (double-SHA256 of every tx) x{args.repeats}")
        r["floor"] = repeated(args.repeats, "floor", blocks_dir=str(d.blocks_dir))
        log(f"  {r['floor']['n_txs'] / r['floor']['seconds']:,.0f} tx/s")
        budget = d.baseline_budget if d.baseline_budget != float("inf") else 1e9
        log(f"{d.key}: blockchain-parser (budget {budget:.0f} s)")
        r["baseline"] = measure(
            "baseline", blocks_dir=str(d.blocks_dir), magic_hex=d.magic, budget_s=budget
        )
        log(f"  {r['baseline']['n_txs'] / r['baseline']['seconds']:,.0f} tx/s")
        results[d.key] = r
    log("large: cold read of the blk files")
    cold = measure("cold_read", blocks_dir=str(large.blocks_dir))
    log("large: traversal of the memory-mapped arrays")
    trav = measure("traverse", data_dir=str(stores / "large"))
    log("world: clustering against scipy and networkx")
    clustering = measure("cluster", data_dir=str(stores / "world"))
    log("medium world: clustering accuracy against ground truth (docs/clustering.md)")
    accuracy_cmd = [sys.executable, "-m", "bench.cluster_accuracy", "--scale", "medium"]
    accuracy_cmd += ["--seed", "7", "--out", str(ROOT / "docs/clustering.md")]
    subprocess.run(accuracy_cmd, cwd=ROOT, check=True, capture_output=True)
    tags = None
    if (ROOT / "bench" / "tags_bench.py").exists() and (ROOT / "chainsleuth" / "tags").exists():
        log("tags: TagPack import and lookup latency")
        tags = measure("tags")
    log("api: p50/p99 of the main lookups, uvicorn on loopback, 8 concurrent clients")
    api = api_bench.run(work, clients=8, rounds=10 if args.quick else 25)
    log("web: a 1,000-node expansion rendered in headless Chromium")
    web = web_bench.run(1000, 3 if args.quick else 7)
    investigations = None
    # 1M seeds need the large world's addresses (bench.investigate_bench._write_seeds)
    if not args.quick and not args.skip_investigate and scale == "large":
        log("investigations: 100k and 1M seeds on the large world vs networkx")
        investigations = investigate_bench.run(work, world, measure, log)
    scaling_result = None
    if args.scaling_pairs > 0 and len(os.sched_getaffinity(0)) >= 2:
        log(f"scaling by stage: 1 core against 2, {args.scaling_pairs} pairs each")
        case = (
            {"store": investigations["store"], "seeds": investigations["seed_files"]["1M"]}
            if investigations is not None
            else None
        )
        if case is None:
            # a smaller world has fewer than 1M addresses to seed with: all it has
            prep = investigate_bench.prepare(work, world, log, strict=scale == "large")
            # ... and its trace takes a fraction of a second: repeated within the timed window
            case = {"store": prep["store"], "seeds": prep["seeds_1m"], "passes": 10}
        stages = {
            "ingest": {
                "blocks_dir": str(large.blocks_dir),
                "data_dir": str(stores / "scaling-ingest"),
            },
            # the re-linked chain: its 1.8 M addresses and 1 M txs give the threads pieces
            "cluster": {"store": str(stores / "large"), "passes": 20},
            "trace": case,
        }
        scaling_result = {
            "pairs": args.scaling_pairs,
            "stages": cores.measure_stages(stages, args.scaling_pairs, log),
        }
    log("investigations: accuracy over profiles x seeds x scales (docs/investigations.md)")
    matrix_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", "easy",
                  "realistic", "hard", "--scales", "small", "--seeds", "1", "2", "3"]  # fmt: skip
    if not args.quick:
        matrix_cmd += ["4", "5", "6"]
    subprocess.run(matrix_cmd, cwd=ROOT, check=True, capture_output=True)
    # the report shows the worlds this run measured, not whatever else the cache holds
    profiles = ("easy", "realistic", "hard")
    matrix_worlds = {(p, "small", s) for p in profiles for s in range(1, 4 if args.quick else 7)}
    if not args.quick:
        matrix_worlds |= {(p, "medium", 7) for p in profiles}
        medium_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", "easy",
                      "realistic", "hard", "--scales", "medium", "--seeds", "7"]  # fmt: skip
        subprocess.run(medium_cmd, cwd=ROOT, check=True, capture_output=True)
    if args.accuracy_large:
        # one world per process, so its peak RSS is its own (about 9 minutes on 2 cores)
        for profile in args.accuracy_large:
            large_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", profile,
                         "--scales", "large", "--seeds", "1"]  # fmt: skip
            subprocess.run(large_cmd, cwd=ROOT, check=True, capture_output=True)
    # large worlds kept from an earlier run are shown too, with their commit and date
    large_worlds = {(r["profile"], r["scale"], r["seed"]) for r in accuracy_matrix.load_results()
                    if r["scale"] == "large"}  # fmt: skip
    matrix_results = accuracy_matrix.load_results(matrix_worlds | large_worlds)
    wall = time.perf_counter() - started
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report = render(args, info, datasets, results, real, large, cold, trav, wall)
    report += render_stages(world, world_seconds, scale, results, clustering, tags)
    report += api_bench.render(api)
    report += web_bench.render(web)
    if investigations is not None:
        report += investigate_bench.render(investigations)
    if scaling_result is not None:
        report += cores.render(scaling_result)
    report += (
        "\n## Investigation accuracy over profiles, seeds and scales (issue 11)\n\n"
        "Measured in this run by `python -m bench.accuracy_matrix` (scored by "
        "`chainsleuth.cases.evaluate`; docs/investigations.md explains the columns; a large "
        "world may be kept from an earlier run, see its commit and date below), worst first:\n\n"
        + accuracy_matrix.render(matrix_results)
        + "\n"
    )
    if large_worlds:
        report += (
            "\nWhat the large worlds cost (`--accuracy-large`, or kept from an earlier run in "
            "bench-output/accuracy/: see the commit and date):\n\n"
            + accuracy_matrix.render_costs(matrix_results) + "\n"
        )  # fmt: skip
    raw = {
        "machine": info,
        "chains": {"real": real.__dict__, "large": large.__dict__},
        "results": results,
        "cold_read": cold,
        "traverse": trav,
        "world_generation_seconds": world_seconds,
        "clustering": clustering,
        "tags": tags,
        "api": api,
        "investigations": investigations,
        "scaling": scaling_result,
        "wall_seconds": wall,
    }
    (work / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(raw, indent=1) + "\n"
    )
    return report


def render_stages(
    world: Path,
    world_seconds: float,
    scale: str,
    results: dict[str, dict[str, Any]],
    clustering: dict[str, Any],
    tags: dict[str, Any] | None,
) -> str:
    """Report sections for the simulator, clustering and attribution."""
    meta = json.loads((world / "world.json").read_text())
    ingest = results["world"]["ingest"]
    c = clustering
    out = [
        "",
        "## Simulator",
        "",
        f"`chainsleuth simulate --scale {scale} --seed 1` generated {meta['n_txs']:,} "
        f"transactions in {meta['n_blocks']:,} blocks in {world_seconds:.0f} s "
        f"({meta['n_txs'] / max(world_seconds, 1e-9):,.0f} tx/s, one core); ingest of it: "
        f"{ingest['n_txs'] / ingest['seconds']:,.0f} tx/s (table above, row 'simulated world').",
        "",
        "## Clustering (multi-input) against scipy and networkx",
        "",
        f"On the ingested simulated world: {c['txs']:,} transactions, {c['addresses']:,} "
        f"addresses, {c['edges']:,} multi-input edges (CoinJoins left out). Like for like, "
        "chainsleuth's union-find (`ranges.union_edges_parallel` + `flatten_parallel`) and "
        "scipy's connected_components get the same ready-made edge list. End to end, "
        "chainsleuth's clusterer works from the store's arrays (CoinJoin analysis, merges in "
        "chain order with their evidence rows, flatten) against scipy with the edge list "
        "built from the same arrays (numpy, CoinJoin flags handed over); networkx gets the "
        "list ready-made. Same process, after a warm-up; chainsleuth and scipy alternate, "
        f"medians of {len(c['runs']['scipy'])} runs; every chainsleuth run's cluster ids are "
        "asserted equal to scipy's partition. Load average during the run: "
        f"{', '.join(f'{x:.1f}' for x in c.get('load_average') or [])}.",
        "",
        table(
            ["", "wall", "CPU s", "threads", "clusters", "ratio (baseline / ours, wall)"],
            [
                *[
                    [
                        "chainsleuth union-find, same edge list",
                        secs(c["union_find_seconds_by_threads"][n]),
                        f"{c['cpu_seconds'][f'uf_{n}']:.3f}",
                        str(n),
                        f"{c['clusters_ours']:,}",
                        f"{c['scipy_seconds'] / c['union_find_seconds_by_threads'][n]:.2f}x",
                    ]
                    for n in c["union_find_seconds_by_threads"]
                ],
                [
                    "scipy connected_components, same edge list",
                    secs(c["scipy_seconds"]),
                    f"{c['cpu_seconds']['scipy']:.3f}",
                    "1",
                    f"{c['clusters_scipy']:,}",
                    "1",
                ],
                *[
                    [
                        "chainsleuth clusterer, end to end from the arrays",
                        secs(sec),
                        f"{c['cpu_seconds'][f'ours_{n}']:.3f}",
                        str(n),
                        f"{c['clusters_ours']:,}",
                        f"{c['scipy_with_edges_seconds'] / sec:.2f}x",
                    ]
                    for n, sec in c["ours_seconds_by_threads"].items()
                ],
                [
                    "scipy, edge list built from the arrays",
                    secs(c["scipy_with_edges_seconds"]),
                    f"{c['cpu_seconds']['scipy_edges']:.3f}",
                    "1",
                    f"{c['clusters_scipy']:,}",
                    "1",
                ],
                [
                    f"networkx (first {c['networkx_edges']:,} edges, scaled)",
                    secs(c["networkx_seconds"]),
                    "",
                    "1",
                    f"{c['clusters_networkx']:,}",
                    f"{c['speedup_vs_networkx']:.1f}x (vs end to end)",
                ],
            ],
        ),
        "",
        f"- Same partition as scipy: {c['same_partition_as_scipy']}. Target 'at least as fast "
        f"as scipy on the same edge list': {met(c['union_find_speedup_vs_scipy'] >= 1.0)} "
        f"({c['union_find_speedup_vs_scipy']:.2f}x at {c['threads']} threads); end to end "
        f"{c['speedup_vs_scipy_with_edges']:.2f}x.",
        "- Scaling from 1 to "
        f"{c['threads']} threads (wall, 1 thread / {c['threads']}): union-find "
        + scaling(c["union_find_seconds_by_threads"])
        + ", end to end "
        + scaling(c["ours_seconds_by_threads"])
        + " (threads in one process at the box's load; the merges with evidence are "
        "sequential: docs/design/clustering.md). Pinned to 1 and 2 cores, with the cores "
        "actually available: 'Scaling by stage' below.",
        f"- Incremental update of the last {c['incremental_txs']:,} transactions (one big "
        f"block) under the default policy: {c['incremental_ms']:.1f} ms (union-find update; "
        f"publishing the cluster files is O(addresses), see docs/design/clustering.md). "
        f"Target < 50 ms: {met(c['incremental_ms'] < 50)}.",
        f"- Memory: {c['state_bytes_per_address']:.0f} bytes per address of union-find state "
        f"(parent, size, attribution); peak RSS of the measurement {c['peak_rss_mb']:,.0f} MiB. "
        "The union-find on an edge list holds a parent per address (4 B) and writes a cluster "
        "id per address (8 B, as scipy's labels); the clusterer's evidence rows take 18 B per "
        "union while a range is clustered (u4 addresses, i8 tx, u1 rule and votes).",
        f"- Mainnet extrapolation: GraphSense counted 786,122,678 addresses on 2021-02-19 "
        f"(GraphSense paper); at {c['state_bytes_per_address']:.0f} B/address that is "
        f"{786e6 * c['state_bytes_per_address'] / 2**30:.1f} GiB, and "
        f"{1.5e9 * c['state_bytes_per_address'] / 2**30:.1f} GiB for an assumed 1.5 G today; "
        f"clustering time at our rate for 1.1 G txs: "
        f"{1.1e9 / c['ours_tx_per_s'] / 60:.0f} min.",
        "- Accuracy against ground truth: docs/clustering.md.",
    ]
    if tags:
        t = tags
        lookups = [
            [name, f"{t[key]['p50_ms']:.3f} ms", f"{t[key]['p99_ms']:.3f} ms", f"{t[key]['n']:,}"]
            for name, key in (
                ("address, open DuckDB lookup", "lookup_address_warm_duckdb"),
                ("cluster, open DuckDB lookup", "lookup_cluster_warm_duckdb"),
                ("address, in-memory lookup", "lookup_address_warm_memory"),
                ("cluster, in-memory lookup", "lookup_cluster_warm_memory"),
                ("address, cold (open + query, as the CLI)", "lookup_address_cold"),
                ("cluster, cold (open + query, as the CLI)", "lookup_cluster_cold"),
            )
        ]
        out += [
            "",
            "## Attribution (TagPacks)",
            "",
            f"Importing the shared GraphSense packs ({t['files']} files, "
            f"{t['bytes'] / 1e6:.1f} MB): {t['tags_imported']:,} tags imported, "
            f"{t['tags_skipped_non_btc']:,} skipped (not Bitcoin), {t['tags_invalid']:,} invalid, "
            f"{t['actors']:,} actors, in {t['import_seconds']:.1f} s "
            f"({t['import_tags_per_s']:,.0f} tags/s); re-import (nothing changes) "
            f"{t['reimport_seconds']:.1f} s. Baseline, same run: loading the same YAML with "
            f"PyYAML's C loader alone takes {t['baseline_pyyaml_c_seconds']:.1f} s, so the whole "
            f"import takes {t['import_vs_baseline']:.2f}x the baseline's time. Cluster "
            f"attribution over all tagged addresses: {t['attribution_seconds']:.2f} s.",
            "",
            table(["lookup", "p50", "p99", "lookups"], lookups),
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200k-tx chain, one run each")
    p.add_argument("--work", default=str(ROOT / "bench-output"), help="chains, stores, results")
    p.add_argument("--output", help="report path (default docs/benchmarks.md)")
    p.add_argument("--large-txs", type=int, help="transactions in the large chain")
    p.add_argument("--repeats", type=int, help="runs of each timed measurement (median)")
    p.add_argument("--baseline-budget", type=float, help="seconds of blockchain-parser")
    p.add_argument(
        "--skip-investigate",
        action="store_true",
        help="leave out the 100k/1M-seed investigations (always left out with --quick)",
    )
    p.add_argument(
        "--world-scale",
        choices=["medium", "large"],
        help="the simulated world's scale (default large, medium with --quick); the "
        "100k/1M-seed investigations need large",
    )
    p.add_argument(
        "--scaling-pairs",
        type=int,
        help="pairs of 1-core and 2-core runs per stage for 'Scaling by stage' (0: left out; "
        "default 2, 1 with --quick)",
    )
    p.add_argument(
        "--accuracy-large",
        nargs="*",
        choices=["easy", "realistic", "hard"],
        default=[],
        help="also score the large world (seed 1) of these profiles (about 9 min each)",
    )
    args = p.parse_args(argv)
    if args.large_txs is None:
        args.large_txs = 200_000 if args.quick else 1_000_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.scaling_pairs is None:
        args.scaling_pairs = 1 if args.quick else 2
    if args.baseline_budget is None:
        args.baseline_budget = 20.0 if args.quick else 60.0
    if args.output is None:
        args.output = str(
            Path(args.work) / "benchmarks-quick.md" if args.quick else ROOT / "docs/benchmarks.md"
        )
    args.command_line = shlex.join(argv if argv is not None else sys.argv[1:])
    report = run(args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report + "\n")
    print(report)
    log(
        f"wrote {args.output}; command: {shlex.join([sys.executable, '-m', 'bench.run'] + (argv or sys.argv[1:]))}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
