"""Which files of a store an operation reads when cold, and how many pages of each.

Evicts the store from the page cache (`bench.common.evict`), runs the operation, then asks
the kernel (`mincore` on a fresh read-only map of each file) which pages of each file are
resident: what the operation read, readahead included, per file. With the process's major
faults and `read_bytes` (/proc/self/io) beside it. Pages a writer dirtied are counted too
(they are resident); files the operation created are listed as new.

    python -m bench.page_touch update BLOCKS DATA [--blocks 3]    # cold one-block updates
    python -m bench.page_touch address DATA [--n 20]              # cold `address` lookups

For an update the block is appended first, the store evicted, then only `cluster_store`
measured (what the one-block update bench's CPU seconds time).
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


def update(blocks: Path, data: Path, n: int) -> list[dict[str, Any]]:
    from bench.cluster_update_bench import _cluster, _one_block

    out = []
    for _ in range(n):
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    u = sub.add_parser("update")
    u.add_argument("blocks", type=Path)
    u.add_argument("data", type=Path)
    u.add_argument("--blocks", dest="n", type=int, default=3)
    a = sub.add_parser("address")
    a.add_argument("data", type=Path)
    a.add_argument("--n", type=int, default=20)
    args = p.parse_args()
    res = (
        update(args.blocks, args.data, args.n)
        if args.what == "update"
        else address(args.data, args.n)
    )
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
