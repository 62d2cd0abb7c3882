"""Address resolution alone: the sharded on-disk index (store.addrindex) against the single
in-memory table (store.hashindex.HashIndex) it replaced, on the same batches.

    python -m bench.addrindex_bench --addresses 4000000 --batch 250000 --reuse 0.5 --out DIR

Both indexes first take `--addresses` random 43-byte keys (in batches), then resolve `--rounds`
more batches of `--batch` keys, of which `--reuse` are drawn from the keys already stored (the
rest new); the sharded index merges its delta after the fill, so the base holds the stored keys.
Prints one JSON line per index: CPU and wall seconds per timed batch, the table's bytes, and
its resident bytes (the in-memory table; for the sharded one the most shard bytes
mapped at once, and the delta's table). Keys are uniform random, so there is no locality to help either index.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from chainsleuth.store.addrindex import AddressIndex
from chainsleuth.store.hashindex import HashIndex
from chainsleuth.store.layout import ADDRESS_KEY_WIDTH


def _batches(args: argparse.Namespace) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(args.seed)
    n_new = int(args.batch * (1 - args.reuse))
    total = args.addresses + args.rounds * n_new
    universe = rng.integers(0, 256, (total, ADDRESS_KEY_WIDTH), dtype=np.uint8)
    timed = []
    for r in range(args.rounds):
        lo = args.addresses + r * n_new
        reused = rng.integers(0, lo, args.batch - n_new)
        rows = np.concatenate([reused, np.arange(lo, lo + n_new)])
        timed.append(universe[rng.permutation(rows)])
    return universe, timed


def run(index: Any, args: argparse.Namespace, universe: np.ndarray, timed: list) -> dict:
    stored = np.zeros((0, ADDRESS_KEY_WIDTH), np.uint8)
    step = max(args.batch, 1 << 20)
    for lo in range(0, args.addresses, step):  # fill
        keys = universe[lo : lo + step]
        _, new_rows = index.lookup_or_add(keys, stored, stored.shape[0])
        stored = np.concatenate([stored, keys[new_rows]])
    if isinstance(index, AddressIndex):
        index.merge()  # steady state: the base holds the chain, the delta the recent ids
        index.peak_mapped_bytes = index.peak_delta_bytes = 0  # count the timed batches only
    cpu, wall = [], []
    for keys in timed:
        c, t = time.process_time(), time.perf_counter()
        ids, new_rows = index.lookup_or_add(keys, stored, stored.shape[0])
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
        stored = np.concatenate([stored, keys[new_rows]])
    if isinstance(index, AddressIndex):
        resident = {"shard_mapped": index.peak_mapped_bytes, "delta": index.peak_delta_bytes}
    else:
        resident = {"table": int(index.nbytes)}
    return {
        "index": type(index).__name__,
        "addresses": int(stored.shape[0]),
        "batch": args.batch,
        "reuse": args.reuse,
        "cpu_s_per_batch_median": round(float(np.median(cpu)), 4),
        "wall_s_per_batch_median": round(float(np.median(wall)), 4),
        "table_bytes": int(index.nbytes),
        "resident_bytes": resident,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addresses", type=int, default=4_000_000)
    p.add_argument("--batch", type=int, default=250_000)
    p.add_argument("--reuse", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="where the shards go (default: temp)")
    args = p.parse_args(argv)
    universe, timed = _batches(args)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        for index in (HashIndex(), AddressIndex.open(Path(tmp), universe[:0])):
            print(json.dumps(run(index, args, universe, timed)), flush=True)


if __name__ == "__main__":
    main()
