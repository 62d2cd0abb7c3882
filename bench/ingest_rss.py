"""Ingest one blocks directory into a fresh store and say where its resident memory went.

    python -m bench.ingest_rss BLOCKS_DIR DATA_DIR [DELTA_MAX]

Prints one JSON line: wall and CPU seconds, tx/s, peak RSS (`ru_maxrss`), the peaks of the
anonymous and file-backed parts of the resident set (`RssAnon`, `RssFile` of /proc/self/status,
sampled every 20 ms), and the address index's own bytes: the table's size and, for the sharded
index (store.addrindex), the most shard bytes it had mapped at once and its in-memory delta's
largest table. Works against any checkout
of chainsleuth on PYTHONPATH (the numbers before and after a change come from the same script).
A tiny warm-up ingest first loads numba's cached machine code.

DELTA_MAX (sharded index only) sets `addrindex.DELTA_MAX`, the ids the in-memory delta holds
before it is merged into the on-disk base. A small chain never fills the production value
(2^26), so its delta would hold every address; 2^26 / 1.4 G ≈ 1/21 of mainnet's addresses, and
the same fraction of a small chain's addresses shows the base at work as it is at mainnet.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.measure import NBITCOIN


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def main(blocks_dir: str, data_dir: str, delta_max: int | None = None) -> dict[str, Any]:
    from chainsleuth.store import writer as writer_mod

    if delta_max is not None:
        from chainsleuth.store import addrindex

        addrindex.DELTA_MAX = delta_max
    from chainsleuth.store.ingest import ingest_blocks_dir

    warm = Path(data_dir + "-warmup")
    shutil.rmtree(warm, ignore_errors=True)
    ingest_blocks_dir(NBITCOIN, warm)
    shutil.rmtree(warm, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)

    seen: dict[str, Any] = {}
    close = writer_mod.StoreWriter.close

    def close_and_note(self: Any) -> None:
        index = self.addresses
        if hasattr(index, "merge"):
            index.merge()  # what the save that follows does first: the base's full size
        seen["index_table_bytes"] = int(index.nbytes)
        seen["index_peak_mapped_bytes"] = getattr(index, "peak_mapped_bytes", None)
        seen["index_peak_delta_bytes"] = getattr(index, "peak_delta_bytes", None)
        seen["index_kind"] = type(index).__name__
        close(self)

    writer_mod.StoreWriter.close = close_and_note  # type: ignore[method-assign]
    peaks = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            for k, v in _status().items():
                peaks[k] = max(peaks[k], v)

    sampler = threading.Thread(target=sample, daemon=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    sampler.start()
    t = time.perf_counter()
    report = ingest_blocks_dir(Path(blocks_dir), Path(data_dir))
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {
        "blocks_dir": blocks_dir,
        "n_txs": report.n_txs,
        "n_outputs": report.n_outputs,
        "n_addresses": report.n_new_addresses,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "tx_per_s": round(report.n_txs / wall),
        "peak_rss_bytes": r1.ru_maxrss * 1024,
        "peak_sampled": peaks,
        **seen,
    }


if __name__ == "__main__":
    delta = int(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps({**main(sys.argv[1], sys.argv[2], delta), "delta_max": delta}))
