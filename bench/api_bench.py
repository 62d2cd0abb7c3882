"""API latency: p50 and p99 of the main lookups, served by uvicorn on loopback to N concurrent
clients in a bounded loop (issue 14).

    python -m bench.api_bench [--work bench-output] [--clients 8] [--rounds 25] [--out FILE.json]

The store is the small simulated world (seed 1), ingested, clustered (conservative) and tagged,
cached under WORK/api-store. `chainsleuth serve` runs in its own process (the real CLI, open
mode on 127.0.0.1, rate limit off); each client thread keeps one HTTP connection and makes
`--rounds` rounds, each round one request of every kind below on a key drawn at random (seed =
client number), so every client makes the same bounded number of requests. Latency is the
client's wall time per request (connection reused).
"""

from __future__ import annotations

import argparse
import json
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


def run(work: Path, clients: int = 8, rounds: int = 25) -> dict[str, Any]:
    """Serve the store and measure; returns the figures (JSON-able)."""
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

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - started
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
        "errors": errors[:20],
        "n_errors": len(errors),
        "kinds": figures,
        "store": str(data),
    }


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
        f"{r['wall_s']:.1f} s ({r['requests_per_s']:,.0f}/s), {r['n_errors']} errors. "
        "Measured by `python -m bench.api_bench`.\n\n"
        + table(["lookup", "requests", "p50", "p99", "max"], rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(ROOT / "bench-output"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    log(f"api: {args.clients} clients x {args.rounds} rounds x {len(KINDS)} kinds")
    result = run(Path(args.work).resolve(), args.clients, args.rounds)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(render(result))
    print(text)
    return 0 if result["n_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
