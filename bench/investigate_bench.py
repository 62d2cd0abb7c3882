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
import os
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

ROOT = Path(__file__).resolve().parents[1]
SEEDS_SMALL = 100_000
SEEDS_LARGE = 1_000_000
#: The 1M case's extra seeds: ordinary people's receiving addresses.
PEOPLE_KINDS = ("user", "customer", "merchant")
PEOPLE_ROLE = "receive"
NETWORKX_BUDGET_S = 75.0  # seconds of the networkx walk (at least NETWORKX_MIN_SEEDS seeds)
NETWORKX_MIN_SEEDS = 1_000
VALIDATE_SEEDS = 300
#: Targets from the issue: the 1M case in minutes, and at least 50x networkx (seeds/s).
TARGET_1M_SECONDS = 60 * 60  # "minutes, not hours": under an hour
TARGET_VS_NETWORKX = 50.0


def _store_key(store_dir: Path) -> dict[str, Any]:
    manifest = json.loads((store_dir / "manifest.json").read_text())
    return {"tip": manifest.get("tip"), "counts": manifest.get("counts")}


def prepare(work: Path, world: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The case store (copied, clustered, tagged; cached) and the two seed files."""
    source = work / "stores" / "world"
    case = work / "stores" / "world-case"
    out = work / "investigate"
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "prepared.json"
    key = {"source": _store_key(source), "world": json.loads((world / "world.json").read_text())}
    prepared = json.loads(marker.read_text()) if marker.exists() else {}
    if prepared.get("key") != key or not (case / "manifest.json").exists():
        from chainsleuth.cluster.engine import cluster_store
        from chainsleuth.tags.attribution import recompute_cluster_tags
        from chainsleuth.tags.imports import import_tagpacks

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
        import_tagpacks(case, [world / "tags"])
        recompute_cluster_tags(case)
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
    if not small.exists() or not large.exists():
        log("investigate: writing the seed files")
        _write_seeds(world, small, large)
    return {
        "store": str(case),
        "seeds_100k": str(small),
        "seeds_1m": str(large),
        "out": str(out),
        "prepare": {k: v for k, v in prepared.items() if k != "key"},
    }


def _write_seeds(world: Path, small: Path, large: Path) -> None:
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
    if people.shape[0] < n_extra:
        raise RuntimeError(f"only {people.shape[0]:,} receiving addresses; need {n_extra:,}")
    drawn = people[np.random.default_rng(0).permutation(people.shape[0])[:n_extra]]
    for path, rows in ((small, service[:SEEDS_SMALL]), (large, service + drawn.tolist())):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("address\n" + "\n".join(rows) + "\n")
        os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# the case's inputs, exactly as investigate() derives them


def case_inputs(store_dir: Path, seeds_csv: Path) -> dict[str, Any]:
    """Deposit outputs (grouped by address), their groups and the trace options of the case.

    The same steps as `chainsleuth.cases.investigate.investigate` up to its backward trace.
    """
    from chainsleuth.cases import investigate as inv
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.store.layout import NONE32
    from chainsleuth.store.store import Store
    from chainsleuth.trace.exposure import cluster_attribution

    store_dir = Path(store_dir)
    store = Store.open(store_dir)
    chain = inv._Chain(store, inv.load_prices(inv.DEFAULT_PRICES))
    addresses = inv.read_seed_addresses(seeds_csv)
    seed_ids = inv._seed_ids(store, addresses)
    cluster_of = np.asarray(Clusters(store_dir).cluster_of, np.int64)
    n_addresses = cluster_of.shape[0]
    service_clusters, _, _ = inv._service_clusters(store, chain, cluster_of, seed_ids)
    service_mask = np.zeros(max(n_addresses, 1), np.bool_)
    service_mask[service_clusters] = True
    in_service = service_mask[cluster_of]
    attribution = {
        c: v
        for c, v in cluster_attribution(store_dir).items()
        if 0 <= c < n_addresses and not service_mask[c]
    }
    stop = np.zeros(max(n_addresses, 1), np.bool_)
    stop[np.array(sorted(attribution), np.int64)] = True
    is_coinjoin, _ = inv._coinjoins(store_dir, store.counts["txs"])

    out_addr = chain.output_address.astype(np.int64)
    out_addr[out_addr == int(NONE32)] = -1
    is_seed_addr = np.zeros(n_addresses, np.bool_)
    is_seed_addr[seed_ids] = True
    pays_seed = (out_addr >= 0) & is_seed_addr[np.maximum(out_addr, 0)]
    seed_outputs = np.flatnonzero(pays_seed).astype(np.int64)
    creating = np.searchsorted(chain.tx_first_output, seed_outputs, side="right") - 1
    input_first = np.asarray(store.array("tx_first_input")).astype(np.int64)
    input_addr = np.asarray(store.array("input_address")).astype(np.int64)
    input_in_service = np.zeros(input_addr.shape[0], np.bool_)
    ok = input_addr != int(NONE32)
    input_in_service[ok] = in_service[input_addr[ok]]
    internal_tx = np.zeros(store.counts["txs"], np.bool_)
    if input_addr.shape[0]:
        internal_tx[:] = np.add.reduceat(input_in_service.astype(np.int64), input_first) > 0
    deposits = seed_outputs[~internal_tx[creating]]
    deposits = deposits[np.lexsort((deposits, out_addr[deposits]))]
    options: dict[str, Any] = {
        "policy": "haircut",
        "max_hops": inv.DEFAULT_MAX_HOPS,
        "stop_clusters": stop,
        "is_coinjoin": is_coinjoin,
        "cluster_of": cluster_of,
        "max_entries_per_seed": inv.MAX_ENTRIES_PER_SEED,
        "min_fraction": inv.MIN_FRACTION,
    }
    return {
        "store": store,
        "addresses": addresses,
        "seed_ids": seed_ids,
        "deposits": deposits,
        "group": out_addr[deposits],
        "out_addr": out_addr,
        "stop_address": stop[cluster_of],
        "options": options,
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


def measure_trace(store: str, seeds: list[str]) -> dict[str, Any]:
    """The backward trace alone, in process, as investigate() runs it (per seed file)."""
    from chainsleuth.cases.investigate import _in_chunks
    from chainsleuth.trace.engine import trace_back

    out: dict[str, Any] = {}
    for path in seeds:
        t = time.perf_counter()
        case = case_inputs(Path(store), Path(path))
        setup_s = time.perf_counter() - t
        deposits, group, options = case["deposits"], case["group"], case["options"]
        trace_back(Path(store), deposits[:16], **options)  # numba's cached code, loaded once
        cpu0, _ = _rusage()
        t = time.perf_counter()
        n_rows = n_entries = untraced = chunks = 0
        for result in _in_chunks(partial(trace_back, Path(store)), deposits, group, **options):
            n_rows += len(result)
            n_entries += int(result.entry_parent.shape[0])
            untraced += int(result.dropped.sum())
            chunks += 1
        seconds = time.perf_counter() - t
        cpu1, rss = _rusage()
        out[Path(path).name] = {
            "seeds": len(case["addresses"]),
            "seeds_in_store": int(case["seed_ids"].shape[0]),
            "deposit_outputs": int(deposits.shape[0]),
            "setup_seconds": setup_s,
            "seconds": seconds,
            "cpu_seconds": cpu1 - cpu0,
            "rows": n_rows,
            "entries": n_entries,
            "chunks": chunks,
            "untraced_sat": untraced,
            "peak_rss_bytes": rss,
        }
    return out


KIND_NAMES = ("cluster", "coinbase", "coinjoin", "max_hops", "unspent", "limit", "seed_limit")
_CLUSTER, _COINBASE, _COINJOIN, _MAX_HOPS, _SEED_LIMIT = 0, 1, 2, 3, 6


def build_graph(store: Any, is_coinjoin: np.ndarray) -> Any:
    """networkx MultiDiGraph of the chain: a node per tx, an edge per input from the spending tx
    to the tx that created the spent output, keyed by input id, with the spent output's id,
    value and address id (-1 when none). Coinbase and CoinJoin txs carry a node attribute."""
    import networkx as nx

    from chainsleuth.store.layout import NONE32

    first_in = np.asarray(store.array("tx_first_input")).astype(np.int64)
    first_out = np.asarray(store.array("tx_first_output")).astype(np.int64)
    spent = np.asarray(store.array("input_spent_output")).astype(np.int64)
    value = np.asarray(store.array("output_value"))
    address = np.asarray(store.array("output_address")).astype(np.int64)
    address[address == int(NONE32)] = -1
    n_tx, n_in = first_in.shape[0], spent.shape[0]
    spender = np.repeat(np.arange(n_tx), np.diff(np.append(first_in, n_in)))
    has = np.flatnonzero(spent >= 0)
    funding = np.searchsorted(first_out, spent[has], side="right") - 1
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n_tx))
    coinbase = np.flatnonzero(spent[np.minimum(first_in, max(n_in - 1, 0))] < 0)
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
) -> tuple[dict[int, list[int]], int]:
    """One seed output's backward haircut walk over the graph, with trace_kernel's rules.

    Returns ({kind: [rows, satoshis]}, dropped satoshis). A frontier entry is (the tx that
    created the traced output, the amount, hops, the output's address id)."""
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
    return totals, dropped


def measure_networkx(
    store: str,
    seeds: str,
    seeds_small: str,
    budget_s: float = NETWORKX_BUDGET_S,
    min_seeds: int = NETWORKX_MIN_SEEDS,
    n_validate: int = VALIDATE_SEEDS,
) -> dict[str, Any]:
    """Build the graph, check the walk against chainsleuth's trace on a sample of deposit
    outputs, then time it on seed addresses drawn from the seed file until the budget is spent."""
    from chainsleuth.cases.investigate import _seed_ids, read_seed_addresses
    from chainsleuth.trace.engine import trace_back

    case = case_inputs(Path(store), Path(seeds))
    st, options, deposits = case["store"], case["options"], case["deposits"]
    value = np.asarray(st.array("output_value"))
    first_out = np.asarray(st.array("tx_first_output"))
    stop_address = case["stop_address"].tolist()
    walk = partial(
        walk_networkx,
        stop_address=stop_address,
        max_hops=options["max_hops"],
        min_fraction=options["min_fraction"],
        max_entries_per_seed=options["max_entries_per_seed"],
    )

    cpu0, _ = _rusage()
    t = time.perf_counter()
    g = build_graph(st, options["is_coinjoin"])
    build_s = time.perf_counter() - t
    cpu1, build_rss = _rusage()
    n_nodes, n_edges = g.number_of_nodes(), g.number_of_edges()

    # validation: half the sample from the service's deposits (the 100k file), half the rest
    rng = np.random.default_rng(1)
    service_ids = _seed_ids(st, read_seed_addresses(Path(seeds_small)))
    is_service = np.isin(case["group"], service_ids)
    half = n_validate // 2
    sample = np.sort(
        np.concatenate(
            [
                rng.choice(deposits[is_service], min(half, int(is_service.sum())), replace=False),
                rng.choice(
                    deposits[~is_service], min(half, int((~is_service).sum())), replace=False
                ),
            ]
        )
    )
    ours = trace_back(Path(store), sample, **options)
    expected: dict[tuple[int, int], list[int]] = {}
    for s, k, a in zip(ours.seed.tolist(), ours.kind.tolist(), ours.amount.tolist(), strict=True):
        row = expected.setdefault((int(sample[s]), k), [0, 0])
        row[0] += 1
        row[1] += int(a)
    got: dict[tuple[int, int], list[int]] = {}
    mismatched_dropped = 0
    creators = np.searchsorted(first_out, sample, side="right") - 1
    for i, (o, t0) in enumerate(zip(sample.tolist(), creators.tolist(), strict=True)):
        totals, dropped = walk(g, t0, int(value[o]))
        for k, row in totals.items():
            got[(o, k)] = row
        mismatched_dropped += int(dropped != int(ours.dropped[i]))
    agree = got == expected and mismatched_dropped == 0
    kinds: dict[str, int] = {}
    for (_, k), (_, a) in expected.items():
        kinds[KIND_NAMES[k]] = kinds.get(KIND_NAMES[k], 0) + a
    validation = {
        "seeds": int(sample.shape[0]),
        "groups": len(expected),
        "rows": len(ours),
        "equal": agree,
        "groups_differing": sum(
            1 for key in expected.keys() | got.keys() if got.get(key) != expected.get(key)
        ),
        "dropped_differing": mismatched_dropped,
        "sat_by_kind": kinds,
    }
    if not agree:
        raise AssertionError(f"networkx walk disagrees with chainsleuth's trace: {validation}")

    # timing: seed addresses in random order, each with all of its deposit outputs
    addresses = case["addresses"]
    ids = _address_ids(st, addresses)
    span_of = dict(zip(*_group_bounds(case["group"]), strict=True))
    n_seeds = n_outputs = n_rows = 0
    t = time.perf_counter()
    elapsed = 0.0
    for i in np.random.default_rng(2).permutation(len(addresses)).tolist():
        n_seeds += 1
        span = span_of.get(ids.get(addresses[i], -1))
        if span is not None:
            outputs = deposits[span[0] : span[1]]
            creators = np.searchsorted(first_out, outputs, side="right") - 1
            for o, t0 in zip(outputs.tolist(), creators.tolist(), strict=True):
                totals, _ = walk(g, t0, int(value[o]))
                n_outputs += 1
                n_rows += sum(r[0] for r in totals.values())
        if n_seeds % 64 == 0:
            elapsed = time.perf_counter() - t
            if elapsed >= budget_s and n_seeds >= min_seeds:
                break
    elapsed = time.perf_counter() - t
    return {
        "networkx": __import__("networkx").__version__,
        "nodes": n_nodes,
        "edges": n_edges,
        "build_seconds": build_s,
        "build_cpu_seconds": cpu1 - cpu0,
        "build_peak_rss_bytes": build_rss,
        "validation": validation,
        "seeds": n_seeds,
        "deposit_outputs": n_outputs,
        "rows": n_rows,
        "seconds": elapsed,
        "seeds_per_s": n_seeds / elapsed,
        "outputs_per_s": n_outputs / elapsed,
        "peak_rss_bytes": _rusage()[1],
    }


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


def main(argv: list[str] | None = None) -> int:
    from bench.run import ROOT as _root
    from bench.run import log, simulated_world

    p = argparse.ArgumentParser(prog="python -m bench.investigate_bench")
    p.add_argument("--work", default=str(_root / "bench-output"))
    args = p.parse_args(argv)
    work = Path(args.work).resolve()
    world, _ = simulated_world(work / "worlds", "large")
    print(json.dumps(prepare(work, world, log), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
