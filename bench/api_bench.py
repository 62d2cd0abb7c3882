"""API latency: p50 and p99 of the main lookups, served by uvicorn on loopback to N concurrent
clients in a bounded loop (issue 14); and a super-cluster's routes within the time budget.

    python -m bench.api_bench [--work bench-output] [--clients 8] [--rounds 25] [--out FILE.json]
    python -m bench.api_bench --super-cluster 2000000 [--repeat 5]   # the super-cluster only

The store is the small simulated world (seed 1), ingested, clustered (conservative) and tagged,
cached under WORK/api-store. `chainsleuth serve` runs in its own process (the real CLI, open
mode on 127.0.0.1, rate limit off); each client thread keeps one HTTP connection and makes
`--rounds` rounds, each round one request of every kind below on a key drawn at random (seed =
client number), so every client makes the same bounded number of requests. Latency is the
client's wall time per request (connection reused). `make bench` (`bench.run`) also measures
the super-cluster (`super_cluster`, 2 M addresses in one cluster; the store is built once and
cached under WORK/super-N), which `--super-cluster N` runs alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, log, secs, simulated_world, table
from bench.world import build_store

KINDS = (
    "address",
    "tx",
    "cluster",
    "neighbors",
    "expand_tx",
    "search",
)


def prepare(work: Path) -> Path:
    """The small world's store (ingested, clustered, tagged), cached."""
    data = work / "api-store"
    if (data / "tags" / "manifest.json").exists():
        return data
    world, _ = simulated_world(work / "worlds", "small")
    shutil.rmtree(data, ignore_errors=True)
    build_store(world, data)
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(data: Path, n: int = 200) -> dict[str, list[str]]:
    from chainsleuth.store.store import Store

    store = Store.open(data)
    addresses = (
        store.sql(f"SELECT address FROM addresses ORDER BY hash(address) LIMIT {n}")
        .column(0)
        .to_pylist()
    )
    txids = store.sql(f"SELECT txid FROM txs ORDER BY hash(txid) LIMIT {n}").column(0).to_pylist()
    clusters = (
        store.sql(f"SELECT DISTINCT cluster_id FROM clusters ORDER BY hash(cluster_id) LIMIT {n}")
        .column(0)
        .to_pylist()
    )
    return {"address": addresses, "tx": txids, "cluster": [str(c) for c in clusters]}


def _url(kind: str, rng: random.Random, s: dict[str, list[str]]) -> str:
    a, t, c = rng.choice(s["address"]), rng.choice(s["tx"]), rng.choice(s["cluster"])
    return {
        "address": f"/api/v1/addresses/{a}",
        "tx": f"/api/v1/txs/{t}",
        "cluster": f"/api/v1/clusters/{c}",
        "neighbors": f"/api/v1/addresses/{a}/neighbors?direction=out&limit=100",
        "expand_tx": f"/api/v1/graph/expand?node=tx:{t}&direction=out",
        "search": f"/api/v1/search?q={a[:6]}",
    }[kind]


def run(work: Path, clients: int = 8, rounds: int = 25, super_n: int = 2_000_000) -> dict[str, Any]:
    """Serve the store and measure; returns the figures (JSON-able). With `super_n`, also a
    super-cluster of that many addresses (`super_cluster`; its store is cached under `work`)."""
    import httpx

    data = prepare(work)
    samples = _samples(data)
    port = _free_port()
    cmd = [sys.executable, "-m", "chainsleuth", "--data", str(data), "serve"]
    cmd += ["--port", str(port), "--rate", "0", "--time-budget", "30"]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start: " + server.stderr.read().decode()[-2000:])
        with httpx.Client(base_url=base) as warm:  # first calls open the store and JIT-compile
            rng = random.Random(0)
            for kind in KINDS:
                warm.get(_url(kind, rng, samples), timeout=60).raise_for_status()
        lat: dict[str, list[float]] = {k: [] for k in KINDS}
        errors: list[str] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            rng = random.Random(number)
            mine: dict[str, list[float]] = {k: [] for k in KINDS}
            with httpx.Client(base_url=base, timeout=60) as c:
                for _ in range(rounds):
                    for kind in KINDS:
                        url = _url(kind, rng, samples)
                        t0 = time.perf_counter()
                        r = c.get(url)
                        mine[kind].append(time.perf_counter() - t0)
                        if r.status_code != 200:
                            errors.append(f"{r.status_code} {url}")
            with lock:
                for k in KINDS:
                    lat[k] += mine[k]

        cpu0, load0 = _cpu_s(server.pid), Path("/proc/loadavg").read_text().split()[0]
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - started
        server_cpu = _cpu_s(server.pid) - cpu0
        load = [load0, Path("/proc/loadavg").read_text().split()[0]]
    finally:
        server.terminate()
        server.wait(timeout=30)
    import numpy as np

    figures = {
        k: {
            "n": len(v),
            "p50_s": float(np.percentile(v, 50)),
            "p99_s": float(np.percentile(v, 99)),
            "max_s": float(np.max(v)),
        }
        for k, v in lat.items()
    }
    total = sum(len(v) for v in lat.values())
    return {
        "clients": clients,
        "rounds": rounds,
        "requests": total,
        "wall_s": wall,
        "requests_per_s": total / wall,
        "server_cpu_s": server_cpu,
        "server_cpu_per_request_s": server_cpu / total,
        "loadavg_start_end": load,
        "errors": errors[:20],
        "n_errors": len(errors),
        "kinds": figures,
        "store": str(data),
        "super_cluster": super_cluster(work, super_n) if super_n else None,
    }


# ------------------------------------------------------------------------------ super-cluster
COIN = 100_000_000
PER_TX = 2500  # addresses a fan-out tx pays and its consolidation merges
FIRST_MERGE = 999  # see build_super_store


def _p2wpkh(n: int) -> bytes:
    return b"\x00\x14" + n.to_bytes(20, "big")


def build_super_store(root: Path, n_addresses: int) -> Path:
    """A regtest store whose largest cluster holds about `n_addresses` addresses (cached).

    Block k+1 holds a fan-out tx (block k's coinbase paying PER_TX fresh addresses) and a
    consolidation that spends the fan-outs' outputs not spent yet plus the previous
    consolidation's output back to the wallet's first address: the multi-input rule joins every
    fan-out address into one cluster, growing it block by block. The coinbases pay one
    address each (their own clusters: the wallet's sources)."""
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.core.network import REGTEST
    from chainsleuth.parse.serialize import Tx, TxIn, TxOut
    from chainsleuth.simulate.blockfiles import BlockFileWriter
    from chainsleuth.simulate.chain import mine_block, regtest_genesis
    from chainsleuth.store.ingest import ingest_blocks_dir

    store = root / "store"
    if (store / "clusters" / "manifest.json").exists():
        return store
    shutil.rmtree(root, ignore_errors=True)
    n_fans = max(1, n_addresses // PER_TX)
    writer = BlockFileWriter(root / "blocks", REGTEST.magic)
    prev = regtest_genesis()
    writer.write(prev.serialize())
    fresh = 10**9  # address numbers: coinbase payees are 1..n_fans+2, members from here
    pending: list[tuple[bytes, int]] = []  # fan-out outpoints not consolidated yet
    each = (50 * COIN - 10_000) // PER_TX
    carry: tuple[bytes, int] | None = None  # the last consolidation's txid and value
    for k in range(n_fans + 2):
        txs = []
        if 0 < k <= n_fans:
            cb = prev.txs[0]
            outs = tuple(TxOut(each, _p2wpkh(fresh + i)) for i in range(PER_TX))
            fresh += PER_TX
            fan = Tx(2, (TxIn(cb.txid(), 0, b""),), outs, 0)
            pending += [(fan.txid(), i) for i in range(PER_TX)]
            txs.append(fan)
        if pending:
            # the super-cluster guard quarantines a tx that makes a cluster of 1,000+ addresses
            # 100x its largest input cluster: the first consolidation stays under 1,000
            take = FIRST_MERGE if carry is None else len(pending)
            ins = [TxIn(t, v, b"") for t, v in pending[:take]]
            total = each * len(ins) - 10_000
            pending = pending[take:]
            if carry is not None:
                ins.append(TxIn(carry[0], 0, b""))
                total += carry[1]
            # back to the wallet's first address (reused), so the next consolidation's carried
            # input is already a member and the cluster grows from it
            merge = Tx(2, tuple(ins), (TxOut(total, _p2wpkh(10**9)),), 0)
            carry = (merge.txid(), total)
            txs.append(merge)
        prev = mine_block(prev, k + 1, txs, _p2wpkh(k + 1), b"/api-bench/", 50 * COIN)
        writer.write(prev.serialize())
    writer.close()
    ingest_blocks_dir(root / "blocks", store)
    cluster_store(store, "conservative")
    shutil.rmtree(root / "blocks")  # the store is all the bench reads
    return store


SUPER_ROUTES = (
    "summary",
    "members_first",
    "members_next",
    "merges",
    "neighbors_in",
    "expand_in",
    "member_address",
    "search",
)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used: the server's own cost,
    which the machine's other jobs do not inflate as they do wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def super_cluster(work: Path, n_addresses: int, repeat: int = 5) -> dict[str, Any]:
    """Each super-cluster route `repeat` times, one client, under `serve`'s default time budget
    (10 s): status codes and wall times. The answer must be a 200 every time."""
    import httpx

    from chainsleuth.store.store import Store

    data = build_super_store(work / f"super-{n_addresses}", n_addresses)
    st = Store.open(data)
    row = st.sql(
        "SELECT cluster_id, count(*) AS n, min(address) AS member FROM clusters "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).to_pylist()[0]
    n_store = int(st.counts["addresses"])
    st.close()
    cid, member = int(row["cluster_id"]), str(row["member"])
    port = _free_port()
    cmd = [sys.executable, "-m", "chainsleuth", "--data", str(data), "serve", "--port", str(port)]
    cmd += ["--rate", "0"]  # the default time budget (10 s) stays
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/v1"
    times: dict[str, list[float]] = {k: [] for k in SUPER_ROUTES}
    cpu: dict[str, list[float]] = {k: [] for k in SUPER_ROUTES}
    load = [Path("/proc/loadavg").read_text().split()[0]]
    codes: dict[str, list[int]] = {k: [] for k in SUPER_ROUTES}
    facts: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            for _ in range(600):
                try:
                    if c.get("/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            first = c.get(f"/clusters/{cid}/addresses?limit=1000").json()
            if "next_cursor" not in first:  # an error body: say it
                raise RuntimeError(f"/clusters/{cid}/addresses: {first}")
            urls = {
                "summary": f"/clusters/{cid}",
                "members_first": f"/clusters/{cid}/addresses?limit=1000",
                "members_next": f"/clusters/{cid}/addresses?limit=1000&cursor={first['next_cursor']}",
                "merges": f"/clusters/{cid}/merges?limit=100",
                "neighbors_in": f"/clusters/{cid}/neighbors?direction=in&limit=100",
                "expand_in": f"/graph/expand?node=cluster:{cid}&direction=in&limit=100",
                "member_address": f"/addresses/{member}",
                "search": f"/search?q=cluster:{cid}",
            }
            for r in range(repeat + 1):  # the first round warms the server up, untimed
                for kind, url in urls.items():
                    c0, t0 = _cpu_s(server.pid), time.perf_counter()
                    resp = c.get(url)
                    took = time.perf_counter() - t0
                    used = _cpu_s(server.pid) - c0  # a budget-exceeded call runs on: undercount
                    if r == 0:
                        body = resp.json()
                        if kind == "summary":
                            facts["n_addresses"] = body.get("n_addresses")
                        if kind.startswith("members"):
                            facts[f"{kind}_total"] = body.get("total")
                        if kind == "neighbors_in":
                            facts["n_neighbors_in"] = body.get("total")
                        continue
                    times[kind].append(took)
                    cpu[kind].append(used)
                    codes[kind].append(resp.status_code)
    finally:
        load.append(Path("/proc/loadavg").read_text().split()[0])
        server.terminate()
        server.wait(timeout=30)
    return {
        "n_store_addresses": n_store,
        "cluster_id": cid,
        "cluster_size_sql": int(row["n"]),
        "repeat": repeat,
        "facts": facts,
        "routes": {
            k: {
                "codes": sorted(set(codes[k])),
                "median_s": float(sorted(v)[len(v) // 2]),
                "max_s": float(max(v)),
                "cpu_median_s": float(sorted(cpu[k])[len(v) // 2]),
            }
            for k, v in times.items()
        },
        "loadavg_start_end": load,
        "store": str(data),
    }


def render_super(r: dict[str, Any]) -> str:
    """The super-cluster part of the "API latency" section."""
    rows = [
        [
            k,
            ", ".join(map(str, v["codes"])),
            secs(v["median_s"]),
            secs(v["max_s"]),
            secs(v["cpu_median_s"]),
        ]
        for k, v in r["routes"].items()
    ]
    return (
        f"\nA super-cluster: a regtest store of {r['n_store_addresses']:,} addresses whose "
        f"largest cluster holds {r['cluster_size_sql']:,} of them (fan-outs and consolidations, "
        f"`bench.api_bench.build_super_store`), `chainsleuth serve` with its default 10 s time "
        f"budget, one client, {r['repeat']} rounds after a warm-up round; the server's CPU "
        f"seconds per request from /proc (load average {' → '.join(r['loadavg_start_end'])}). "
        f"Measured by `python -m bench.api_bench --super-cluster N`.\n\n"
        + table(["route", "status", "median wall", "max wall", "median server CPU"], rows)
        + "\n"
    )


def render(r: dict[str, Any]) -> str:
    """The "API latency" section of docs/benchmarks.md."""
    rows = [
        [k, f"{v['n']:,}", secs(v["p50_s"]), secs(v["p99_s"]), secs(v["max_s"])]
        for k, v in r["kinds"].items()
    ]
    return (
        "\n## API latency (issue 14)\n\n"
        f"`chainsleuth serve` (uvicorn, one process) on 127.0.0.1 over the small simulated "
        f"world; {r['clients']} concurrent clients, {r['rounds']} rounds each of one request "
        f"per kind (keys drawn at random): {r['requests']:,} requests in "
        f"{r['wall_s']:.1f} s ({r['requests_per_s']:,.0f}/s), {r['n_errors']} errors; the "
        f"server used {r['server_cpu_s']:.1f} CPU seconds ("
        f"{secs(r['server_cpu_per_request_s'])} a request; load average "
        f"{' → '.join(r['loadavg_start_end'])}). Measured by `python -m bench.api_bench`.\n\n"
        + table(["lookup", "requests", "p50", "p99", "max"], rows)
        + "\n"
        + (render_super(r["super_cluster"]) if r.get("super_cluster") else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(ROOT / "bench-output"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--super-cluster", type=int, default=0, metavar="N",
        help="measure a cluster of about N addresses instead of the concurrent lookups",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.super_cluster:
        log(f"api: a super-cluster of about {args.super_cluster:,} addresses")
        found = super_cluster(Path(args.work).resolve(), args.super_cluster, args.repeat)
        if args.out:
            Path(args.out).write_text(json.dumps(found, indent=2) + "\n")
        print(render_super(found))
        print(json.dumps(found, indent=2))
        return 0 if all(v["codes"] == [200] for v in found["routes"].values()) else 1
    log(f"api: {args.clients} clients x {args.rounds} rounds x {len(KINDS)} kinds")
    result = run(Path(args.work).resolve(), args.clients, args.rounds, super_n=0)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(render(result))
    print(text)
    return 0 if result["n_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
