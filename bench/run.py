"""`make bench`: ingest throughput against a hashing floor and blockchain-parser, store size,
array traversal, an extrapolation to mainnet, the later stages (simulator, clustering against
scipy and networkx, TagPack import) and investigations of 100k and 1M seeds against networkx
(`bench.investigate_bench`), API latency (`bench.api_bench`) and the web explorer's 1,000-node
expansion (`bench.web_bench`); writes docs/benchmarks.md.

Why it exists: the ingest's targets (issue "benchmarks") are relative, so the baselines are
measured in the same run on the same bytes: (a) the floor, hashlib double-SHA256 of every
transaction on one core, and (b) blockchain-parser from PyPI decoding the same blk files. Each
measurement runs in its own process (`bench.measure`) for a clean peak RSS.

Data: the shared nbitcoin blk files (600 real 2009 blocks), and two regtest chains that
`bench.synth_chain` builds by re-linking the 17 real 2010-2024 blocks (one pass, and as many
passes as reach a million transactions), cached under bench-output/.

    python -m bench.run            # full run, about 3 minutes on 2 cores
    python -m bench.run --quick    # 200k-tx chain, one repetition, bench-output/benchmarks-quick.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import accuracy_matrix, api_bench, investigate_bench, store_size, synth_chain, web_bench
from bench.common import (
    ROOT,
    duration,
    log,
    measure,
    met,
    mib,
    secs,
    si,
    simulated_world,
    table,
)

NBITCOIN = ROOT.parent / "shared" / "data" / "mainnet-blocks" / "blk" / "nbitcoin"
MAINNET_MAGIC = "f9beb4d9"
REGTEST_MAGIC = "fabfb5da"

# Targets from the issue.
TARGET_VS_BASELINE = 30.0  # chainsleuth tx/s >= 30x blockchain-parser tx/s
TARGET_VS_FLOOR = 10.0  # chainsleuth seconds <= 10x the single-core hashing floor

# Published figures and the assumptions used to put them in our units (see the report).
MAINNET_TXS = 1.1e9  # full chain, 2025 (the figure docs/design/store.md budgets for)
MAINNET_BLK_BYTES = 650e9  # blk*.dat bytes of the full chain
BLOCKSCI_SECONDS = 1.0  # "every transaction input and output" on r5.4xlarge
BLOCKSCI_VCPUS = 16
BLOCKSCI_TXS = 550e6  # txs on the chain in mid-2020, when it was "currently 280 GB"
BLOCKSCI_IO_PER_TX = 5.0  # ~2.4 inputs + ~2.6 outputs per tx
BBP_BLOCKS = 850_000  # bitcoin-block-parser 0.1.0: parse() 6 min, 32 threads
BBP_SECONDS = 6 * 60
BBP_IO_SECONDS = 47 * 60  # parse_io(): with input amounts and output spent-status
BBP_THREADS = 32
BBP_TXS = 1.03e9  # txs up to height 850,000 (the 1,000,000,000th was in block 842,241)


def repeated(n: int, kind: str, **args: Any) -> dict[str, Any]:
    """The median run (by seconds) of n; peak RSS is the largest of all runs."""
    runs = [measure(kind, **args) for _ in range(n)]
    runs.sort(key=lambda r: r["seconds"])
    best = dict(runs[len(runs) // 2])
    best["runs"] = [r["seconds"] for r in runs]
    best["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs)
    return best


@dataclass
class Dataset:
    key: str
    title: str
    blocks_dir: Path
    magic: str
    baseline_budget: float  # seconds of blockchain-parser before it stops (inf: all)
    note: str


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


# ---------------------------------------------------------------------------------------------
# formatting


def _spread(runs: list[float]) -> str:
    """' (a-b)': the fastest and slowest of several runs, when there were several."""
    return f" ({secs(min(runs))}-{secs(max(runs))})" if len(runs) > 1 else ""


# ---------------------------------------------------------------------------------------------


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
    scale = "medium" if args.quick else "large"
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
    if not args.quick and not args.skip_investigate:
        log("investigations: 100k and 1M seeds on the large world vs networkx")
        investigations = investigate_bench.run(work, world, measure, log)
    log("investigations: accuracy over profiles x seeds x scales (docs/investigations.md)")
    matrix_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", "easy",
                  "realistic", "hard", "--scales", "small", "--seeds", "1", "2", "3"]  # fmt: skip
    if not args.quick:
        matrix_cmd += ["4", "5", "6"]
    subprocess.run(matrix_cmd, cwd=ROOT, check=True, capture_output=True)
    if not args.quick:
        medium_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", "easy",
                      "realistic", "hard", "--scales", "medium", "--seeds", "7"]  # fmt: skip
        subprocess.run(medium_cmd, cwd=ROOT, check=True, capture_output=True)
    if args.accuracy_large:
        # one world per process, so its peak RSS is its own (about 9 minutes on 2 cores)
        for profile in args.accuracy_large:
            large_cmd = [sys.executable, "-m", "bench.accuracy_matrix", "--profiles", profile,
                         "--scales", "large", "--seeds", "1"]  # fmt: skip
            subprocess.run(large_cmd, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report = render(args, info, datasets, results, real, large, cold, trav, wall)
    report += render_stages(world, world_seconds, scale, results, clustering, tags)
    report += api_bench.render(api)
    report += web_bench.render(web)
    if investigations is not None:
        report += investigate_bench.render(investigations)
    report += (
        "\n## Investigation accuracy over profiles, seeds and scales (issue 11)\n\n"
        "Measured in this run by `python -m bench.accuracy_matrix` (scored by "
        "`chainsleuth.cases.evaluate`; docs/investigations.md explains the columns), worst "
        "first:\n\n" + accuracy_matrix.render(accuracy_matrix.load_results()) + "\n"
    )
    if any(r["scale"] == "large" for r in accuracy_matrix.load_results()):
        report += (
            "\nWhat the large worlds cost (`--accuracy-large`, or kept from an earlier run in "
            "bench-output/accuracy/):\n\n" + accuracy_matrix.render_costs(
                accuracy_matrix.load_results()) + "\n"
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
        "wall_seconds": wall,
    }
    (work / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps(raw, indent=1) + "\n"
    )
    return report


def render(
    args: argparse.Namespace,
    info: dict[str, Any],
    datasets: list[Dataset],
    results: dict[str, dict[str, Any]],
    real: synth_chain.ChainInfo,
    large: synth_chain.ChainInfo,
    cold: dict[str, Any],
    trav: dict[str, Any],
    wall: float,
) -> str:
    out: list[str] = []
    add = out.append
    cores = info["nproc"] or 1
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "make bench" if not args.quick else "python -m bench.run --quick"
    add("# chainsleuth benchmarks\n")
    add(
        f"Generated by `{cmd}` (`bench/run.py`) on {now}; do not edit by hand. "
        f"The whole run took {duration(wall)}.\n"
    )
    add(
        f"Machine: {cores} CPUs ({info['cpu']}), {info['mem_bytes'] / 2**30:.1f} GiB RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, numpy {info['versions']['numpy']}, "
        f"numba {info['versions']['numba']}, pyarrow {info['versions']['pyarrow']}; "
        f"chainsleuth commit `{info['commit']}` (plus any uncommitted changes). "
        f"Load average {' / '.join(info['loadavg'])} at the start, "
        f"{' / '.join(info['loadavg_end'])} at the end: the machine is shared, so timings "
        f"are medians of {args.repeats} runs and can move by 10-20 % between runs.\n"
    )
    if args.quick:
        add("**Quick run** (smaller chain, fewer repetitions): for development only.\n")

    L = results["large"]
    ing, flo, base = L["ingest"], L["floor"], L["baseline"]
    cs_tx_s = ing["n_txs"] / ing["seconds"]
    base_tx_s = base["n_txs"] / base["seconds"]
    vs_base = cs_tx_s / base_tx_s
    vs_floor = ing["seconds"] / flo["seconds"]
    R = results["real"]
    r_vs_base = (R["ingest"]["n_txs"] / R["ingest"]["seconds"]) / (
        R["baseline"]["n_txs"] / R["baseline"]["seconds"]
    )
    r_vs_floor = R["ingest"]["seconds"] / R["floor"]["seconds"]

    add("## Targets\n")
    add(
        table(
            ["target (issue)", f"{large.n_txs:,}-tx chain", "real blocks (1 pass)", "status"],
            [
                [
                    f"ingest >= {TARGET_VS_BASELINE:.0f}x blockchain-parser (tx/s)",
                    f"{vs_base:.1f}x",
                    f"{r_vs_base:.1f}x",
                    met(vs_base >= TARGET_VS_BASELINE),
                ],
                [
                    f"ingest time <= {TARGET_VS_FLOOR:.0f}x the 1-core double-SHA256 floor",
                    f"{vs_floor:.1f}x",
                    f"{r_vs_floor:.1f}x",
                    met(vs_floor <= TARGET_VS_FLOOR),
                ],
            ],
        )
        + "\n"
    )
    add(
        f"Status is judged on the {large.n_txs:,}-transaction chain. chainsleuth may use both "
        "cores (it parses the next batch in a thread while the current one is linked and "
        "written); the floor and blockchain-parser run on one.\n"
    )

    add("## Data\n")
    rows = []
    for d in datasets:
        i = results[d.key]["ingest"]
        rows.append(
            [
                d.title,
                f"{i['n_blocks']:,}",
                f"{i['n_txs']:,}",
                f"{i['n_inputs']:,}",
                f"{i['n_outputs']:,}",
                f"{i['n_addresses']:,}",
                f"{i['blk_bytes'] / 1e6:,.1f}",
                f"{i['blk_bytes'] / i['n_txs']:,.0f}",
                d.note,
            ]
        )
    add(
        table(
            [
                "dataset",
                "blocks",
                "txs",
                "inputs",
                "outputs",
                "addresses",
                "blk MB",
                "blk B/tx",
                "what",
            ],
            rows,
        )
        + "\n"
    )
    add(
        "The two re-linked chains are **synthetic re-linkings of real transaction bytes** "
        "(`bench/synth_chain.py`): the 17 real mainnet blocks of "
        "`../shared/data/mainnet-blocks/raw/` (2010-2024, incl. segwit, taproot, a 20,818-input "
        "consolidation and runes OP_RETURNs), with every input's prevout rewritten to point at an "
        "unspent output of a regtest chain, new coinbases, recomputed merkle roots and witness "
        "commitments, and mined headers, written as `blk?????.dat` files of at most 128 MiB. "
        "scriptSigs, witnesses, output scripts and values are the real bytes; from the second "
        "pass on two bytes of each address-bearing script are XORed with the pass number, so "
        "each pass brings new addresses. Because the real blocks spend more than they create, "
        f"funding comes from fan-out transactions (one input, 2,500 P2WPKH outputs): "
        f"{large.fanout_txs:,} of the large chain's txs but {large.fanout_outputs:,} of its "
        f"{large.n_outputs:,} outputs ({large.fanout_outputs / large.n_outputs:.0%}); "
        f"{real.fanout_outputs:,} of {real.n_outputs:,} in the one-pass chain. The mix is "
        f"input-heavy ({large.n_inputs / large.n_txs:.1f} inputs and "
        f"{large.n_outputs / large.n_txs:.1f} outputs per tx; docs/design/store.md puts "
        "mainnet at about 2.6 and 2.8) and address-heavy "
        f"({L['ingest']['n_addresses'] / L['ingest']['n_txs']:.1f} new addresses per tx, mainnet "
        "about 1.3: recent real blocks pay mostly to fresh addresses, and a chain of a million "
        "transactions has little time for reuse), and its bytes per tx are close to mainnet's "
        f"({large.blk_bytes / large.n_txs:.0f} vs about "
        f"{MAINNET_BLK_BYTES / MAINNET_TXS:.0f}). Generation is untimed and cached "
        "under `bench-output/chains/`.\n"
    )

    add("## Ingest throughput (read, parse, link, write)\n")
    rows = []
    for d in datasets:
        r = results[d.key]
        i, f, b = r["ingest"], r["floor"], r["baseline"]
        tx_s = i["n_txs"] / i["seconds"]
        b_tx_s = b["n_txs"] / b["seconds"]
        rows.append(
            [
                d.title,
                secs(i["seconds"]) + _spread(i["runs"]),
                f"{tx_s:,.0f}",
                f"{i['blk_bytes'] / 1e6 / i['seconds']:.1f}",
                f"{i['cpu_seconds'] / i['seconds']:.2f}",
                mib(i["peak_rss_bytes"]),
                f"{i['store']['total'] / i['n_txs']:,.0f}",
                secs(f["seconds"]),
                f"{f['n_txs'] / f['seconds']:,.0f}",
                f"{f['tx_bytes'] / 1e6 / f['seconds']:,.0f}",
                f"{b_tx_s:,.0f}" + ("" if b["complete"] else f" ({b['n_txs']:,} txs)"),
                f"{tx_s / b_tx_s:.1f}x",
                f"{i['seconds'] / f['seconds']:.1f}x",
            ]
        )
    add(
        table(
            [
                "dataset",
                "chainsleuth",
                "tx/s",
                "MB/s",
                "cores busy",
                "peak RSS",
                "store B/tx",
                "floor",
                "floor tx/s",
                "floor MB/s",
                "blockchain-parser tx/s",
                "vs blockchain-parser",
                "time / floor",
            ],
            rows,
        )
        + "\n"
    )
    add(
        "- **chainsleuth**: `ingest_blocks_dir(blocks_dir, fresh data_dir)` timed around the "
        "call, median of the runs (fastest-slowest in brackets): scan of the blk files, best-chain selection, reading, "
        "parsing (txids, merkle check, script classification), linking every input to the output "
        "it spends, address ids, the memory-mapped arrays, the zstd parquet tables, the commit "
        "(fsync) per 32 MiB batch and the saved indexes. A tiny warm-up ingest first loads "
        "numba's cached machine code (about "
        f"{L['ingest']['warmup_seconds']:.1f} s once per process, not counted). MB/s are blk-file "
        "bytes. *cores busy* = CPU seconds / wall seconds of the call. Peak RSS is the "
        "process's `ru_maxrss`. *store B/tx* = bytes of the data directory / transactions.\n"
        "- **floor**: hashlib double-SHA256 of every transaction's full serialization (witness "
        "included) in one thread, hashing in place in the blk file's bytes; transaction "
        "boundaries from chainsleuth's parser, untimed; reading the files not counted "
        f"({L['floor']['read_seconds']:.2f} s from the page cache for the large chain).\n"
        "- **blockchain-parser** "
        f"{base.get('version', '0.1.6')} (PyPI): `Blockchain(dir).get_unordered_blocks()`, then "
        "for every tx its txid, every input's prevout txid and index, and every output's value "
        "and address strings. It hard-codes mainnet's magic, so for the regtest chains its "
        "module constant `BITCOIN_CONSTANT` is set to the regtest magic and it reads the same "
        "files. "
        + (
            f"On the large chain it stopped after {args.baseline_budget:.0f} s "
            f"({base['n_blocks']:,} of {ing['n_blocks']:,} blocks, the start of the chain: the "
            "101 coinbase-only blocks, fan-out blocks and the first passes); its tx/s is over "
            "those. Its address encoding is pure Python, so the P2WPKH-heavy fan-out outputs "
            "slow it more than they slow chainsleuth.\n"
            if not base["complete"]
            else "It read every block.\n"
        )
    )
    add(
        f"All blk files were in the page cache. Read cold (after `posix_fadvise(DONTNEED)`), "
        f"this machine's disk gave {cold['bytes'] / 1e6 / cold['seconds']:,.0f} MB/s for the "
        f"large chain's {cold['bytes'] / 1e6:,.0f} MB, "
        + (
            "faster than the ingest, so the disk is not the bound here.\n"
            if cold["bytes"] / cold["seconds"] > ing["blk_bytes"] / ing["seconds"]
            else "slower than the ingest: from a cold disk the read would be the bound.\n"
        )
    )

    st = ing["store"]
    add(f"### Store size ({large.n_txs:,}-tx chain)\n")
    rows = [
        [name, f"{st[name] / 1e6:,.1f}", f"{st[name] / ing['n_txs']:,.0f}"]
        for name in sorted(st, key=lambda k: -st[k])
        if name != "total"
    ]
    rows.append(["**total**", f"{st['total'] / 1e6:,.1f}", f"{st['total'] / ing['n_txs']:,.0f}"])
    add(table(["part", "MB", "bytes per tx"], rows) + "\n")
    add(f"The store is {st['total'] / ing['blk_bytes']:.2f}x the blk files it was built from.\n")
    if "parts" in ing:
        at = store_size.project({"parts": ing["parts"], "counts": ing["counts"]})
        add(
            f"Projected to mainnet per item (`bench.store_size.project`: each table and array at "
            f"its bytes per row here, the indexes at their documented layouts): "
            f"{at['total'] / 1e9:,.0f} GB, {at['ratio']:.2f}x of "
            f"{store_size.MAINNET['blk_bytes'] / 1e9:,.0f} GB of blk files (target: 0.6x; "
            "scriptSigs and witnesses are not kept by default, see docs/design/store.md).\n"
        )

    add("## Traversal of the memory-mapped arrays\n")
    io = trav["n_inputs"] + trav["n_outputs"]
    np_rate = io / trav["numpy_seconds"]
    nb_rate = io / trav["numba_seconds"]
    cold_rate = io / trav["cold_seconds"]
    best = max(np_rate, nb_rate)
    bs_io = BLOCKSCI_TXS * BLOCKSCI_IO_PER_TX
    bs_rate = bs_io / BLOCKSCI_SECONDS / BLOCKSCI_VCPUS
    add(
        "Sum every output value and every spent input's value: `output_value.sum()` plus "
        "`output_value[input_spent_output[input_spent_output >= 0]].sum()` (numpy), and the same "
        "as one numba loop; one core, arrays opened with `Store.open(...).array(...)`. "
        f"{trav['n_inputs']:,} inputs + {trav['n_outputs']:,} outputs = {io:,} "
        f"({trav['array_bytes'] / 1e6:,.0f} MB of arrays).\n"
    )
    add(
        table(
            ["run", "seconds", "inputs+outputs / s / core"],
            [
                [
                    "numpy, cold (arrays evicted from the page cache)",
                    f"{trav['cold_seconds']:.3f}",
                    si(cold_rate),
                ],
                ["numpy, warm (best of 5)", f"{trav['numpy_seconds']:.3f}", si(np_rate)],
                ["numba loop, warm (best of 5)", f"{trav['numba_seconds']:.3f}", si(nb_rate)],
                [
                    "BlockSci, published: whole chain in 1 s on a 16-vCPU r5.4xlarge",
                    "1 (for ~2.75 G)",
                    si(bs_rate) + " per vCPU",
                ],
            ],
        )
        + "\n"
    )
    add(
        "BlockSci's README: traversing \"every transaction input and output on the Bitcoin "
        'blockchain takes only 1 second on our r5.4xlarge EC2 machine" (16 vCPUs), when the chain '
        f'was "currently 280 GB" (mid-2020). Assumed: {BLOCKSCI_TXS / 1e6:,.0f} M transactions '
        f"then (GraphSense counted 617.6 M at block 671,193 in February 2021) with "
        f"{BLOCKSCI_IO_PER_TX:.1f} inputs+outputs per tx (~2.4 + ~2.6; docs/design/store.md "
        f"budgets 6.0 G for 1.1 G txs today), so {bs_io / 1e9:.2f} G inputs+outputs / 1 s / "
        f"16 vCPUs = {si(bs_rate)} per vCPU, assuming it used all 16. chainsleuth's best warm "
        f"single-core rate is {best / bs_rate:.2f}x that per core; at that rate one core would "
        f"traverse BlockSci's 2020 chain in {duration(bs_io / best)} and both cores of this "
        f"machine (if it scaled) in {duration(bs_io / best / cores)}. BlockSci keeps the chain "
        "in RAM-resident, pre-linked arrays; the figure covers the same walk (every input and "
        "output, values) but not necessarily the same access pattern. Our arrays here are "
        f"{trav['array_bytes'] / 1e6:,.0f} MB, so the random gather `output_value[...]` is "
        "served largely from the CPU caches; at mainnet size (docs/design/store.md: 48 GB for "
        "the two arrays) it goes to DRAM or disk, and the per-core rate will be lower.\n"
    )

    bbp_tx = BBP_TXS / BBP_SECONDS / BBP_THREADS
    bbp_io_tx = BBP_TXS / BBP_IO_SECONDS / BBP_THREADS
    bbp_blocks = BBP_BLOCKS / BBP_SECONDS / BBP_THREADS
    cs_per_core = ing["n_txs"] / ing["cpu_seconds"]
    add("## Against bitcoin-block-parser (Rust), per thread\n")
    add(
        table(
            ["", "blocks / s / thread", "tx / s / thread"],
            [
                [
                    "bitcoin-block-parser 0.1.0 `parse()`: 850,000 blocks in 6 min, 32 threads",
                    f"{bbp_blocks:,.1f}",
                    f"{bbp_tx:,.0f}",
                ],
                [
                    "bitcoin-block-parser 0.1.0 `parse_io()` (with input amounts and spent flags)"
                    ": 47 min",
                    f"{BBP_BLOCKS / BBP_IO_SECONDS / BBP_THREADS:,.1f}",
                    f"{bbp_io_tx:,.0f}",
                ],
                [
                    f"chainsleuth ingest, per busy core ({large.n_txs:,}-tx chain)",
                    f"{ing['n_blocks'] / ing['cpu_seconds']:,.1f}",
                    f"{cs_per_core:,.0f}",
                ],
                [
                    "hashing floor, one core (large chain)",
                    "-",
                    f"{flo['n_txs'] / flo['seconds']:,.0f}",
                ],
            ],
        )
        + "\n"
    )
    add(
        f"Assumed {BBP_TXS / 1e9:.2f} G transactions up to height 850,000 (the 1,000,000,000th "
        "was mined in block 842,241 in May 2024; ~4,000 per block after that), i.e. "
        f"{BBP_TXS / BBP_BLOCKS:,.0f} per block on average. Our blocks are not mainnet's average "
        "block, so compare tx/s, not blocks/s. `parse()` decodes blocks and computes txids but "
        "does not link inputs, so the closest to chainsleuth's ingest (which links every input "
        "and writes a store) is `parse_io()`.\n"
    )

    add("## Extrapolation to the full mainnet chain on this machine\n")
    tx_s = cs_tx_s
    mb_s = ing["blk_bytes"] / ing["seconds"]
    t_tx = MAINNET_TXS / tx_s
    t_bytes = MAINNET_BLK_BYTES / mb_s
    per_tx = st["total"] / ing["n_txs"]
    add(
        table(
            ["quantity", "value", "from"],
            [
                [
                    "ingest time, by transactions",
                    duration(t_tx),
                    f"{MAINNET_TXS / 1e9:.1f} G txs / {tx_s:,.0f} tx/s",
                ],
                [
                    "ingest time, by bytes",
                    duration(t_bytes),
                    f"{MAINNET_BLK_BYTES / 1e9:,.0f} GB / {mb_s / 1e6:.1f} MB/s",
                ],
                [
                    "store size",
                    f"{MAINNET_TXS * per_tx / 1e12:.2f} TB",
                    f"{MAINNET_TXS / 1e9:.1f} G txs x {per_tx:,.0f} B/tx",
                ],
                [
                    "hashing floor, one core",
                    duration(MAINNET_TXS / (flo["n_txs"] / flo["seconds"])),
                    f"{flo['n_txs'] / flo['seconds']:,.0f} tx/s",
                ],
                [
                    "blockchain-parser",
                    duration(MAINNET_TXS / base_tx_s),
                    f"{base_tx_s:,.0f} tx/s",
                ],
            ],
        )
        + "\n"
    )
    add(
        f"Assumptions: mainnet has about {MAINNET_TXS / 1e9:.1f} G transactions in about "
        f"{MAINNET_BLK_BYTES / 1e9:,.0f} GB of blk files ({MAINNET_BLK_BYTES / MAINNET_TXS:.0f} "
        f"B/tx; the synthetic chain has {ing['blk_bytes'] / ing['n_txs']:.0f}), and the rate "
        f"measured on {ing['n_txs']:,} transactions holds for a thousand times more. It will "
        "not quite: the outpoint and address hash tables grow from tens of MB here to GBs "
        "(docs/design/store.md: the address index's 17 GB of shards on disk, read through the "
        "page cache with ≤ 1.8 GB resident; ≈10 GB of RAM projected for a full-mainnet ingest "
        f"on a machine with {info['mem_bytes'] / 2**30:.0f} GiB here), so lookups that hit the "
        "CPU cache here miss it, and partly the page cache, "
        "there, and early mainnet blocks are tiny (per-block costs dominate, see the nbitcoin "
        "row). The mix also differs: more inputs, outputs and new addresses per tx than mainnet, and "
        "every pass repeats the same script shapes. Read these as a lower bound on time and "
        "size at today's code, not a forecast.\n"
    )

    add("## Reproduce\n")
    add(
        "```\nmake bench                      # or: .venv/bin/python -m bench.run\n"
        ".venv/bin/python -m bench.run --quick   # 200k-tx chain, 1 run each\n```\n"
    )
    add(
        "Raw numbers of this run: `bench-output/results.json`. Chains and stores stay in "
        "`bench-output/` (gitignored); delete it to rebuild from scratch.\n"
    )
    return "\n".join(out)


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
        f"addresses, {c['edges']:,} multi-input edges (CoinJoins left out). chainsleuth's time "
        "includes building the edges from the store's arrays; the baselines get the edge list "
        "ready-made. Same process, after a warm-up.",
        "",
        table(
            ["", "seconds", "tx/s", "clusters", "ratio (baseline time / ours)"],
            [
                [
                    "chainsleuth union-find",
                    secs(c["ours_seconds"]),
                    si(c["ours_tx_per_s"]),
                    f"{c['clusters_ours']:,}",
                    "1",
                ],
                [
                    "scipy connected_components",
                    secs(c["scipy_seconds"]),
                    "",
                    f"{c['clusters_scipy']:,}",
                    f"{c['speedup_vs_scipy']:.2f}x",
                ],
                [
                    f"networkx (first {c['networkx_edges']:,} edges, scaled)",
                    secs(c["networkx_seconds"]),
                    "",
                    f"{c['clusters_networkx']:,}",
                    f"{c['speedup_vs_networkx']:.1f}x",
                ],
            ],
        ),
        "",
        f"- Same partition as scipy: {c['same_partition_as_scipy']}. Target 'at least as fast "
        f"as scipy': {met(c['speedup_vs_scipy'] >= 1.0)}.",
        f"- Incremental update of the last {c['incremental_txs']:,} transactions (one big "
        f"block) under the default policy: {c['incremental_ms']:.1f} ms (union-find update; "
        f"publishing the cluster files is O(addresses), see docs/design/clustering.md). "
        f"Target < 50 ms: {met(c['incremental_ms'] < 50)}.",
        f"- Memory: {c['state_bytes_per_address']:.0f} bytes per address of union-find state "
        f"(parent, size, attribution); peak RSS of the measurement {c['peak_rss_mb']:,.0f} MiB.",
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
    if args.baseline_budget is None:
        args.baseline_budget = 20.0 if args.quick else 60.0
    if args.output is None:
        args.output = str(
            Path(args.work) / "benchmarks-quick.md" if args.quick else ROOT / "docs/benchmarks.md"
        )
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
