"""Which files of a store an operation reads when cold, and how many pages of each.

Evicts the store from the page cache (`bench.common.evict`), runs the operation, then asks
the kernel (`mincore` on a fresh read-only map of each file) which pages of each file are
resident: what the operation read, readahead included, per file. With the process's major
faults and `read_bytes` (/proc/self/io) beside it. Pages a writer dirtied are counted too
(they are resident); files the operation created are listed as new.

    python -m bench.page_touch update BLOCKS DATA [--blocks 3]    # cold one-block updates
    python -m bench.page_touch update BLOCKS DATA --blocks 5 --warm 5   # then warm ones
    python -m bench.page_touch address DATA [--n 20]              # cold `address` lookups
    python -m bench.page_touch tx DATA [--n 20]                   # cold `tx` lookups
    python -m bench.page_touch cluster DATA [--n 20]              # cold `cluster-of` (by id)

For an update the block is appended first, the store evicted, then only `cluster_store`
measured (what the one-block update bench's CPU seconds time). `--warm N`: then N more
updates as `bench.scale update` runs its warm ones (nothing evicted): what each read is the
pages of each file resident after it and not before it (`grown`), taken after the block's
ingest, so the ingest's own pages are not charged to the update.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import mmap
import os
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import evict, log

PAGE = os.sysconf("SC_PAGE_SIZE")
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_pages(path: Path) -> int:
    """Pages of `path` in the page cache now (mincore on a private read-only map)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as f:
        # a private (copy-on-write) map: writable, so ctypes can take its address; never written
        mm = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        n = (size + PAGE - 1) // PAGE
        vec = (ctypes.c_ubyte * n)()
        anchor = ctypes.c_char.from_buffer(mm)
        start = ctypes.addressof(anchor)
        rc = _libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(size), vec)
        del anchor
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"mincore {path}")
        return int(np.count_nonzero(np.frombuffer(bytes(vec), np.uint8) & 1))
    finally:
        mm.close()


def snapshot(data: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (resident pages, file pages)} for every file under `data`."""
    out = {}
    for p in sorted(Path(data).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(data))] = (resident_pages(p), -(-p.stat().st_size // PAGE))
    return out


def _read_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    return 0


def touched(data: Path, op: Callable[[], Any]) -> dict[str, Any]:
    """Evict `data`, run `op`, and report what it read: pages per file, faults, bytes."""
    before_files = {str(p.relative_to(data)) for p in Path(data).rglob("*") if p.is_file()}
    evict(data)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    b0 = _read_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    op()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    snap = snapshot(data)
    files = {
        k: {"pages": v[0], "file_pages": v[1], "new": k not in before_files}
        for k, v in snap.items()
        if v[0]
    }
    return {
        "seconds": round(wall, 4),
        "cpu_seconds": round(cpu, 4),
        "sys_seconds": round(r1.ru_stime - r0.ru_stime, 4),
        "major_faults": r1.ru_majflt - r0.ru_majflt,
        "minor_faults": r1.ru_minflt - r0.ru_minflt,
        "read_bytes": _read_bytes() - b0,
        "pages_old_files": sum(f["pages"] for f in files.values() if not f["new"]),
        "files": dict(sorted(files.items(), key=lambda kv: -kv[1]["pages"])),
    }


def grown(data: Path, op: Callable[[], Any]) -> dict[str, Any]:
    """Run `op` without evicting anything and report the pages of each file that became
    resident during it (read from storage, readahead included, or written), with the process's
    major faults and `read_bytes` beside them."""
    before = snapshot(data)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    b0 = _read_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    op()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    read = _read_bytes() - b0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    files = {}
    for k, (pages, file_pages) in snapshot(data).items():
        old = before.get(k)
        more = pages - (old[0] if old else 0)
        if more > 0:
            files[k] = {"pages": more, "file_pages": file_pages, "new": old is None}
    return {
        "seconds": round(wall, 4),
        "cpu_seconds": round(cpu, 4),
        "major_faults": r1.ru_majflt - r0.ru_majflt,
        "read_bytes": read,
        "pages_old_files": sum(f["pages"] for f in files.values() if not f["new"]),
        "files": dict(sorted(files.items(), key=lambda kv: -kv[1]["pages"])),
    }


def update(blocks: Path, data: Path, n: int, warm: int = 0) -> list[dict[str, Any]]:
    from bench.cluster_update_bench import _cluster, _one_block

    out = []
    for i in range(n + warm):
        if i >= n:
            if _one_block(blocks, data) != 1:
                raise SystemExit(f"{blocks}: no block after the store's tip")
            res = grown(data, lambda: _cluster(data, "conservative", None))
            res["warm"] = True
            log(
                f"update (warm): {res['seconds']} s, {res['read_bytes']:,} B read, "
                f"{res['pages_old_files']} pages of old files"
            )
            out.append(res)
            continue
        if _one_block(blocks, data) != 1:
            raise SystemExit(f"{blocks}: no block after the store's tip")
        res = touched(data, lambda: _cluster(data, "conservative", None))
        log(
            f"update: {res['seconds']} s, cpu {res['cpu_seconds']} s, {res['major_faults']} majflt, "
            f"{res['pages_old_files']} pages of old files"
        )
        out.append(res)
    return out


def address(data: Path, n: int, seed: int = 1) -> list[dict[str, Any]]:
    from chainsleuth.store.lookups import address_info
    from chainsleuth.store.store import Store

    store = Store.open(data)
    rng = random.Random(seed)
    addrs = [store.address_of(rng.randrange(store.counts["addresses"])) for _ in range(n)]
    address_info(store, addrs[0])  # numba's cached code loaded outside the measurement
    del store  # unmapped: eviction cannot drop pages a live mapping holds
    gc.collect()
    out = []
    for a in addrs:
        out.append(touched(data, lambda a=a: address_info(Store.open(data), a)))
    return out


def tx(data: Path, n: int, seed: int = 1) -> list[dict[str, Any]]:
    from chainsleuth.store.lookups import transaction
    from chainsleuth.store.store import Store

    store = Store.open(data)
    rng = random.Random(seed)
    n_tx = store.counts["txs"]
    txids = [bytes(store.graph.tx_txid[rng.randrange(n_tx)][::-1]).hex() for _ in range(n)]
    transaction(store, txids[0])  # numba's cached code loaded outside the measurement
    store.close()
    del store
    gc.collect()

    def one(txid: str) -> None:
        s = Store.open(data)
        transaction(s, txid)
        s.close()  # unmapped before the next eviction

    out = []
    for t in txids:
        out.append(touched(data, lambda t=t: one(t)))
        gc.collect()
    return out


def cluster(data: Path, n: int, seed: int = 1) -> list[dict[str, Any]]:
    """Cold `cluster_summary_by_id` (what `cluster-of` and the API's clusters/{id} run) on `n`
    clusters of 2 to 1,000 addresses drawn as `bench.cluster_reads` draws them."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.cluster.summary import cluster_summary_by_id

    ids = np.asarray(Clusters(data).cluster_of)
    sizes = np.bincount(ids)
    pool = np.flatnonzero((sizes >= 2) & (sizes <= 1000))
    picked = np.random.default_rng(seed).choice(pool, size=min(n, pool.shape[0]), replace=False)
    del ids
    cluster_summary_by_id(data, int(picked[0]))  # numba's cached code loaded outside
    gc.collect()
    out = []
    for cid in picked.tolist():
        res = touched(data, lambda c=cid: cluster_summary_by_id(data, c))
        res["cluster_size"] = int(sizes[cid])
        out.append(res)
        gc.collect()
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and max of pages, faults and bytes over the runs, and the files most read."""
    keys = ("pages_old_files", "major_faults", "read_bytes", "cpu_seconds", "seconds")
    out: dict[str, Any] = {"n": len(runs)}
    for k in keys:
        v = np.asarray([r[k] for r in runs], np.float64)
        out[k] = {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))}
        out[k]["max"] = float(v.max())
    per_file: dict[str, list[int]] = {}
    for r in runs:
        for name, f in r["files"].items():
            per_file.setdefault(name.split("/height_range=")[0], []).append(f["pages"])
    out["pages_by_file_group"] = {
        k: {"runs": len(v), "median": float(np.median(v)), "max": max(v)}
        for k, v in sorted(per_file.items(), key=lambda kv: -sum(kv[1]))
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    u = sub.add_parser("update")
    u.add_argument("blocks", type=Path)
    u.add_argument("data", type=Path)
    u.add_argument("--blocks", dest="n", type=int, default=3)
    u.add_argument("--warm", type=int, default=0, help="then this many updates, not evicted")
    a = sub.add_parser("address")
    a.add_argument("data", type=Path)
    a.add_argument("--n", type=int, default=20)
    for name in ("tx", "cluster"):
        q = sub.add_parser(name)
        q.add_argument("data", type=Path)
        q.add_argument("--n", type=int, default=20)
        q.add_argument("--summary", action="store_true", help="medians and maxima only")
    args = p.parse_args()
    if args.what == "update":
        res: Any = update(args.blocks, args.data, args.n, args.warm)
    elif args.what == "address":
        res = address(args.data, args.n)
    else:
        res = (tx if args.what == "tx" else cluster)(args.data, args.n)
        if args.summary:
            res = summarize(res)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
