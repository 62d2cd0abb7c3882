"""One measurement in a fresh process, printed as a JSON line: ingest, floor, baseline, traversal,
clustering, tags, investigations.

`bench.run` starts `python -m bench.measure <kind> <json args>` once per measurement so that each
one has its own peak RSS (`ru_maxrss` of that process) and none inherits another's warm heap or
imported modules. Not meant to be called by hand, though it can be:

    python -m bench.measure floor '{"blocks_dir": "bench-output/chains/real-.../blocks"}'
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

NBITCOIN = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "mainnet-blocks" / "blk" / "nbitcoin"
)


def _rusage() -> dict[str, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": r.ru_utime + r.ru_stime, "peak_rss_bytes": r.ru_maxrss * 1024}


def _blk_files(blocks_dir: Path) -> list[Path]:
    return sorted(p for p in Path(blocks_dir).iterdir() if p.name.startswith("blk"))


def _dir_bytes(path: Path) -> dict[str, int]:
    """Apparent size of everything under `path`, by top-level entry and in total."""
    out: dict[str, int] = {}
    for top in Path(path).iterdir():
        if top.is_file():
            out[top.name] = top.stat().st_size
        else:
            out[top.name] = sum(p.stat().st_size for p in top.rglob("*") if p.is_file())
    out["total"] = sum(out.values())
    return out


def _evict(paths: list[Path]) -> None:
    """Drop clean pages of these files from the page cache (no root needed)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------


def ingest(blocks_dir: str, data_dir: str, warmup_dir: str) -> dict[str, Any]:
    """chainsleuth end to end (scan, best chain, read, parse, link, write, commit) into a fresh
    store. A tiny warm-up ingest first loads numba's cached machine code, a one-off second or two
    that does not grow with the chain.
    """
    from chainsleuth.store.ingest import ingest_blocks_dir

    t = time.perf_counter()
    shutil.rmtree(warmup_dir, ignore_errors=True)
    ingest_blocks_dir(NBITCOIN, Path(warmup_dir))
    shutil.rmtree(warmup_dir, ignore_errors=True)
    warmup_s = time.perf_counter() - t
    shutil.rmtree(data_dir, ignore_errors=True)
    before = _rusage()
    t = time.perf_counter()
    report = ingest_blocks_dir(Path(blocks_dir), Path(data_dir))
    wall = time.perf_counter() - t
    after = _rusage()
    from bench import store_size
    from chainsleuth.store.layout import read_manifest

    return {
        "seconds": wall,
        "inner_seconds": report.seconds,  # from the first batch to the last commit
        "warmup_seconds": warmup_s,
        "cpu_seconds": after["cpu_s"] - before["cpu_s"],
        "peak_rss_bytes": after["peak_rss_bytes"],
        "n_blocks": report.n_blocks,
        "n_txs": report.n_txs,
        "n_inputs": report.n_inputs,
        "n_outputs": report.n_outputs,
        "n_addresses": report.n_new_addresses,
        "block_bytes": report.bytes_read,
        "blk_bytes": sum(p.stat().st_size for p in _blk_files(Path(blocks_dir))),
        "store": _dir_bytes(Path(data_dir)),
        # per structure, for the mainnet projection (bench/store_size.py)
        "parts": store_size.breakdown(Path(data_dir)),
        "counts": (read_manifest(Path(data_dir)) or {}).get("counts", {}),
    }


def floor(blocks_dir: str) -> dict[str, Any]:
    """hashlib double-SHA256 of every transaction's serialized bytes, one core.

    Transaction boundaries come from chainsleuth's parser, untimed; the timed loop hashes the
    bytes in place in the blk file's buffer. Reading the files is timed separately (page cache).
    """
    from chainsleuth.parse.blocks import parse_blocks

    sha = hashlib.sha256
    read_s = hash_s = 0.0
    n_tx = n_bytes = tx_bytes = 0
    for path in _blk_files(Path(blocks_dir)):
        t = time.perf_counter()
        data = path.read_bytes()
        read_s += time.perf_counter() - t
        n_bytes += len(data)
        offsets, pos = [], 0
        while pos + 8 <= len(data) and data[pos : pos + 4] != b"\0\0\0\0":
            (length,) = struct.unpack_from("<I", data, pos + 4)
            offsets.append((pos + 8, pos + 8 + length))
            pos += 8 + length
        buf = np.frombuffer(data, np.uint8)
        batch = parse_blocks(buf, offsets=np.array(offsets, np.int64), check_merkle=False)
        starts = batch.tx_start.tolist()
        ends = batch.tx_end.tolist()
        mv = memoryview(data)
        t = time.perf_counter()
        for s, e in zip(starts, ends, strict=True):
            sha(sha(mv[s:e]).digest()).digest()
        hash_s += time.perf_counter() - t
        n_tx += len(starts)
        tx_bytes += int((batch.tx_end - batch.tx_start).sum())
        del batch, buf, mv
    return {
        "seconds": hash_s,
        "read_seconds": read_s,
        "n_txs": n_tx,
        "tx_bytes": tx_bytes,
        "blk_bytes": n_bytes,
        **_rusage(),
    }


def baseline(blocks_dir: str, magic_hex: str, budget_s: float) -> dict[str, Any]:
    """blockchain-parser (PyPI) over the same blk files: txid, every input's prevout, every
    output's value and address strings. Stops after the block that crosses `budget_s`.

    blockchain-parser 0.1.6 hard-codes mainnet's magic (`BITCOIN_CONSTANT`) and skips, byte by
    byte, anything else; for a regtest directory the module constant is set to the regtest magic,
    so it reads the very same files.
    """
    import blockchain_parser
    from blockchain_parser import blockchain as bp_chain

    bp_chain.BITCOIN_CONSTANT = bytes.fromhex(magic_hex)
    n_blocks = n_tx = n_in = n_out = n_addr = n_bytes = 0
    complete = True
    t = time.perf_counter()
    for block in bp_chain.Blockchain(blocks_dir).get_unordered_blocks():
        n_blocks += 1
        n_bytes += block.size
        for tx in block.transactions:
            n_tx += 1
            tx.txid  # noqa: B018
            for i in tx.inputs:
                i.transaction_hash  # noqa: B018
                i.transaction_index  # noqa: B018
                n_in += 1
            for o in tx.outputs:
                o.value  # noqa: B018
                n_addr += len([a.address for a in o.addresses])
                n_out += 1
        if time.perf_counter() - t > budget_s:
            complete = False
            break
    wall = time.perf_counter() - t
    return {
        "seconds": wall,
        "complete": complete,
        "n_blocks": n_blocks,
        "n_txs": n_tx,
        "n_inputs": n_in,
        "n_outputs": n_out,
        "n_addresses": n_addr,
        "block_bytes": n_bytes,
        "version": getattr(blockchain_parser, "__version__", "0.1.6"),
        **_rusage(),
    }


def traverse(data_dir: str, repeats: int = 5) -> dict[str, Any]:
    """Sum every output value and every spent input's value over the memory-mapped arrays.

    One core: numpy (`ov.sum() + ov[isp[isp >= 0]].sum()`) and a plain numba loop. The first
    numpy run is cold: the two arrays are evicted from the page cache before it.
    """
    from numba import njit

    from chainsleuth.store import layout
    from chainsleuth.store.store import Store

    @njit(cache=False)
    def loop(ov, isp):
        total = 0
        for o in range(ov.shape[0]):
            total += ov[o]
        for i in range(isp.shape[0]):
            s = isp[i]
            if s >= 0:
                total += ov[s]
        return total

    loop(np.zeros(2, np.int64), np.zeros(2, np.int64))  # compile outside the timing
    store = Store.open(Path(data_dir))
    paths = [layout.array_path(Path(data_dir), n) for n in ("output_value", "input_spent_output")]
    _evict(paths)

    def numpy_pass() -> tuple[float, int]:
        t = time.perf_counter()
        ov = store.graph.output_value
        isp = store.graph.input_spent_output
        total = int(ov.sum()) + int(ov[isp[isp >= 0]].sum())
        return time.perf_counter() - t, total

    def numba_pass() -> tuple[float, int]:
        t = time.perf_counter()
        ov = store.graph.output_value
        isp = store.graph.input_spent_output
        total = int(loop(ov, isp))
        return time.perf_counter() - t, total

    cold, total = numpy_pass()
    warm_np = [numpy_pass() for _ in range(repeats)]
    warm_nb = [numba_pass() for _ in range(repeats)]
    assert all(v == total for _, v in warm_np + warm_nb)
    n_in, n_out = store.counts["inputs"], store.counts["outputs"]
    isp = store.graph.input_spent_output
    return {
        "n_inputs": n_in,
        "n_outputs": n_out,
        "n_spent_inputs": int((isp >= 0).sum()),
        "array_bytes": sum(p.stat().st_size for p in paths),
        "total_value": total,
        "cold_seconds": cold,
        "numpy_seconds": min(s for s, _ in warm_np),
        "numba_seconds": min(s for s, _ in warm_nb),
        **_rusage(),
    }


def cold_read(blocks_dir: str) -> dict[str, Any]:
    """Sequential read of the blk files after evicting them from the page cache: the disk bound."""
    files = _blk_files(Path(blocks_dir))
    _evict(files)
    n = 0
    t = time.perf_counter()
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while chunk := f.read(16 << 20):
                n += len(chunk)
    return {"seconds": time.perf_counter() - t, "bytes": n}


def cluster(data_dir: str) -> dict[str, Any]:
    from bench.cluster_bench import run

    result = run(Path(data_dir))
    result["peak_rss_bytes"] = _rusage()["peak_rss_bytes"]
    return result


def tags() -> dict[str, Any]:
    from bench.tags_bench import run

    result: dict[str, Any] = run()
    return result


def investigate_cli(store: str, seeds: str, out: str) -> dict[str, Any]:
    from bench.investigate_bench import measure_cli

    return measure_cli(store, seeds, out)


def investigate_trace(store: str, seeds: list[str]) -> dict[str, Any]:
    from bench.investigate_bench import measure_trace

    return measure_trace(store, seeds)


def investigate_networkx(store: str, seeds: list[str]) -> dict[str, Any]:
    from bench.investigate_bench import measure_networkx

    return measure_networkx(store, seeds)


KINDS = {
    "cluster": cluster,
    "investigate_cli": investigate_cli,
    "investigate_trace": investigate_trace,
    "investigate_networkx": investigate_networkx,
    "tags": tags,
    "ingest": ingest,
    "floor": floor,
    "baseline": baseline,
    "traverse": traverse,
    "cold_read": cold_read,
}

if __name__ == "__main__":
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(KINDS[kind](**args)))
