"""What opening a store and a commit cost as the number of commits grows (issue 13 item 4).

Ingests the nbitcoin chain (600 blocks) in batches of `--batch-bytes` each (smaller: more
commits), then reports the commits, manifest.json's bytes, the file log's bytes (format 6),
and the median time of `Store.open` and of `Store.open` + a tx lookup (warm page cache).
Runs against whichever chainsleuth is on PYTHONPATH (main's for the before figures):

    PYTHONPATH=$PWD python -m bench.manifest_bench --batch-bytes 1000000 20000 2000 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from chainsleuth.store import lookups
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store

NBITCOIN = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "mainnet-blocks" / "blk" / "nbitcoin"
)
HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(blocks: Path, batch_bytes: int, repeat: int, txid: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        ingest_blocks_dir(blocks, data, batch_bytes=batch_bytes)
        ingest_s = time.perf_counter() - t0
        return {"batch_bytes": batch_bytes, "ingest_s": round(ingest_s, 2)} | measure_store(
            data, repeat, txid
        )


def measure_store(data: Path, repeat: int, txid: str) -> dict[str, object]:
    """The figures of an existing store (warm: its files are read once before the timings)."""
    manifest = json.loads((data / "manifest.json").read_text())
    logs = sorted(data.glob("files-*.jsonl"))
    log_bytes = sum(p.stat().st_size for p in logs)
    log_lines = sum(p.read_bytes().count(b"\n") for p in logs)
    if txid == "last":  # the chain's last tx (any chain; HAL_TX is nbitcoin's)
        txid = bytes(Store.open(data).graph.tx_txid[-1][::-1]).hex()
    return {
        "commits": manifest["generation"],
        "format": manifest["format"],
        "manifest_bytes": (data / "manifest.json").stat().st_size,
        "log_bytes": log_bytes,
        "log_lines": log_lines,
        "log_bytes_per_commit": round(log_bytes / max(manifest["generation"], 1)),
        "open_ms": round(median_ms(lambda: Store.open(data), repeat), 3),
        "open_tx_ms": round(
            median_ms(lambda: lookups.transaction(Store.open(data), txid), repeat), 3
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=Path, default=NBITCOIN)
    ap.add_argument("--batch-bytes", type=int, nargs="+", default=[1_000_000, 20_000, 2_000, 200])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--txid", default=HAL_TX, help="the tx looked up; 'last': the chain's last")
    ap.add_argument("--data", type=Path, help="measure this store instead of ingesting")
    args = ap.parse_args()
    if args.data is not None:
        print(json.dumps(measure_store(args.data, args.repeat, args.txid)), flush=True)
        return
    for batch_bytes in args.batch_bytes:
        print(json.dumps(measure(args.blocks, batch_bytes, args.repeat, args.txid)), flush=True)


if __name__ == "__main__":
    main()
