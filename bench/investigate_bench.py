"""Investigation benchmark: 100k and 1M seed addresses on the large simulated world, against the
same backward search written with networkx over the same edges.

`prepare` copies the ingested large world (`bench-output/stores/world`) to
`bench-output/stores/world-case`, clusters it (conservative) and imports the world's TagPacks
there, once (cached until the source store changes), and writes the two seed files:

* 100k: the first 100,000 rows of the world's `seeds/deposits.csv` (the service's deposit
  addresses);
* 1M: the service's 150,000 deposit addresses, then 850,000 ordinary people's receiving
  addresses (`truth/addresses.csv`, wallet_kind user/customer/merchant, role receive), drawn
  with `numpy.random.default_rng(0).permutation`.

Measured, each in its own process (`bench.measure`): the real CLI end to end (`python -m
chainsleuth --data STORE investigate --seeds FILE -o OUT`, wall time and the child's peak RSS);
the backward trace alone, in process, exactly as `investigate()` runs it (`_in_chunks` over
`trace_back`); and the networkx baseline: a MultiDiGraph with one node per tx and one edge per
input (spending tx -> funding tx, carrying the spent output, its value and its address), walked
in pure Python with the kernel's rules (haircut split, stop clusters, coinbase, CoinJoin, max
hops, dropped shares below the seed's minimum, the per-seed entry cap). Its per-(seed, kind)
totals are checked against chainsleuth's on a sample before it is timed.

    python -m bench.investigate_bench            # prepare, measure, print the report section
    python -m bench.investigate_bench --render   # re-render from bench-output/investigate/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import duration, log, measure, met, mib, secs, simulated_world, table
from bench.world import tag_world
from chainsleuth.core.files import atomic_write_text
from chainsleuth.trace.engine import KINDS as KIND_NAMES
from chainsleuth.trace.kernels import KIND_CLUSTER as _CLUSTER
from chainsleuth.trace.kernels import KIND_COINBASE as _COINBASE
from chainsleuth.trace.kernels import KIND_COINJOIN as _COINJOIN
from chainsleuth.trace.kernels import KIND_MAX_HOPS as _MAX_HOPS
from chainsleuth.trace.kernels import KIND_SEED_LIMIT as _SEED_LIMIT

ROOT = Path(__file__).resolve().parents[1]
SEEDS_SMALL = 100_000
SEEDS_LARGE = 1_000_000
#: The 1M case's extra seeds: ordinary people's receiving addresses.
PEOPLE_KINDS = ("user", "customer", "merchant")
PEOPLE_ROLE = "receive"
NETWORKX_BUDGET_S = 90.0  # seconds of networkx walk per seed file (at least NETWORKX_MIN_SEEDS)
NETWORKX_MIN_SEEDS = 1_000
VALIDATE_SEEDS = 300  # deposit outputs, split between the two seed files
TRACE_REPEATS = 3  # runs of the trace alone (seconds each); the median is reported
WARMUP_SEEDS = 1_000  # a first, small CLI run loads numba's cached code (reported apart)
#: Targets from the issue: the 1M case in minutes, and at least 50x networkx (seeds/s).
TARGET_1M_SECONDS = 60 * 60  # "minutes, not hours": under an hour
TARGET_VS_NETWORKX = 50.0


def _store_key(store_dir: Path) -> dict[str, Any]:
    manifest = json.loads((store_dir / "manifest.json").read_text())
    return {"tip": manifest.get("tip"), "counts": manifest.get("counts")}


def prepare(
    work: Path, world: Path, log: Callable[[str], None], strict: bool = True
) -> dict[str, Any]:
    """The case store (copied, clustered, tagged) and the seed files; both cached, and rebuilt
    when the source store's tip or counts or the world's world.json change. `strict`: the
    large seed file has exactly SEEDS_LARGE seeds (else: as many as the world has)."""
    source = work / "stores" / "world"
    case = work / "stores" / "world-case"
    out = work / "investigate"
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "prepared.json"
    key = {"source": _store_key(source), "world": json.loads((world / "world.json").read_text())}
    prepared = json.loads(marker.read_text()) if marker.exists() else {}
    rebuild = prepared.get("key") != key or not (case / "manifest.json").exists()
    if rebuild:
        from chainsleuth.cluster.engine import cluster_store

        log(f"investigate: copying {source} to {case}, clustering, importing the world's tags")
        marker.unlink(missing_ok=True)
        shutil.rmtree(case, ignore_errors=True)
        t = time.perf_counter()
        shutil.copytree(source, case)
        copy_s = time.perf_counter() - t
        t = time.perf_counter()
        cluster_store(case, "conservative")
        cluster_s = time.perf_counter() - t
        t = time.perf_counter()
        tag_world(world, case)
        tags_s = time.perf_counter() - t
        prepared = {
            "key": key,
            "copy_seconds": copy_s,
            "cluster_seconds": cluster_s,
            "tags_seconds": tags_s,
        }
        marker.write_text(json.dumps(prepared, indent=1) + "\n")
    else:
        log(f"investigate: {case} (cached)")
    small, large = out / "seeds-100k.csv", out / "seeds-1m.csv"
    tiny = out / "seeds-1k.csv"
    if rebuild or not small.exists() or not large.exists() or not tiny.exists():
        log("investigate: writing the seed files")
        _write_seeds(world, small, large, strict)
        with open(small) as f:
            tiny.write_text("".join(f.readline() for _ in range(WARMUP_SEEDS + 1)))
    return {
        "store": str(case),
        "seeds_1k": str(tiny),
        "seeds_100k": str(small),
        "seeds_1m": str(large),
        "out": str(out),
        "prepare": {k: v for k, v in prepared.items() if k != "key"},
    }


def _write_seeds(world: Path, small: Path, large: Path, strict: bool = True) -> None:
    import pyarrow.csv as pacsv

    with open(world / "seeds" / "deposits.csv", newline="") as f:
        service = [r["address"] for r in csv.DictReader(f)]
    truth = pacsv.read_csv(
        world / "truth" / "addresses.csv",
        convert_options=pacsv.ConvertOptions(
            include_columns=["address", "wallet_kind", "role"],
            column_types={"address": "string", "wallet_kind": "string", "role": "string"},
        ),
    )
    kind = np.asarray(truth.column("wallet_kind").to_numpy(zero_copy_only=False))
    role = np.asarray(truth.column("role").to_numpy(zero_copy_only=False))
    people = np.asarray(truth.column("address").to_numpy(zero_copy_only=False))[
        np.isin(kind, PEOPLE_KINDS) & (role == PEOPLE_ROLE)
    ]
    taken = set(service)
    people = np.array([a for a in people.tolist() if a not in taken], object)
    n_extra = SEEDS_LARGE - len(service)
    if not strict:
        n_extra = min(n_extra, people.shape[0])
    if people.shape[0] < n_extra:
        raise RuntimeError(f"only {people.shape[0]:,} receiving addresses; need {n_extra:,}")
    drawn = people[np.random.default_rng(0).permutation(people.shape[0])[:n_extra]]
    for path, rows in ((small, service[:SEEDS_SMALL]), (large, service + drawn.tolist())):
        atomic_write_text(path, "address\n" + "\n".join(rows) + "\n")


# ---------------------------------------------------------------------------------------------
# the case's inputs, exactly as investigate() derives them


def case_inputs(store_dir: Path, seeds_csv: Path) -> dict[str, Any]:
    """Deposit outputs (grouped by address), their groups and the trace options of the case:
    `investigate.prepare_case`, the same steps `investigate()` takes before its traces."""
    from chainsleuth.cases import investigate as inv

    setup = inv.prepare_case(Path(store_dir), Path(seeds_csv), inv.DEFAULT_PRICES)
    # the backward trace's (leads) stops, as investigate() passes them: a flag per address
    stops = setup.back_stops
    return {
        "store": setup.store,
        "addresses": [str(a) for a in setup.addresses.to_pylist()],
        "seed_ids": setup.seed_ids,
        "deposits": setup.deposits,
        "group": setup.out_addr[setup.deposits],
        "out_addr": setup.out_addr,
        "stop_address": stops["stop_clusters"].mask,
        "options": setup.trace,
        "stops": stops,
    }


def _rusage() -> tuple[float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss * 1024


# ---------------------------------------------------------------------------------------------
# measurements (each called by bench.measure in its own process)


def measure_cli(store: str, seeds: str, out: str) -> dict[str, Any]:
    """The CLI end to end in a child process: wall seconds, the child's peak RSS, its outputs."""
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "chainsleuth", "--data", store, "investigate"]
    cmd += ["--seeds", seeds, "-o", str(out_dir)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    case = json.loads((out_dir / "case.json").read_text())

    def rows(name: str) -> int:
        with open(out_dir / name, "rb") as f:
            return sum(1 for _ in f) - 1

    return {
        "command": cmd,
        "seconds": wall,
        "cpu_seconds": child.ru_utime + child.ru_stime,
        "peak_rss_bytes": child.ru_maxrss * 1024,
        "seeds": case["service"]["seed_addresses"],
        "seeds_in_store": case["service"]["seed_addresses_in_store"],
        "service_clusters": case["service"]["clusters"],
        "deposit_outputs": case["service"]["deposit_outputs"],
        "internal_outputs_skipped": case["service"]["internal_outputs_skipped"],
        "untraced_sat": case["service"]["untraced_sat"],
        "leads_rows": rows("leads.csv"),
        "subpoena_rows": rows("subpoenas.csv"),
        "cashout_rows": rows("cashouts.csv"),
        "output_bytes": {p.name: p.stat().st_size for p in sorted(out_dir.iterdir())},
    }


def trace_all(store: Path, case: dict[str, Any]) -> dict[str, Any]:
    """The backward trace over every deposit output of `case` (`case_inputs`), as investigate()
    runs it (`_in_chunks` over `trace_back`, one chunk per thread); what it found, counted.
    Shared by `measure_trace` and `bench.cores` (the 1-vs-2-core runs)."""
    from chainsleuth.cases.investigate import _in_chunks
    from chainsleuth.trace.engine import trace_back

    deposits, group, options = case["deposits"], case["group"], case["options"]
    n_rows = n_entries = untraced = chunks = 0
    by_kind = np.zeros(len(KIND_NAMES), np.int64)
    by_hops = np.zeros(options.max_hops + 1, np.int64)
    trace = partial(trace_back, store, options=options)
    for result in _in_chunks(trace, deposits, group, **case["stops"]):
        n_rows += len(result)
        by_kind += np.bincount(result.kind, minlength=by_kind.shape[0])
        by_hops += np.bincount(result.hops, minlength=by_hops.shape[0])
        n_entries += int(result.entry_parent.shape[0])
        untraced += int(result.dropped.sum())
        chunks += 1
        del result
    return {
        "rows": n_rows,
        "entries": n_entries,
        "chunks": chunks,
        "untraced_sat": untraced,
        "by_kind": by_kind.tolist(),
        "by_hops": by_hops.tolist(),
    }


def measure_trace(store: str, seeds: list[str], repeats: int = TRACE_REPEATS) -> dict[str, Any]:
    """The backward trace alone, in process, as investigate() runs it (per seed file; the
    median of `repeats` runs, peak RSS after the last)."""
    from chainsleuth.store import tracerows
    from chainsleuth.store.store import Store
    from chainsleuth.trace.engine import trace_back

    # the trace rows are opt-in (`ingest --trace-rows`); the 50x is measured with them,
    # so the store opts in here (built once, outside the timings)
    tracerows.choose(Path(store), True)
    tracerows.ensure_rows(Path(store), Store.open(Path(store)).graph)
    out: dict[str, Any] = {"trace_rows": True}
    for path in seeds:
        t = time.perf_counter()
        case = case_inputs(Path(store), Path(path))
        setup_s = time.perf_counter() - t
        deposits, options = case["deposits"], case["options"]
        trace_back(Path(store), deposits[:16], options, **case["stops"])  # numba's code, once
        runs = []
        for _ in range(repeats):
            cpu0, _ = _rusage()
            t = time.perf_counter()
            facts = trace_all(Path(store), case)
            runs.append((time.perf_counter() - t, _rusage()[0] - cpu0))
        seconds, cpu_seconds = sorted(runs)[len(runs) // 2]
        n_rows, n_entries, chunks = facts["rows"], facts["entries"], facts["chunks"]
        untraced, by_kind, by_hops = facts["untraced_sat"], facts["by_kind"], facts["by_hops"]
        _, rss = _rusage()
        out[Path(path).name] = {
            "seeds": len(case["addresses"]),
            "seeds_in_store": int(case["seed_ids"].shape[0]),
            "deposit_outputs": int(deposits.shape[0]),
            "setup_seconds": setup_s,
            "seconds": seconds,
            "runs": [r[0] for r in runs],
            "cpu_seconds": cpu_seconds,
            "rows": n_rows,
            "rows_by_kind": dict(zip(KIND_NAMES, by_kind, strict=True)),
            "rows_by_hops": by_hops,
            "entries": n_entries,
            "chunks": chunks,
            "untraced_sat": untraced,
            "peak_rss_bytes": rss,
        }
    return out


def build_graph(store: Any, is_coinjoin: np.ndarray) -> Any:
    """networkx MultiDiGraph of the chain: a node per tx, an edge per input from the spending tx
    to the tx that created the spent output, keyed by input id, with the spent output's id,
    value and address id (-1 when none). Coinbase and CoinJoin txs carry a node attribute."""
    import networkx as nx

    from chainsleuth.store.layout import NONE32

    first_in = store.graph.tx_first_input.astype(np.int64)
    first_out = store.graph.tx_first_output.astype(np.int64)
    spent = store.graph.input_spent_output.astype(np.int64)
    value = store.graph.output_value
    address = store.graph.output_address.astype(np.int64)
    address[address == int(NONE32)] = -1
    n_tx, n_in = first_in.shape[0], spent.shape[0]
    inputs_per_tx = np.diff(np.append(first_in, n_in))
    spender = np.repeat(np.arange(n_tx), inputs_per_tx)
    has = np.flatnonzero(spent >= 0)
    funding = np.searchsorted(first_out, spent[has], side="right") - 1
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n_tx))
    # as trace_kernel: a tx whose first input spends nothing is a coinbase
    coinbase = np.flatnonzero(
        (inputs_per_tx > 0) & (spent[np.minimum(first_in, max(n_in - 1, 0))] < 0)
    )
    for t in coinbase.tolist():
        g.nodes[t]["coinbase"] = True
    for t in np.flatnonzero(is_coinjoin).tolist():
        g.nodes[t]["coinjoin"] = True
    o = spent[has]
    g.add_edges_from(
        (u, v, k, {"output": out, "value": val, "address": a})
        for u, v, k, out, val, a in zip(
            spender[has].tolist(),
            funding.tolist(),
            has.tolist(),
            o.tolist(),
            value[o].tolist(),
            address[o].tolist(),
            strict=True,
        )
    )
    return g


def walk_networkx(
    g: Any,
    seed_tx: int,
    seed_value: int,
    stop_address: list[bool],
    max_hops: int,
    min_fraction: float,
    max_entries_per_seed: int,
) -> tuple[dict[int, list[int]], int, int]:
    """One seed output's backward haircut walk over the graph, with trace_kernel's rules.

    Returns ({kind: [rows, satoshis]}, dropped satoshis, frontier entries). A frontier entry is
    (the tx that created the traced output, the amount, hops, the output's address id)."""
    seed_min = max(math.ceil(seed_value * min_fraction), 0)
    totals: dict[int, list[int]] = {}
    dropped = per_seed = 0
    queue = deque([(seed_tx, seed_value, 0, -1)])
    nodes, succ = g.nodes, g.succ
    while queue:
        t, amount, hops, addr = queue.popleft()
        if hops > 0 and addr >= 0 and stop_address[addr]:
            kind = _CLUSTER
        else:
            attrs = nodes[t]
            if attrs.get("coinbase"):
                kind = _COINBASE
            elif attrs.get("coinjoin"):
                kind = _COINJOIN
            elif hops >= max_hops:
                kind = _MAX_HOPS
            else:
                inputs = sorted((k, v, d) for v, keyed in succ[t].items() for k, d in keyed.items())
                if per_seed + len(inputs) > max_entries_per_seed:
                    kind = _SEED_LIMIT
                else:
                    total_in = sum(d["value"] for _, _, d in inputs)
                    for _, v, d in inputs:
                        share = round(amount * (d["value"] / total_in)) if total_in > 0 else 0
                        if share <= 0:
                            continue
                        if share < seed_min:
                            dropped += share
                            continue
                        per_seed += 1
                        queue.append((v, share, hops + 1, d["address"]))
                    continue
        row = totals.setdefault(kind, [0, 0])
        row[0] += 1
        row[1] += amount
    return totals, dropped, per_seed + 1


def measure_networkx(
    store: str,
    seeds: list[str],
    budget_s: float = NETWORKX_BUDGET_S,
    min_seeds: int = NETWORKX_MIN_SEEDS,
    n_validate: int = VALIDATE_SEEDS,
) -> dict[str, Any]:
    """Build the graph once; per seed file, check the walk against chainsleuth's trace on a
    sample of its deposit outputs, then walk the seed addresses in random order (each with all
    of its deposit outputs) until every seed is done or `budget_s` is spent."""
    import networkx as nx

    from chainsleuth.store.store import Store

    st = Store.open(Path(store))
    value = st.graph.output_value
    first_out = st.graph.tx_first_output
    from chainsleuth.trace.exposure import coinjoin_flags as _coinjoins

    is_coinjoin, _ = _coinjoins(Path(store), st.counts["txs"])
    cpu0, _ = _rusage()
    t = time.perf_counter()
    g = build_graph(st, is_coinjoin)
    build_s = time.perf_counter() - t
    cpu1, build_rss = _rusage()
    result: dict[str, Any] = {
        "networkx": nx.__version__,
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "build_seconds": build_s,
        "build_cpu_seconds": cpu1 - cpu0,
        "build_peak_rss_bytes": build_rss,
        "cases": {},
    }
    for n, path in enumerate(seeds):
        case = case_inputs(Path(store), Path(path))
        options = case["options"]
        # the CoinJoins the case's backward trace stops at: investigate() drops the
        # CoinJoin-shaped txs whose inputs are all one wallet's from the raw flags
        flags = np.asarray(case["stops"]["is_coinjoin"], np.bool_)
        for t in np.flatnonzero(is_coinjoin & ~flags).tolist():
            del g.nodes[t]["coinjoin"]
        for t in np.flatnonzero(flags & ~is_coinjoin).tolist():
            g.nodes[t]["coinjoin"] = True
        result.setdefault("coinjoins", {})[Path(path).name] = {
            "flagged": int(flags.sum()),
            "unflagged_one_wallet": int((is_coinjoin & ~flags).sum()),
        }
        is_coinjoin = flags
        walk = partial(
            walk_networkx,
            stop_address=case["stop_address"].tolist(),
            max_hops=options.max_hops,
            min_fraction=options.min_fraction,
            max_entries_per_seed=options.max_entries_per_seed,
        )
        validation = _validate(
            g, walk, case, Path(store), value, first_out, n_validate // len(seeds), seed=n + 1
        )
        addresses, deposits = case["addresses"], case["deposits"]
        ids = _address_ids(st, addresses)
        span_of = dict(zip(*_group_bounds(case["group"]), strict=True))
        n_seeds = n_outputs = n_rows = n_entries = 0
        cpu0, _ = _rusage()
        t = time.perf_counter()
        for i in np.random.default_rng(100 + n).permutation(len(addresses)).tolist():
            n_seeds += 1
            span = span_of.get(ids.get(addresses[i], -1))
            if span is not None:
                outputs = deposits[span[0] : span[1]]
                creators = np.searchsorted(first_out, outputs, side="right") - 1
                for o, t0 in zip(outputs.tolist(), creators.tolist(), strict=True):
                    totals, _, entries = walk(g, t0, int(value[o]))
                    n_outputs += 1
                    n_entries += entries
                    n_rows += sum(r[0] for r in totals.values())
            over = n_seeds % 64 == 0 and time.perf_counter() - t >= budget_s
            if over and n_seeds >= min_seeds:
                break
        elapsed = time.perf_counter() - t
        walk_cpu = _rusage()[0] - cpu0
        result["cases"][Path(path).name] = {
            "validation": validation,
            "seeds_total": len(addresses),
            "deposit_outputs_total": int(deposits.shape[0]),
            "seeds": n_seeds,
            "deposit_outputs": n_outputs,
            "rows": n_rows,
            "entries": n_entries,
            "seconds": elapsed,
            "cpu_seconds": walk_cpu,
            "seeds_per_s": n_seeds / elapsed,
            "outputs_per_s": n_outputs / elapsed,
            "complete": n_seeds == len(addresses),
        }
        del case, ids, span_of
    result["peak_rss_bytes"] = _rusage()[1]
    return result


def _validate(
    g: Any,
    walk: Callable[..., tuple[dict[int, list[int]], int, int]],
    case: dict[str, Any],
    store: Path,
    value: np.ndarray,
    first_out: np.ndarray,
    n: int,
    seed: int,
) -> dict[str, Any]:
    """The networkx walk against `trace_back` on `n` random deposit outputs of the case: rows,
    satoshis per (seed, kind) and dropped satoshis per seed must be equal (AssertionError)."""
    from chainsleuth.trace.engine import trace_back

    deposits = case["deposits"]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(deposits, min(n, deposits.shape[0]), replace=False))
    ours = trace_back(store, sample, case["options"], **case["stops"])
    expected: dict[tuple[int, int], list[int]] = {}
    for s, k, a in zip(ours.seed.tolist(), ours.kind.tolist(), ours.amount.tolist(), strict=True):
        row = expected.setdefault((int(sample[s]), k), [0, 0])
        row[0] += 1
        row[1] += int(a)
    got: dict[tuple[int, int], list[int]] = {}
    dropped_differ = 0
    creators = np.searchsorted(first_out, sample, side="right") - 1
    for i, (o, t0) in enumerate(zip(sample.tolist(), creators.tolist(), strict=True)):
        totals, dropped, _ = walk(g, t0, int(value[o]))
        for k, row in totals.items():
            got[(o, k)] = row
        dropped_differ += int(dropped != int(ours.dropped[i]))
    differ = sum(1 for key in expected.keys() | got.keys() if got.get(key) != expected.get(key))
    by_kind: dict[str, int] = {}
    for (_, k), (_, a) in sorted(expected.items()):
        by_kind[KIND_NAMES[k]] = by_kind.get(KIND_NAMES[k], 0) + a
    validation = {
        "deposit_outputs": int(sample.shape[0]),
        "groups": len(expected),
        "rows": len(ours),
        "sat": int(ours.amount.sum()),
        "dropped_sat": int(ours.dropped.sum()),
        "sat_by_kind": by_kind,
        "groups_differing": differ,
        "dropped_differing": dropped_differ,
        "equal": differ == 0 and dropped_differ == 0,
    }
    if not validation["equal"]:
        raise AssertionError(f"the networkx walk disagrees with chainsleuth's trace: {validation}")
    return validation


def _group_bounds(group: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
    """(address id, (first, end) row range) of each run of equal values in a sorted array."""
    if group.shape[0] == 0:
        return [], []
    starts = np.flatnonzero(np.diff(group, prepend=group[0] - 1))
    ends = np.append(starts[1:], group.shape[0])
    return group[starts].tolist(), list(zip(starts.tolist(), ends.tolist(), strict=True))


def _address_ids(store: Any, addresses: list[str]) -> dict[str, int]:
    """{address: address id} of the addresses found in the store."""
    import pyarrow as pa

    con = store.connection().cursor()
    con.register("cs_bench_addr", pa.table({"address": pa.array(addresses, pa.string())}))
    rows = con.sql(
        "SELECT s.address, a.address_id FROM cs_bench_addr s "
        "JOIN address_list_raw a ON a.address = s.address"
    ).fetchall()
    con.unregister("cs_bench_addr")
    return {a: int(i) for a, i in rows}


# ---------------------------------------------------------------------------------------------
# the benchmark step and its report section


def run(
    work: Path,
    world: Path,
    measure: Callable[..., dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Prepare, then run every measurement in its own process (`measure(kind, **args)`)."""
    started = time.perf_counter()
    prep = prepare(work, world, log)
    store, out = prep["store"], Path(prep["out"])
    files = {"100k": prep["seeds_100k"], "1M": prep["seeds_1m"]}
    log(f"investigate: CLI warm-up on {WARMUP_SEEDS:,} seeds")
    warmup = measure(
        "investigate_cli", store=store, seeds=prep["seeds_1k"], out=str(out / "case-1k")
    )
    cli = {}
    for name, path in files.items():
        log(f"investigate: CLI end to end, {name} seeds")
        cli[name] = measure(
            "investigate_cli", store=store, seeds=path, out=str(out / f"case-{name.lower()}")
        )
        c = cli[name]
        log(
            f"  {c['seconds']:.1f} s, {c['peak_rss_bytes'] / 2**20:,.0f} MiB, "
            f"{c['seeds'] / c['seconds']:,.0f} seeds/s"
        )
    log("investigate: the backward trace alone, in process")
    traced = measure("investigate_trace", store=store, seeds=list(files.values()))
    trace = {name: traced[Path(path).name] for name, path in files.items()}
    for name in files:
        t = trace[name]
        log(f"  {name}: {t['seconds']:.2f} s, {t['seeds'] / t['seconds']:,.0f} seeds/s")
        # the trace alone must be the CLI's trace: same deposits, same untraced satoshis
        for key in ("deposit_outputs", "untraced_sat"):
            if t[key] != cli[name][key]:
                raise AssertionError(f"{name}: {key} {t[key]} in process, {cli[name][key]} CLI")
    log(
        f"investigate: networkx baseline (graph build, validation, <= {NETWORKX_BUDGET_S:.0f} s walk)"
    )
    nx = measure("investigate_networkx", store=store, seeds=list(files.values()))
    baseline = {name: nx["cases"][Path(path).name] for name, path in files.items()}
    for name in files:
        b = baseline[name]
        log(
            f"  {name}: {b['seeds']:,} seeds in {b['seconds']:.1f} s, "
            f"{b['seeds_per_s']:,.0f} seeds/s; validation equal: {b['validation']['equal']}"
        )
    return {
        "prepare": prep["prepare"],
        "store": store,
        "seed_files": files,
        "warmup": warmup,
        "cli": cli,
        "trace": trace,
        "networkx": {k: v for k, v in nx.items() if k != "cases"},
        "baseline": baseline,
        "seconds": time.perf_counter() - started,
    }


def render(r: dict[str, Any]) -> str:
    """The "Investigations" section of docs/benchmarks.md."""

    cli, trace, base, nx = r["cli"], r["trace"], r["baseline"], r["networkx"]
    cases = list(cli)
    big = cases[-1]

    def rate(n: float, s: float) -> str:
        return f"{n / s:,.0f}"

    def nx_rate(name: str) -> float:
        return float(base[name]["seeds_per_s"])

    def vs(name: str, seeds_per_s: float) -> str:
        x = seeds_per_s / nx_rate(name)
        return f"{x:,.1f}x" if x >= 1 else f"{x:.2g}x"

    rows = []
    for label, measured in (
        ("chainsleuth investigate, {} seeds (CLI end to end)", cli),
        ("chainsleuth backward trace alone, {} seeds", trace),
    ):
        for name in cases:
            m = measured[name]
            rows.append(
                [
                    label.format(name),
                    f"{m['seeds']:,}",
                    f"{m['deposit_outputs']:,}",
                    secs(m["seconds"]),
                    mib(m["peak_rss_bytes"]),
                    rate(m["seeds"], m["seconds"]),
                    vs(name, m["seeds"] / m["seconds"]),
                ]
            )
    for name in cases:
        b = base[name]
        if b["complete"]:
            what, time_s = "all seeds walked", secs(b["seconds"])
        else:
            what = f"extrapolated from {b['seeds']:,} seeds"
            time_s = secs(b["seeds_total"] / b["seeds_per_s"]) + " (extrapolated)"
        rows.append(
            [
                f"networkx backward walk, {name} seeds ({what}; graph build not included)",
                f"{b['seeds_total']:,}",
                f"{b['deposit_outputs_total']:,}",
                time_s,
                mib(nx["peak_rss_bytes"]),
                f"{b['seeds_per_s']:,.0f}",
                "1",
            ]
        )
    rows.append(
        [
            f"networkx graph build ({nx['nodes']:,} tx nodes, {nx['edges']:,} input edges)",
            "",
            "",
            secs(nx["build_seconds"]),
            mib(nx["build_peak_rss_bytes"]),
            "",
            "",
        ]
    )
    files = table(
        [
            "case",
            "seeds on chain",
            "service clusters",
            "internal outputs skipped",
            "leads rows",
            "subpoena rows",
            "cash-out rows",
            "untraced sat",
            "files MB",
        ],
        [
            [
                name,
                f"{c['seeds_in_store']:,}",
                f"{c['service_clusters']:,}",
                f"{c['internal_outputs_skipped']:,}",
                f"{c['leads_rows']:,}",
                f"{c['subpoena_rows']:,}",
                f"{c['cashout_rows']:,}",
                f"{c['untraced_sat']:,}",
                f"{sum(c['output_bytes'].values()) / 1e6:,.0f}",
            ]
            for name, c in cli.items()
        ],
    )
    c1, t1, b1 = cli[big], trace[big], base[big]
    short = sum(t1["rows_by_hops"][:3]) / max(t1["rows"], 1)
    cluster = t1["rows_by_kind"]["cluster"] / max(t1["rows"], 1)
    e2e_ratio = (c1["seeds"] / c1["seconds"]) / nx_rate(big)
    trace_ratio = (t1["seeds"] / t1["seconds"]) / nx_rate(big)
    nx_total = nx["build_seconds"] + b1["seeds_total"] / b1["seeds_per_s"]
    val = [base[n]["validation"] for n in cases]
    n_val = sum(v["deposit_outputs"] for v in val)
    w = r["warmup"]
    prep = r["prepare"]
    out = [
        "",
        "## Investigations: 100k and 1M seeds against networkx",
        "",
        "`chainsleuth investigate` (docs/investigations.md) on the large simulated world "
        "(`simulate --scale large --seed 1`, the store of the table above), copied to "
        "`bench-output/stores/world-case`, clustered (conservative) and tagged with the world's "
        "TagPacks once (cached; "
        + (
            f"{prep['copy_seconds'] + prep['cluster_seconds'] + prep['tags_seconds']:.0f} s "
            "when built)"
            if prep
            else "built by an earlier run)"
        )
        + ". Policy haircut, 15 hops, the CLI's defaults. Seed files (`bench-output/investigate/`):",
        "",
        "- **100k**: the first 100,000 of the world's seized deposit list "
        "(`seeds/deposits.csv`); as in a real seizure most of them were never paid.",
        "- **1M**: the world's service has only 150,000 deposit addresses, so the 1M case is "
        "those 150,000 and 850,000 ordinary people's receiving addresses (`truth/addresses.csv`, "
        "wallet_kind user/customer/merchant, role receive, drawn with "
        "`numpy.random.default_rng(0).permutation`), each with on-chain history to trace back: a "
        'harsher load than a real deposit list. They join the "service" set (its clusters grow '
        "to the people's wallets), so these numbers measure speed, not accuracy "
        "(accuracy: docs/investigations.md).",
        "",
        table(
            ["case", "seeds", "deposit outputs", "time", "peak RSS", "seeds/s", "vs networkx"],
            rows,
        ),
        "",
        f"- **1M seeds end to end in minutes** (here: under an hour): "
        f"{duration(c1['seconds'])} — {met(c1['seconds'] < TARGET_1M_SECONDS)}.",
        f"- **At least {TARGET_VS_NETWORKX:.0f}x networkx** (seeds/s, 1M seeds): the trace alone "
        f"{trace_ratio:,.1f}x — {met(trace_ratio >= TARGET_VS_NETWORKX)}; the whole "
        f"investigation {e2e_ratio:,.2f}x — {met(e2e_ratio >= TARGET_VS_NETWORKX)}. "
        "The baseline only walks (no leads, subpoenas, cash-out trace, CSVs or report), so the "
        "end-to-end ratio favours it. Counting its graph build, networkx needs "
        f"{duration(nx_total)} for the 1M walk against {duration(c1['seconds'])} for the whole "
        f"chainsleuth investigation ({nx_total / c1['seconds']:,.1f}x) and "
        f"{duration(t1['setup_seconds'] + t1['seconds'])} for chainsleuth's case setup and "
        f"trace ({nx_total / (t1['setup_seconds'] + t1['seconds']):,.1f}x).",
        *(
            [
                "- **In CPU seconds** (the box is shared, so wall ratios move with its load): the "
                f"trace alone {t1['cpu_seconds']:.2f} s for the 1M seeds, the networkx walk "
                f"{b1['cpu_seconds'] * b1['seeds_total'] / b1['seeds']:.1f} s (extrapolated), "
                f"{b1['cpu_seconds'] * b1['seeds_total'] / b1['seeds'] / t1['cpu_seconds']:,.1f}x."
            ]
            if "cpu_seconds" in b1
            else []
        ),
        f"- **Same search, checked**: on {n_val} deposit outputs drawn from the two cases, the "
        "networkx walk's rows and satoshis per (seed, kind) and its dropped satoshis per seed "
        "equal chainsleuth's `trace_back`: "
        + "; ".join(
            f"{n}: {v['deposit_outputs']} outputs, {v['groups']} (seed, kind) groups, "
            f"{v['rows']:,} rows, {v['sat']:,} sat, {v['groups_differing']} differing"
            for n, v in zip(cases, val, strict=True)
        )
        + f" — {'equal' if all(v['equal'] for v in val) else 'NOT EQUAL'} (asserted).",
        "",
        "- **chainsleuth, end to end**: `python -m chainsleuth --data STORE investigate --seeds "
        "FILE -o OUT` in a child process (`bench/investigate_bench.py` via `bench.measure`), "
        "wall time and the child's peak RSS (`RUSAGE_CHILDREN`); it writes leads.csv, "
        "subpoenas.csv, cashouts.csv, case.json, report.html and report.pdf. A first run on "
        f"{WARMUP_SEEDS:,} seeds loads numba's cached code ({secs(w['seconds'])}, "
        f"{mib(w['peak_rss_bytes'])}: the fixed cost of one case) and is not counted. "
        "One run each.",
        "- **Trace alone**: in a fresh process, the deposits, stop clusters (attributed clusters "
        "outside the service), CoinJoin flags and clustering derived as `investigate()` does "
        f"({secs(t1['setup_seconds'])} for 1M, not counted), then the backward `trace_back` over "
        "every deposit output through `investigate._in_chunks`, the median of "
        f"{len(t1['runs'])} runs ({', '.join(secs(x) for x in sorted(t1['runs']))} for 1M; "
        f"{t1['chunks']} chunks of at most 65,536 seeds, one thread per core, "
        f"{t1['cpu_seconds'] / t1['seconds']:.2f} cores busy on this shared machine; "
        f"{t1['entries']:,} frontier "
        f"entries, {t1['rows']:,} rows). Its peak RSS is the process's, case setup included. "
        "The deposit count and untraced satoshis equal the CLI's case.json (asserted).",
        f"- **networkx {nx['networkx']}**: an `nx.MultiDiGraph` with one node per transaction "
        "and one edge per input, from the spending tx to the tx that created the spent output, "
        "keyed by input id and carrying the spent output's id, value and address id; coinbases "
        "and the case's CoinJoins (as `investigate()` flags them: CoinJoin-shaped txs of one "
        "wallet are not) as node attributes. Built from the store's arrays "
        f"({secs(nx['build_seconds'])}, shown apart). The walk is trace_kernel's, in pure "
        "Python over the graph (a `deque` per deposit output): stop at an output of a stop "
        "cluster, a coinbase, a CoinJoin or hop 15; otherwise split the amount over the tx's "
        "inputs in proportion to their values (`round`, half to even, as `np.rint`), drop "
        "shares below 1 % of the deposit, and stop a seed past 5,000 entries. Seed addresses in "
        "random order, each with all its deposit outputs, one core, until done or "
        f"{NETWORKX_BUDGET_S:.0f} s; seeds never paid count as seeds for both.",
        f"- **Why the ratio is small**: the walks are short. A deposit output costs "
        f"{t1['entries'] / t1['deposit_outputs']:.1f} frontier entries and "
        f"{t1['rows'] / t1['deposit_outputs']:.1f} rows ({short:.0%} of the rows end within two "
        f"hops, {cluster:.0%} at a stop cluster: an exchange's output ends the walk), so "
        f"networkx spends {b1['seconds'] / max(b1['deposit_outputs'], 1) * 1e6:.0f} us per "
        f"deposit output ({b1['seconds'] / max(b1['entries'], 1) * 1e6:.1f} us per entry) and "
        f"chainsleuth's trace {t1['seconds'] / t1['deposit_outputs'] * 1e6:.1f} us "
        f"({t1['seconds'] / t1['entries'] * 1e6:.2f} us per entry, wall; "
        f"{t1['cpu_seconds'] / t1['entries'] * 1e9:.0f} ns of CPU). The kernel does little "
        "arithmetic per entry; it waits on reads of the memory-mapped arrays (per entry its "
        "creating tx in `tx_first_output`, its address and stop flag, the tx's inputs' spent "
        "outputs and their values), where the graph has already linked each input to its "
        "funding tx. It reads them a level of the walk at a time, in ascending output id "
        "(docs/design/trace.md).",
        "",
        files,
        "",
        f"The investigation step took {duration(r['seconds'])} of this run. Cores: see "
        "Machine at the top; chainsleuth traces on both, networkx walks on one.",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m bench.investigate_bench", description=__doc__)
    p.add_argument("--work", default=str(ROOT / "bench-output"))
    p.add_argument("--render", action="store_true", help="re-render the saved results only")
    args = p.parse_args(argv)
    work = Path(args.work).resolve()
    saved = work / "investigate" / "results.json"
    if args.render:
        result = json.loads(saved.read_text())
    else:
        world, _ = simulated_world(work / "worlds", "large")
        result = run(work, world, measure, log)
        saved.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
