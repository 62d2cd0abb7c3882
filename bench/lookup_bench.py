"""Cold `address` and `tx` lookup latency on stores of increasing size: it must stay flat.

    python -m bench.lookup_bench WORLD_DIR [WORLD_DIR ...] [--n 300] [--out FILE.json]

Each WORLD_DIR is a `chainsleuth simulate` output (or any directory with `blocks/`); its store
is ingested into WORLD_DIR/bench-store unless already there. For each store, `--n` addresses and
txids are drawn at random (seed 1), and each lookup is timed **cold**: every file of the store is
evicted from the page cache first (`posix_fadvise(DONTNEED)`, no root needed) and the store is
opened anew, as a fresh `chainsleuth address ADDR` process would. Measured: what
`chainsleuth address` and `chainsleuth tx` call (`lookups.address_info`, `lookups.transaction`),
plus the full scan these replaced (`np.flatnonzero(output_address == id)` over the address key
array and the outputs), on a few addresses, as the baseline of the same run. Prints one JSON
object (and writes it to `--out`).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import evict, quantiles


def measure(world: Path, n: int, n_scan: int) -> dict[str, Any]:
    from chainsleuth.store.ingest import ingest_blocks_dir
    from chainsleuth.store.lookups import address_info, transaction
    from chainsleuth.store.store import Store

    data = world / "bench-store"
    if not (data / "manifest.json").exists():
        ingest_blocks_dir(world / "blocks", data)
    store = Store.open(data)
    rng = random.Random(1)
    n_addr, n_tx = store.counts["addresses"], store.counts["txs"]
    addresses = [store.address_of(rng.randrange(n_addr)) for _ in range(n)]
    txids = [bytes(store.graph.tx_txid[rng.randrange(n_tx)][::-1]).hex() for _ in range(n)]
    address_info(store, addresses[0])  # compile the numba kernels outside the timings
    result: dict[str, Any] = {"world": str(world), **store.counts}
    for name, items, call in (
        ("address", addresses, address_info),
        ("tx", txids, transaction),
    ):
        times = []
        for item in items:
            evict(data)
            t0 = time.perf_counter()
            call(Store.open(data), item)
            times.append(time.perf_counter() - t0)
        result[name] = quantiles(times)
    scans = []
    for item in addresses[:n_scan]:
        evict(data)
        t0 = time.perf_counter()
        s = Store.open(data)
        address_id = s.address_id_of(item)
        keys = s.graph.address_key  # the old lookup: scan every key ...
        (keys == keys[address_id]).all(axis=1).nonzero()
        np.flatnonzero(s.graph.output_address == address_id)  # ... every output
        scans.append(time.perf_counter() - t0)
    result["address_full_scan"] = quantiles(scans)
    result["store_bytes"] = {
        part: sum(p.stat().st_size for p in (data / part).rglob("*") if p.is_file())
        for part in ("arrays", "tables", "index", "lookup")
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("worlds", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--n-scan", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [measure(w, args.n, args.n_scan) for w in args.worlds]
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
