"""What `chainsleuth cluster` costs at the tip: one new block, published as a delta layer.

For a chain (a blocks directory), the store is ingested, rolled back `blocks` blocks, clustered
from scratch, and then brought back to the tip one block at a time (ingest stops after each
block's commit), clustering after each: the time of each `cluster_store` call and the bytes it
wrote (the files it published, and the process's `wchar`, everything written through write
calls). The same blocks are then replayed with `compact_rows=-1`, which publishes a whole new
base at every run, as every run did before delta layers: the baseline, in the same process. A
last run with nothing new is timed too.

    python -m bench.cluster_update_bench WORLD_OR_BLOCKS_DIR [--blocks 3] [--work DIR]
    python -m bench.cluster_update_bench --synth 2000000 [--blocks 3]   # re-linked real blocks
    python -m bench.cluster_update_bench --synth 2000000 --code /tmp/before  # another checkout

`measure_updates(blocks_dir, work)` returns the figures as a dict. `one_block_update(blocks_dir,
data)` is one step of it (append the next block, update the clustering) and `tip_updates` a
few of them plus one full republish: `make bench-scale --with-update` calls `tip_updates` on
each size's already-clustered store (`python -m bench.scale update ...`), so both benches time
the same thing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, evict, log

# chainsleuth is imported inside the functions, so that `--code DIR` can measure another
# checkout's code (the code before delta layers) with this same script.


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _cluster(data: Path, policy: str, compact_rows: int | None | str) -> dict[str, Any]:
    from chainsleuth.cluster.engine import cluster_store

    w0 = _wchar()
    t0 = time.perf_counter()
    if compact_rows == "before":  # code without delta layers: no such argument
        report = cluster_store(data, policy)
    else:
        report = cluster_store(data, policy, compact_rows=compact_rows)
    seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "published": getattr(report, "published", "base"),
        "bytes_published": getattr(report, "bytes_written", None),
        "wchar": _wchar() - w0,
        "txs": report.txs_processed,
        "merges": report.merges,
        "from_scratch": report.from_scratch,
    }


def _rewind(blocks_dir: Path, data: Path, n: int) -> int:
    """Roll the store back `n` blocks; returns the height it now ends at."""
    from chainsleuth.store.store import Store
    from chainsleuth.store.writer import StoreWriter

    network = Store.open(data).manifest["network"]
    writer = StoreWriter.open(data, network)
    try:
        tip = writer.counts["blocks"] - 1
        writer.rollback(tip - n)
    finally:
        writer.close()
    return tip - n


def _one_block(blocks_dir: Path, data: Path) -> int:
    """Ingest exactly one more block (one block per batch, stop after its commit)."""
    from chainsleuth.store.ingest import ingest_blocks_dir

    report = ingest_blocks_dir(blocks_dir, data, batch_bytes=1, stop=lambda: True)
    return int(report.n_blocks)


def _io_counters() -> tuple[int, int]:
    """(major page faults, bytes read from storage) of this process so far."""
    import resource

    read = 0
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            read = int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt, read


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where Linux refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _vm(name: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return None


def one_block_update(
    blocks_dir: Path,
    data: Path,
    *,
    policy: str = "conservative",
    compact_rows: int | None | str = None,
    cold: bool = False,
) -> dict[str, Any]:
    """Append the next block of `blocks_dir` to the clustered store at `data` (the store's tip
    must be a block of that chain below its tip) and run the clustering's incremental update.

    Returns `_cluster`'s figures for the update (wall `seconds`, `bytes_published`: the files
    it published, `wchar`, `published`: "delta" or "base") plus its `cpu_seconds` (this
    process, all threads), `peak_rss_bytes` (VmHWM reset before the update, None where the
    kernel does not allow it), the block's height and txs and the one-block ingest's seconds.
    `compact_rows=-1` publishes a whole new base instead (the full republish baseline).
    `cold`: every file of the store is evicted from the page cache after the block's ingest,
    so the update reads what it needs from storage (a tip process whose pages the page cache
    gave to other work); else it finds what the ingest and the previous updates left cached.
    `major_faults` and `read_bytes` (from storage) are the update's own.
    """
    from chainsleuth.store.store import Store

    data = Path(data)
    before = Store.open(data).counts["txs"]
    t0 = time.perf_counter()
    added = _one_block(Path(blocks_dir), data)
    ingest_seconds = time.perf_counter() - t0
    if added != 1:
        raise ValueError(f"{blocks_dir}: no block after the store's tip to append ({data})")
    store = Store.open(data)
    if cold:
        evict(data)
    reset = _reset_peak()
    faults, read = _io_counters()
    cpu = time.process_time()
    run = _cluster(data, policy, compact_rows)
    run["cpu_seconds"] = round(time.process_time() - cpu, 3)
    faults_after, read_after = _io_counters()
    run["cold"] = cold
    run["major_faults"] = faults_after - faults
    run["read_bytes"] = read_after - read
    run["peak_rss_bytes"] = _vm("VmHWM") if reset else None
    run["block_height"] = store.tip[0] if store.tip else -1
    run["block_txs"] = store.counts["txs"] - before
    run["blocks_added"] = added
    run["ingest_seconds"] = round(ingest_seconds, 3)
    return run


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return float(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def tip_updates(
    blocks_dir: Path,
    data: Path,
    *,
    blocks: int = 5,
    republish: bool = True,
    policy: str = "conservative",
    warm_blocks: int = 0,
) -> dict[str, Any]:
    """`blocks` one-block updates of an already-clustered store (delta layers), each with the
    store evicted first (cold), then `warm_blocks` more without eviction (warm: under `warm`),
    then, with `republish`, one more block published as a whole new base (`compact_rows=-1`:
    what every update cost before delta layers), measured the same way. Needs
    `blocks + warm_blocks` (+1) blocks in `blocks_dir` after the store's tip. The top-level
    medians are the cold updates' (the worst case)."""
    runs = []
    for _ in range(blocks):
        run = one_block_update(blocks_dir, data, policy=policy, cold=True)
        log(f"update (cold): {run}")
        runs.append(run)
    warm = []
    for _ in range(warm_blocks):
        run = one_block_update(blocks_dir, data, policy=policy)
        log(f"update (warm): {run}")
        warm.append(run)
    out: dict[str, Any] = {
        "blocks_dir": str(blocks_dir),
        "policy": policy,
        "delta": runs,
        "median_seconds": _median([r["seconds"] for r in runs]),
        "median_cpu_seconds": _median([r["cpu_seconds"] for r in runs]),
        "median_bytes_published": _median([r["bytes_published"] or 0 for r in runs]),
        "max_peak_rss_bytes": max((r["peak_rss_bytes"] or 0 for r in runs), default=0),
        "median_major_faults": _median([r["major_faults"] for r in runs]),
        "median_read_bytes": _median([r["read_bytes"] for r in runs]),
        "all_incremental": all(
            not r["from_scratch"] and r["published"] == "delta" for r in (*runs, *warm)
        ),
    }
    if warm:
        out["warm"] = {
            "delta": warm,
            "median_seconds": _median([r["seconds"] for r in warm]),
            "median_cpu_seconds": _median([r["cpu_seconds"] for r in warm]),
            "median_bytes_published": _median([r["bytes_published"] or 0 for r in warm]),
            "median_major_faults": _median([r["major_faults"] for r in warm]),
            "median_read_bytes": _median([r["read_bytes"] for r in warm]),
        }
    if republish:
        full = one_block_update(blocks_dir, data, policy=policy, compact_rows=-1)
        log(f"full republish: {full}")
        out["full_republish"] = full
    return out


def measure_updates(
    blocks_dir: Path,
    work: Path,
    *,
    blocks: int = 3,
    policy: str = "conservative",
    modes: tuple[str, ...] = ("delta", "full_republish"),
) -> dict[str, Any]:
    """One-block cluster updates with delta layers and with a full republish (baseline);
    mode "before" runs `cluster_store` as code without delta layers takes it."""
    from chainsleuth.store.ingest import ingest_blocks_dir
    from chainsleuth.store.store import Store

    data = Path(work) / "store"
    shutil.rmtree(data, ignore_errors=True)
    t0 = time.perf_counter()
    ingest_blocks_dir(blocks_dir, data)
    log(f"ingested {blocks_dir} in {time.perf_counter() - t0:.1f} s")
    out: dict[str, Any] = {"blocks_dir": str(blocks_dir), "policy": policy}
    settings: dict[str, int | None | str] = {
        "delta": None,
        "full_republish": -1,
        "before": "before",
    }
    for mode in modes:
        compact_rows = settings[mode]
        _rewind(blocks_dir, data, blocks)
        scratch = _cluster(data, policy, compact_rows)
        log(f"{mode}: clustered from scratch in {scratch['seconds']} s")
        runs = []
        for _ in range(blocks):
            run = one_block_update(blocks_dir, data, policy=policy, compact_rows=compact_rows)
            log(f"{mode}: {run}")
            runs.append(run)
        idle = _cluster(data, policy, compact_rows)
        out[mode] = {"from_scratch": scratch, "one_block": runs, "nothing_new": idle}
    store = Store.open(data)
    out["txs"] = store.counts["txs"]
    out["addresses"] = store.counts["addresses"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", help="a simulated world or a blocks directory")
    parser.add_argument("--synth", type=int, help="build a re-linked chain of this many txs")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--policy", default="conservative")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-output" / "cluster-update")
    parser.add_argument(
        "--code",
        type=Path,
        help="measure the chainsleuth package of this checkout instead (mode `before`), e.g. "
        "`git archive 65bda72 | tar -x -C /tmp/before`",
    )
    args = parser.parse_args()
    modes: tuple[str, ...] = ("delta", "full_republish")
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
        modes = ("before",)
        import chainsleuth

        log(f"measuring {chainsleuth.__file__}")
    if args.synth:
        from bench.synth_chain import cached_chain

        info, _cached = cached_chain(args.work / "chains", "update", min_txs=args.synth, log=log)
        blocks_dir = Path(info.blocks_dir)
    else:
        source = Path(args.source)
        blocks_dir = source / "blocks" if (source / "blocks").is_dir() else source
    work = args.work / (f"synth-{args.synth}" if args.synth else blocks_dir.parent.name)
    work.mkdir(parents=True, exist_ok=True)
    result = measure_updates(blocks_dir, work, blocks=args.blocks, policy=args.policy, modes=modes)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
