"""Ingest one blocks directory into a fresh store and say where its resident memory went.

    python -m bench.ingest_rss BLOCKS_DIR DATA_DIR [DELTA_MAX] [--phases]

Prints one JSON line: wall and CPU seconds, tx/s, peak RSS (`ru_maxrss`), the peaks of the
anonymous and file-backed parts of the resident set (`RssAnon`, `RssFile` of /proc/self/status,
sampled every 20 ms), and the address index's own bytes: the table's size and, for the sharded
index (store.addrindex), the most shard bytes it had mapped at once and its in-memory delta's
largest table. Works against any checkout
of chainsleuth on PYTHONPATH (the numbers before and after a change come from the same script).
A tiny warm-up ingest first loads numba's cached machine code.

`--phases` also says where the peaks were: the peak `RssAnon`/`RssFile`/`VmRSS` sampled while
each step of the writer ran on the main thread (`PHASES`: the four append steps, the outpoint
rebuild, commit, the lookup index's update and merge, the address delta's merge, the index save;
"other" is the rest, mostly waiting for the parse thread), and after each batch the resident set,
the outpoint index's and the address delta's table bytes. Steps on the parse and parquet threads
run meanwhile and count in whichever phase the main thread is in.

DELTA_MAX (sharded index only) sets `addrindex.DELTA_MAX`, the ids the in-memory delta holds
before it is merged into the on-disk base. A small chain never fills the production value
(2^26), so its delta would hold every address; 2^26 / 1.4 G ≈ 1/21 of mainnet's addresses, and
the same fraction of a small chain's addresses shows the base at work as it is at mainnet.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                  "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def _heap() -> dict[str, int]:
    """What glibc's malloc holds (`mallinfo2`: in use, free but kept, mmapped) and what
    pyarrow's pool has allocated: anonymous memory that is data, and memory that is not."""
    out: dict[str, int] = {}
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
        out.update(malloc_in_use=m.uordblks, malloc_free_kept=m.fordblks, malloc_mmapped=m.hblkhd)
    except (OSError, AttributeError):
        pass
    try:
        import pyarrow as pa

        out["arrow_allocated"] = int(pa.total_allocated_bytes())
    except ImportError:
        pass
    return out


def _stack(frame: Any, depth: int = 6) -> str:
    """The innermost chainsleuth/bench frames of a thread, as file:line function."""
    parts = []
    while frame is not None and len(parts) < depth:
        code = frame.f_code
        if "chainsleuth" in code.co_filename or "bench" in code.co_filename:
            name = code.co_filename.rsplit("/", 2)
            parts.append(f"{name[-1]}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " < ".join(parts)


#: (module, class, method) -> phase name, for `--phases`.
PHASES = [
    ("writer", "StoreWriter", "_append_txs", "append_txs"),
    ("writer", "StoreWriter", "_append_outputs", "append_outputs"),
    ("writer", "StoreWriter", "_append_inputs", "append_inputs"),
    ("writer", "StoreWriter", "_append_blocks", "append_blocks"),
    ("writer", "StoreWriter", "_compact_outpoints", "compact_outpoints"),
    ("writer", "StoreWriter", "_rebuild_utxos", "rebuild_utxos"),
    ("writer", "StoreWriter", "_apply_spends", "apply_spends"),
    ("writer", "StoreWriter", "commit", "commit"),
    ("writer", "StoreWriter", "save_indexes", "save_indexes"),
    ("lookup", "LookupBuilder", "update", "lookup_update"),
    ("lookup", "LookupBuilder", "_maybe_merge", "lookup_merge"),
    ("addrindex", "AddressIndex", "merge", "addr_merge"),
]


def _track_phases(phase: list[str], log: list[dict[str, Any]], t0: list[float]) -> None:
    """Wrap the PHASES methods so that `phase[0]` names the one running; log each batch."""
    import importlib

    def wrap(cls: Any, name: str, label: str) -> None:
        inner = getattr(cls, name)
        if getattr(inner, "_phase", None):
            return

        def run(*a: Any, **k: Any) -> Any:
            prev, phase[0] = phase[0], label
            try:
                return inner(*a, **k)
            finally:
                phase[0] = prev

        run._phase = label  # type: ignore[attr-defined]
        setattr(cls, name, run)

    for module, cls_name, method, label in PHASES:
        mod = importlib.import_module(f"chainsleuth.store.{module}")
        cls = getattr(mod, cls_name, None)
        if cls is not None and hasattr(cls, method):  # older checkouts lack some
            wrap(cls, method, label)
    from chainsleuth.store import writer as writer_mod

    append = writer_mod.StoreWriter.append

    def append_and_note(self: Any, *a: Any, **k: Any) -> Any:
        result = append(self, *a, **k)
        s = _status()
        delta = getattr(self.addresses, "delta", self.addresses)
        # the UTXO cache (store/utxocache.py); the outpoint index on older checkouts
        linker = self.utxos if hasattr(self, "utxos") else self.outpoints
        log.append(
            {
                **_heap(),
                "t": round(time.perf_counter() - t0[0], 1),
                "txs": self.counts["txs"],
                "anon": s["RssAnon"],
                "file": s["RssFile"],
                "outpoints_bytes": int(linker.nbytes),
                "outpoints_used": int(linker.used),
                "delta_bytes": int(delta.nbytes),
            }
        )
        return result

    writer_mod.StoreWriter.append = append_and_note  # type: ignore[method-assign]
    if os.environ.get("BENCH_MALLOC_TRIM"):  # experiment: give freed heap back after each batch
        commit = writer_mod.StoreWriter.commit
        libc = ctypes.CDLL("libc.so.6")

        def commit_and_trim(self: Any, *a: Any, **k: Any) -> Any:
            result = commit(self, *a, **k)
            libc.malloc_trim(0)
            return result

        writer_mod.StoreWriter.commit = commit_and_trim  # type: ignore[method-assign]


def main(
    blocks_dir: str, data_dir: str, delta_max: int | None = None, phases: bool = False
) -> dict[str, Any]:
    from chainsleuth.store import writer as writer_mod

    if os.environ.get("BENCH_HEAP") == "off":  # the "before" of core/heap.py
        with contextlib.suppress(ImportError):
            from chainsleuth.core import heap

            heap.ENABLED = False
    if os.environ.get("BENCH_HEAP") == "trim":  # core/heap.py's trims, malloc's thresholds
        writer_mod.bound_heap = lambda *a, **k: False  # type: ignore[attr-defined]
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
    phase, t0 = ["other"], [time.perf_counter()]
    per_batch: list[dict[str, Any]] = []
    by_phase: dict[str, dict[str, int]] = {}
    if phases:
        _track_phases(phase, per_batch, t0)
    done = threading.Event()

    stacks: list[dict[str, Any]] = []  # at each new RssAnon peak (8 MiB above the last)

    def sample() -> None:
        me = threading.get_ident()
        while not done.wait(0.02):
            now = _status()
            here = by_phase.setdefault(phase[0], {"VmRSS": 0, "RssAnon": 0, "RssFile": 0})
            if phases and now["RssAnon"] > peaks["RssAnon"] + (8 << 20):
                frames = sys._current_frames()
                stacks.append(
                    {
                        "t": round(time.perf_counter() - t0[0], 1),
                        "anon": now["RssAnon"],
                        "phase": phase[0],
                        **_heap(),
                        "threads": [_stack(f) for tid, f in frames.items() if tid != me],
                    }
                )
            for k, v in now.items():
                peaks[k] = max(peaks[k], v)
                here[k] = max(here[k], v)

    sampler = threading.Thread(target=sample, daemon=True)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    sampler.start()
    t = t0[0] = time.perf_counter()
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
        **(
            {"phase_peaks": by_phase, "per_batch": per_batch, "peak_stacks": stacks}
            if phases
            else {}
        ),
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--phases"]
    delta = int(args[2]) if len(args) > 2 else None
    result = main(args[0], args[1], delta, phases="--phases" in sys.argv)
    print(json.dumps({**result, "delta_max": delta}))
