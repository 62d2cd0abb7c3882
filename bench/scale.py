"""`make bench-scale` (issue 13, items 2 and 4): the memory budget and flat lookups, measured on
chains of growing size and projected to mainnet.

    python -m bench.scale                         # 2M 5M 10M 20M, docs/benchmarks-scale.md
    python -m bench.scale --sizes 2M 5M           # smaller; the limit run takes the largest
    python -m bench.scale --sizes 20k --out /tmp/x.md --work /tmp/x   # the tests' tiny run

For each size it builds a re-linked chain (`bench.synth_chain`, with `HOLD_RATE` and
`REUSE_RATE` so that the UTXO set and the addresses grow like mainnet's) under `--work`, then
runs the real commands in fresh processes and records each one's peak RSS (`ru_maxrss` from
`wait4`, plus `RssAnon`/`RssFile` sampled from /proc every 20 ms), wall and CPU seconds:
`chainsleuth ingest`, `chainsleuth cluster`, `chainsleuth investigate` (seeds: `--seeds-n`
random addresses of the store), then the store's bytes and cold `address` lookups (the store's
files evicted from the page cache with `posix_fadvise(DONTNEED)` before each; in-process as
`chainsleuth address` calls it, and as whole fresh `chainsleuth address` processes). The chain
and store are deleted after each size. Then it fits each figure's growth (`fit`, `project`) and
projects it to mainnet, and ingests the largest chain again under a hard memory limit
(`memory_limit`) in a memory cgroup (`MemoryLimit`).

The address index's in-memory delta is bounded by `addrindex.DELTA_MAX` ids (2^26 in
production, ~4.5 % of mainnet's addresses). A chain of 20 M txs never fills it, so it would hold
every address and its linear fit would project a 25-GB delta that mainnet never has. Each ingest
here therefore runs with DELTA_MAX scaled to the chain (`delta_max_for`): the delta holds the
share of the chain's addresses it holds at mainnet, as `bench.ingest_rss` does.

Issue 13 item 3, `--with-update`: after a size's other stages, a fresh child (`python -m
bench.scale update FULL_BLOCKS DATA --blocks N --json-out F`) appends the next N blocks of the
shared chain to the already-clustered store one at a time and runs the incremental cluster
update after each (`bench.cluster_update_bench.tip_updates`, the same `one_block_update` that
`bench/cluster_update_bench.py` times): wall, CPU, peak RSS and the bytes it published (the
delta layer), then one more block published as a whole new base (`compact_rows=-1`), what a
full republish costs, measured. The shared chain is built one pass longer than the largest size
so that every size, the largest too, has blocks to append.

    python -m bench.scale --sizes 2M 20M --work W --chain-only          # build W/chain once
    python -m bench.scale --sizes 2M 20M 5M 10M --chain W/chain --with-update \
        --no-limit-run "why" --note "load 8-10, shared box"

`--chain DIR` reuses a chain built before (`--chain-only`, or a kept `WORK/chain`) and only
reads it; sizes run in the order given (the report sorts them); `--no-limit-run REASON` skips
the hard-limit ingest and says why in the report. The report opens with a verdict per target.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import os
import random
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench import synth_chain
from bench.common import ROOT, evict, log, quantiles, table
from bench.store_size import breakdown

#: Mainnet at the tip, the figures issue 13 budgets for.
MAINNET = {"txs": 1.1e9, "addresses": 1.5e9, "utxos": 180e6}
ITEM = {"txs": "tx", "addresses": "address", "utxos": "UTXO"}
INGEST_BUDGET = 16e9  # bytes of peak RSS, full-chain ingest
LATER_BUDGET = 24e9  # cluster and investigate
#: Share of each re-linked block's spendable outputs never spent. Mainnet leaves 180 M unspent
#: of ~3.1 G outputs, 0.164 per tx; a re-linked pass has 2.18 spendable outputs per tx, so
#: 0.164 / 2.18 = 0.075 of them are held (the pool and coinbases add a little on top).
HOLD_RATE = 0.075
#: Share of a later pass's address-bearing outputs that pay to an earlier pass's address.
#: Mainnet: 1.5 G addresses / 1.1 G txs = 1.36 new addresses per tx. The re-linked chain of
#: 423k txs made 1.88 per tx without reuse and 1.55 with 0.25 (measured; -1.3 per unit of
#: reuse), and the 50k fixed fan-out addresses' share (~0.09 per tx there) fades with length:
#: 0.30 aims at 1.36 from 2 M txs on. Per output that is more reuse than mainnet's (~0.5 new
#: addresses per output), because the chain has more outputs per tx (3.9 against ~2.8);
#: matching per tx keeps addresses in mainnet's proportion to txs (the fits use both).
REUSE_RATE = 0.30
DELTA_MAX_MAINNET = 1 << 26
#: What `--stages` may name, in the order they run (each needs the ones before it).
STAGES = ("ingest", "cluster", "investigate", "lookups")
PY = sys.executable


def parse_size(text: str) -> int:
    """'2M' -> 2_000_000, '20k' -> 20_000, '1500' -> 1500."""
    t = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    number = t[:-1] if factor != 1 else t
    return int(float(number) * factor)


def delta_max_for(n_txs: int) -> int:
    """DELTA_MAX giving a chain of n_txs the share of its addresses mainnet's delta holds."""
    return max(1 << 10, int(DELTA_MAX_MAINNET * n_txs / MAINNET["txs"]))


def memory_limit(fixed_bytes: float, n_txs: int) -> int:
    """The hard limit for an ingest of n_txs: its share of the 16-GB budget plus fixed overheads."""
    return int(n_txs / MAINNET["txs"] * INGEST_BUDGET + fixed_bytes)


# ---------------------------------------------------------------------------------------------
# fits and projections


def fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares y = a + b x and y = c x^k. With one point: b = y / x (a = 0), k = 1."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    if xs.shape[0] < 2 or np.ptp(xs) == 0:
        b = float(ys.mean() / xs.mean())
        return {"a": 0.0, "b": b, "c": b, "k": 1.0}
    b, a = np.polyfit(xs, ys, 1)
    out = {"a": float(a), "b": float(b), "c": float("nan"), "k": float("nan")}
    if (ys > 0).all():
        k, logc = np.polyfit(np.log(xs), np.log(ys), 1)
        out["c"], out["k"] = float(np.exp(logc)), float(k)
    return out


def project(
    points: list[dict[str, float]], metric: str, drivers: tuple[str, ...], mainnet: dict
) -> dict[str, Any]:
    """Project `metric` to mainnet from each driver (an item count) by both fits; the largest
    projection is the answer (the fits assume the figure grows linearly, or as a power law,
    with that item; taking the largest is the cautious reading)."""
    y = [p[metric] for p in points]
    by: dict[str, dict[str, float]] = {}
    for d in drivers:
        f = fit([p[d] for p in points], y)
        linear = f["a"] + f["b"] * mainnet[d]
        power = f["c"] * mainnet[d] ** f["k"] if np.isfinite(f["k"]) else float("nan")
        by[d] = {**f, "linear": linear, "power": power}
    candidates = [
        (v, d, model)
        for d, f in by.items()
        for model, v in (("linear", f["linear"]), ("power", f["power"]))
        if np.isfinite(v)
    ]
    value, driver, model = max(candidates)
    return {"metric": metric, "value": value, "driver": driver, "model": model, "by": by}


# ---------------------------------------------------------------------------------------------
# running one command, measured


class MemoryLimit:
    """A hard memory limit for one child: a memory cgroup (v1 or v2) under this process's own,
    else RLIMIT_AS (`ulimit -v`). `kind` says which; `peak` and `events` read it afterwards."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.path: Path | None = None
        self.kind = "rlimit_as"
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hid, ctrl, rel = line.split(":", 2)
            if ctrl == "memory":
                base, self.kind = Path("/sys/fs/cgroup/memory") / rel.lstrip("/"), "cgroup_v1"
            elif hid == "0" and ctrl == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
                base, self.kind = Path("/sys/fs/cgroup") / rel.lstrip("/"), "cgroup_v2"
            else:
                continue
            try:
                path = base / f"chainsleuth-scale-{os.getpid()}"
                path.mkdir(exist_ok=True)
                limit_file = "memory.limit_in_bytes" if self.kind == "cgroup_v1" else "memory.max"
                (path / limit_file).write_text(str(limit_bytes))
                if self.kind == "cgroup_v1":  # no swap here, but make sure none is used
                    memsw = path / "memory.memsw.limit_in_bytes"
                    if memsw.exists():
                        memsw.write_text(str(limit_bytes))
                self.path = path
                break
            except OSError:
                self.kind = "rlimit_as"
        if self.path is None:
            self.kind = "rlimit_as"

    def enter(self) -> None:
        """In the child, before exec."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))
        else:
            resource.setrlimit(resource.RLIMIT_AS, (self.limit, self.limit))

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "limit_bytes": self.limit}
        if self.path is None:
            return out
        if self.kind == "cgroup_v1":
            out["cgroup_peak_bytes"] = int((self.path / "memory.max_usage_in_bytes").read_text())
            out["failcnt"] = int((self.path / "memory.failcnt").read_text())
            oom = (self.path / "memory.oom_control").read_text().split()
            out["oom_kill"] = int(oom[oom.index("oom_kill") + 1]) if "oom_kill" in oom else None
        else:
            peak = self.path / "memory.peak"
            if peak.exists():
                out["cgroup_peak_bytes"] = int(peak.read_text())
            events = dict(
                line.split() for line in (self.path / "memory.events").read_text().splitlines()
            )
            out["oom_kill"] = int(events.get("oom_kill", 0))
        return out

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):  # still busy: leave it, it holds nothing
                self.path.rmdir()


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            out[name] = int(rest.split()[0]) * 1024
    return out


def run_measured(
    cmd: list[str],
    limit: MemoryLimit | None = None,
    tick: Callable[[subprocess.Popen[bytes], float], None] | None = None,
    every: float = 0.02,
) -> dict[str, Any]:
    """Run `cmd` as a child; its wall and CPU seconds (and user, sys), major faults, blocks
    read, `ru_maxrss` and RSS peaks sampled every `every` s; `tick(proc, seconds)` is called at
    each sample (bench.limit_ingest's monitor)."""
    peaks = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit.enter if limit is not None else None,
    )
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            for k, v in _status(proc.pid).items():
                peaks[k] = max(peaks[k], v)
            if tick is not None:
                tick(proc, time.perf_counter() - t)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # read the pipes on threads so a chatty child never blocks; wait4 gives its own rusage
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    readers = [
        threading.Thread(target=drain, args=(n, s))
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "command": cmd,
        "rc": proc.returncode,
        "seconds": round(wall, 3),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 3),
        "user_seconds": round(ru.ru_utime, 3),
        "sys_seconds": round(ru.ru_stime, 3),
        "major_faults": ru.ru_majflt,
        "read_bytes_inblock": ru.ru_inblock * 512,
        "peak_rss_bytes": ru.ru_maxrss * 1024,
        "peak_anon_bytes": peaks["RssAnon"],
        "peak_file_bytes": peaks["RssFile"],
        "stdout_tail": chunks.get("out", b"")[-2000:].decode(errors="replace"),
        "stderr_tail": chunks.get("err", b"")[-2000:].decode(errors="replace"),
    }


def _checked(name: str, r: dict[str, Any]) -> dict[str, Any]:
    if r["rc"] != 0:
        raise SystemExit(f"bench-scale: {name} failed (rc {r['rc']}): {r['stderr_tail'][-800:]}")
    return r


def cli(data_dir: Path, *args: str) -> list[str]:
    return [PY, "-m", "chainsleuth", "--data", str(data_dir), *args]


def ingest_cmd(blocks: Path, data_dir: Path, n_txs: int) -> list[str]:
    return [PY, "-m", "bench.scale", "ingest", "--delta-max", str(delta_max_for(n_txs))] + [
        str(blocks),
        str(data_dir),
    ]


# ---------------------------------------------------------------------------------------------
# what runs in the children


def _child_ingest(blocks: str, data_dir: str, delta_max: int) -> None:
    """What `chainsleuth ingest --blocks-dir BLOCKS` runs (`ingest_blocks_dir`, network auto,
    default slim store), with DELTA_MAX scaled to the chain (see the module docstring). The
    library call, not the CLI: bench may not import a face (lint-imports)."""
    from chainsleuth.store import addrindex
    from chainsleuth.store.ingest import ingest_blocks_dir

    addrindex.DELTA_MAX = delta_max
    report = ingest_blocks_dir(Path(blocks), Path(data_dir))
    print(json.dumps({"n_txs": report.n_txs, "n_addresses": report.n_new_addresses}))


def _child_lookups(data_dir: str, n: int, seed: int, rounds: int) -> None:
    print(json.dumps(cold_warm_lookups(data_dir, n, seed, rounds)))


def _io_counters() -> tuple[int, int]:
    """(bytes this process caused to be read from storage, major page faults) so far: a cold
    lookup's cost in pages, which the machine's load does not change."""
    read = 0
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                read = int(line.split()[1])
    except OSError:  # not Linux, or /proc/self/io hidden: pages are then not reported
        pass
    return read, resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def cold_warm_lookups(data_dir: str, n: int, seed: int, rounds: int = 3) -> dict[str, Any]:
    """Cold `address` lookups in this process: evict, open the store, `address_info`; then
    the same addresses again, not evicted (warm: their pages cached), under "warm".

    The cold lookups run in `rounds` rounds over the same addresses, each evicted before every
    lookup. A round's p99 of 300 is its third-worst lookup, so one burst of another process's
    I/O on a shared machine moves it; the reported p50 and p99 are the medians of the rounds'
    (each round's are kept under "rounds"). Beside the times: the bytes each lookup read from
    storage and its major page faults, which do not depend on the machine's load."""
    from chainsleuth.store.lookups import address_info
    from chainsleuth.store.store import Store

    data = Path(data_dir)
    store = Store.open(data)
    rng = random.Random(seed)
    n_addr = store.counts["addresses"]
    addresses = [store.address_of(rng.randrange(n_addr)) for _ in range(n)]
    address_info(store, addresses[0])  # load numba's cached kernels outside the timings
    # unmap what the sampling mapped: the eviction cannot drop pages a live mapping holds (the
    # sampled addresses' own key rows would stay cached)
    del store
    gc.collect()
    per_round: list[dict[str, Any]] = []
    cpu: list[float] = []
    read_kib: list[float] = []
    faults: list[float] = []
    for _ in range(max(1, rounds)):
        times = []
        for a in addresses:
            evict(data)
            r0, f0 = _io_counters()
            t0, c0 = time.perf_counter(), time.process_time()
            address_info(Store.open(data), a)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            r1, f1 = _io_counters()
            read_kib.append((r1 - r0) / 1024)
            faults.append(f1 - f0)
        per_round.append(quantiles(times))
    warm, warm_cpu = [], []
    for a in addresses:
        t0, c0 = time.perf_counter(), time.process_time()
        address_info(Store.open(data), a)
        warm.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)
    return {
        "n": n,
        "p50_ms": round(float(np.median([q["p50_ms"] for q in per_round])), 2),
        "p99_ms": round(float(np.median([q["p99_ms"] for q in per_round])), 2),
        "max_ms": max(q["max_ms"] for q in per_round),
        "rounds": per_round,
        "cpu": quantiles(cpu),  # CPU seconds: steadier than wall on a shared box
        "read_kib": _spread(read_kib),
        "major_faults": _spread(faults),
        "warm": {**quantiles(warm), "cpu": quantiles(warm_cpu)},
    }


def _spread(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of per-lookup counts (KiB read, faults)."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(v, 50)), 1),
        "p99": round(float(np.percentile(v, 99)), 1),
        "max": round(float(v.max()), 1),
    }


def sample_addresses(data_dir: Path, n: int, seed: int) -> list[str]:
    from chainsleuth.store.store import Store

    store = Store.open(data_dir)
    rng = random.Random(seed)
    n_addr = store.counts["addresses"]
    return [store.address_of(rng.randrange(n_addr)) for _ in range(n)]


def store_facts(data_dir: Path) -> dict[str, Any]:
    """Counts, unspent outputs with an address (the UTXO set) and the txs holding them."""
    from chainsleuth.store.store import Store

    store = Store.open(data_dir)
    spent = np.asarray(store.array("output_spent_by_tx"))
    addr = np.asarray(store.array("output_address"))
    unspent = (spent == 0xFFFFFFFF) & (addr != 0xFFFFFFFF)
    first = np.asarray(store.array("tx_first_output"))
    holding = np.unique(np.searchsorted(first, np.flatnonzero(unspent), side="right") - 1)
    return {
        **store.counts,
        "utxos": int(unspent.sum()),
        "utxo_txs": int(holding.shape[0]),
        "store_bytes": sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()),
        "parts": breakdown(data_dir),
    }


# ---------------------------------------------------------------------------------------------


def _checkpoint(full: synth_chain.ChainInfo, n_txs: int) -> dict[str, Any]:
    """The checkpoint that `build_chain(min_txs=n_txs)` would have stopped at."""
    for cp in full.checkpoints:
        per_pass = cp["relinked_txs"] // cp["passes"]
        if cp["passes"] == max(1, -(-n_txs // per_pass)):
            return cp
    raise KeyError(f"no checkpoint for {n_txs:,} txs in {full.blocks_dir}")


def chain_unfit(info: synth_chain.ChainInfo, sizes: list[int], args: argparse.Namespace) -> str:
    """Why a built chain cannot serve these sizes ("" when it can): its version, rates, a
    checkpoint per size, and blocks after the largest checkpoint to append (`--with-update`)."""
    if info.version != synth_chain.VERSION:
        return f"built by {info.version}, this code needs {synth_chain.VERSION}"
    if (info.hold_rate, info.reuse_rate) != (args.hold_rate, args.reuse_rate):
        return (
            f"built with hold_rate {info.hold_rate}, reuse_rate {info.reuse_rate}; this run "
            f"asks {args.hold_rate}, {args.reuse_rate}"
        )
    try:
        last = max((_checkpoint(info, n) for n in sizes), key=lambda cp: cp["passes"])
    except KeyError as e:
        return f"{e.args[0]} (it has {[cp['n_txs'] for cp in info.checkpoints]})"
    if getattr(args, "with_update", False) and info.passes <= last["passes"]:
        return "no blocks after the largest size's checkpoint to append (--with-update)"
    return ""


def build_shared_chain(
    base: Path, sizes: list[int], args: argparse.Namespace
) -> synth_chain.ChainInfo:
    """Build the chain under `base` (blocks/ and chain.json): a checkpoint per size and one
    pass (~23 k txs, 17 re-linked blocks and their fan-out blocks) beyond the largest, so that
    every size has new blocks to append."""
    shutil.rmtree(base, ignore_errors=True)
    templates = synth_chain.load_templates()
    per_pass = sum(t.n_tx for t in templates)
    passes = max(1, -(-max(sizes) // per_pass)) + 1
    log(f"chain: building {passes} passes ({max(sizes):,} txs + one pass) under {base}")
    info = synth_chain.build_chain(
        base / "blocks",
        passes=passes,
        templates=templates,
        hold_rate=args.hold_rate,
        reuse_rate=args.reuse_rate,
        checkpoints=sizes,
    )
    tmp = base / "chain.json.tmp"
    tmp.write_text(json.dumps(asdict(info), indent=1) + "\n")
    tmp.replace(base / "chain.json")
    return info


def given_chain(chain: Path, sizes: list[int], args: argparse.Namespace) -> synth_chain.ChainInfo:
    """The chain `--chain DIR` names, checked and only read (never rebuilt nor deleted); a
    symbolic link is refused (the run would read, link and report a path other than the one
    given, and a link into a tree another run deletes leaves a half chain)."""
    if chain.is_symlink():
        raise SystemExit(
            f"bench-scale: --chain {chain}: is a symbolic link; give the chain directory itself"
        )
    meta = chain / "chain.json"
    if not meta.is_file() or not (chain / "blocks").is_dir():
        raise SystemExit(
            f"bench-scale: --chain {chain}: no chain.json and blocks/ there "
            "(build one with --chain-only)"
        )
    try:
        info = synth_chain.ChainInfo(**json.loads(meta.read_text()))
    except (ValueError, TypeError) as e:
        raise SystemExit(f"bench-scale: --chain {meta}: not a chain.json ({e})") from None
    why = chain_unfit(info, sizes, args)
    if why:
        raise SystemExit(f"bench-scale: --chain {chain}: {why}")
    info.blocks_dir = str(chain.resolve() / "blocks")
    log(f"chain: reusing {meta} ({info.n_txs:,} txs), read-only")
    return info


def shared_chain(labels: list[str], args: argparse.Namespace) -> synth_chain.ChainInfo:
    """The largest chain, built once with a checkpoint per size (`synth_chain.build_chain`):
    each smaller chain is a prefix of it, byte-identical to building it alone, so a run builds
    20 M txs instead of 37 M. `--chain DIR`: that chain, read-only. Else reused from
    `WORK/chain` when it fits (`chain_unfit`), rebuilt there when not."""
    sizes = [parse_size(x) for x in labels]
    if getattr(args, "chain", None) is not None:
        return given_chain(Path(args.chain), sizes, args)
    base = Path(args.work) / "chain"
    meta = base / "chain.json"
    if meta.exists():
        info = synth_chain.ChainInfo(**json.loads(meta.read_text()))
        if not chain_unfit(info, sizes, args):
            log(f"chain: reusing {meta} ({info.n_txs:,} txs)")
            return info
    return build_shared_chain(base, sizes, args)


def measure_size(
    label: str, n_txs: int, full: synth_chain.ChainInfo, args: argparse.Namespace
) -> dict[str, Any]:
    base = Path(args.work) / label
    shutil.rmtree(base, ignore_errors=True)
    r: dict[str, Any] = {"label": label, "target_txs": n_txs}
    info = synth_chain.prefix_chain(
        Path(full.blocks_dir), _checkpoint(full, n_txs), base / "blocks"
    )
    r["chain"] = asdict(info)
    _measure_stages(r, base, info, args)
    if args.with_update and "cluster" in r:
        # last, so that investigate and the lookups measured the store as `cluster` left it
        r["cluster_update"] = update_run(Path(full.blocks_dir), base, args)
        u = r["cluster_update"]
        log(
            f"{label}: one-block update median {u['median_seconds']} s, "
            f"{u['median_bytes_published']:,.0f} B published"
        )
    r["base"] = str(base)
    return r


def update_run(full_blocks: Path, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The one-block updates of the clustered store under `base`, in a fresh child."""
    out = base / "update.json"
    cmd = [PY, "-m", "bench.scale", "update", str(full_blocks), str(base / "data")]
    cmd += ["--blocks", str(args.update_blocks), "--json-out", str(out)]
    cmd += ["--warm-blocks", str(args.update_blocks)]
    if args.no_republish:
        cmd.append("--no-republish")
    proc = _checked("update", run_measured(cmd))
    keep = ("command", "seconds", "cpu_seconds", "peak_rss_bytes", "peak_anon_bytes")
    res: dict[str, Any] = json.loads(out.read_text())
    return {**res, "process": {k: proc[k] for k in (*keep, "peak_file_bytes")}}


def _measure_stages(
    r: dict[str, Any], base: Path, info: synth_chain.ChainInfo, args: argparse.Namespace
) -> None:
    label = r["label"]
    blocks, data, case = base / "blocks", base / "data", base / "case"
    log(
        f"{label}: {info.n_txs:,} txs, {info.blk_bytes / 1e9:.2f} GB (built in {info.seconds:.0f} s)"
    )
    r["ingest"] = _checked("ingest", run_measured(ingest_cmd(blocks, data, info.n_txs)))
    r["ingest"]["delta_max"] = delta_max_for(info.n_txs)
    log(f"{label}: ingest {r['ingest']['seconds']:.0f} s, {r['ingest']['peak_rss_bytes']:,} B")
    r["store"] = store_facts(data)
    if "cluster" not in args.stages:
        return
    r["cluster"] = _checked("cluster", run_measured(cli(data, "cluster", "--json")))
    log(f"{label}: cluster {r['cluster']['seconds']:.0f} s")
    if "investigate" not in args.stages:
        return
    seeds = base / "seeds.csv"
    with open(seeds, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["address"])
        w.writerows([a] for a in sample_addresses(data, args.seeds_n, 2))
    inv = cli(data, "investigate", "--seeds", str(seeds), "-o", str(case))
    r["investigate"] = _checked("investigate", run_measured(inv + ["--no-report", "--no-pdf"]))
    log(f"{label}: investigate {r['investigate']['seconds']:.0f} s")
    if "lookups" not in args.stages:
        return
    lk = [PY, "-m", "bench.scale", "lookups", str(data), "--n", str(args.lookups)]
    lk += ["--rounds", str(args.lookup_rounds)]
    out = _checked("lookups", run_measured(lk))
    r["address_cold"] = {"command": lk, **json.loads(out["stdout_tail"].strip().splitlines()[-1])}
    times, startup = [], []
    for a in sample_addresses(data, args.cli_lookups, 3):
        evict(data)
        times.append(
            _checked("address", run_measured(cli(data, "address", a, "--json")))["seconds"]
        )
        startup.append(_checked("--version", run_measured(cli(data, "--version")))["seconds"])
    r["address_cli_cold"] = {
        "command": cli(data, "address", "ADDR", "--json"),
        **quantiles(times),
        "startup": quantiles(startup),
    }
    log(f"{label}: address cold p99 {r['address_cold']['p99_ms']} ms in process")


def _child_update(argv: list[str]) -> None:
    """`python -m bench.scale update FULL_BLOCKS DATA --blocks N --json-out F [--no-republish]`:
    `tip_updates` on a clustered store, its figures written to F."""
    from bench.cluster_update_bench import tip_updates

    p = argparse.ArgumentParser(prog="python -m bench.scale update")
    p.add_argument("blocks", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("--blocks", dest="n", type=int, default=5)
    p.add_argument("--json-out", type=Path, required=True)
    p.add_argument("--no-republish", action="store_true")
    p.add_argument("--warm-blocks", type=int, default=0, help="then this many, not evicted")
    a = p.parse_args(argv)
    res = tip_updates(
        a.blocks, a.data, blocks=a.n, republish=not a.no_republish, warm_blocks=a.warm_blocks
    )
    tmp = a.json_out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(a.json_out)


def limit_run(r: dict[str, Any], fixed: float, args: argparse.Namespace) -> dict[str, Any]:
    """Ingest the chain of `r` again into a fresh store, under the hard memory limit."""
    base = Path(r["base"])
    data = base / "data-limited"
    shutil.rmtree(data, ignore_errors=True)
    n = r["chain"]["n_txs"]
    limit = MemoryLimit(memory_limit(fixed, n))
    log(f"{r['label']}: ingest under a {limit.kind} limit of {limit.limit:,} B")
    try:
        cmd = ingest_cmd(base / "blocks", data, n)
        out = run_measured(cmd, limit)
        out["limit"] = limit.report()
    finally:
        limit.close()
    out["finished"] = out["rc"] == 0
    out["fixed_bytes"] = fixed
    out["n_txs"] = n
    shutil.rmtree(data, ignore_errors=True)
    return out


def warm_up(data: Path) -> None:
    """Ingest, cluster and investigate the 600 real 2009 blocks once, unmeasured, so that
    numba's cached machine code exists before the first measured command (a fresh checkout
    compiles it on first use)."""
    from bench.measure import NBITCOIN

    shutil.rmtree(data, ignore_errors=True)
    _checked("warm-up ingest", run_measured(ingest_cmd(NBITCOIN, data / "data", 1000)))
    _checked("warm-up cluster", run_measured(cli(data / "data", "cluster")))
    shutil.rmtree(data, ignore_errors=True)


def _stages(sizes: list[dict[str, Any]]) -> list[str]:
    """The measured stages of a run (`--stages` may leave out cluster and investigate)."""
    return [s for s in ("ingest", "cluster", "investigate") if all(s in r for r in sizes)]


def projections(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    points = []
    stages = _stages(sizes)
    for r in sizes:
        s = r["store"]
        p = {"txs": s["txs"], "addresses": s["addresses"], "utxos": s["utxos"]}
        for stage in stages:
            for k in ("peak_rss_bytes", "peak_anon_bytes", "seconds", "cpu_seconds"):
                p[f"{stage}.{k}"] = r[stage][k]
        p["store_bytes"] = s["store_bytes"]
        points.append(p)
    drivers = ("txs", "addresses", "utxos")
    metrics = [f"{s}.{k}" for s in stages
               for k in ("peak_rss_bytes", "peak_anon_bytes", "seconds", "cpu_seconds")]  # fmt: skip
    return [project(points, m, drivers, MAINNET) for m in [*metrics, "store_bytes"]]


# ---------------------------------------------------------------------------------------------
# the report


def _gb(x: float) -> str:
    return f"{x / 1e9:,.2f} GB"


def _mb(x: float) -> str:
    return f"{x / 1e6:,.0f} MB"


def render(res: dict[str, Any]) -> str:
    sizes = res["sizes"]
    m = res["machine"]
    lines = [
        "# chainsleuth at scale: memory, time, store bytes and cold lookups, 2 M → 20 M txs",
        "",
        f"Generated by `{res['command']}` (`bench/scale.py`, `make bench-scale`) on "
        f"{res['date']}; the whole run took {res['total_seconds'] / 60:.1f} min. Do not edit "
        "by hand; raw figures in the JSON beside this file.",
        "",
        f"Machine: {m['nproc']} CPUs, {m['mem_gib']:.1f} GiB RAM, shared with other work "
        f"(load {m['loadavg']} at the start), so wall times are noisy; CPU seconds and peak RSS "
        f"are the steadier figures. chainsleuth commit `{m['commit']}`.",
        "",
        *([f"Note on this run: {res['note']}", ""] if res.get("note") else []),
        *_render_verdicts(res),
        "## Chains",
        "",
        f"Re-linked real transactions (`bench.synth_chain`, hold_rate {res['hold_rate']}, "
        f"reuse_rate {res['reuse_rate']}). Mainnet has "
        f"{MAINNET['addresses'] / MAINNET['txs']:.2f} addresses and "
        f"{MAINNET['utxos'] / MAINNET['txs']:.3f} UTXOs per tx. *hold_rate*: the share of each "
        "re-linked block's spendable outputs that are never spent, so the UTXO set grows with "
        "the chain (0.164 UTXOs per tx / 2.18 spendable outputs per re-linked tx = 0.075; "
        "without it the re-linker leaves a constant ~130 k outputs unspent, 132,613 measured at "
        "423k txs, which adds to the held ones). "
        "*reuse_rate*: the share of a later pass's address-bearing outputs that pay to an "
        "address an earlier pass made (0.30 aims at 1.36 new addresses per tx: 1.88 without "
        "reuse, 1.55 at 0.25 on a 423k-tx chain). Per output that is more reuse than mainnet's "
        "(~0.5 new addresses per output), because these chains have more outputs per tx; "
        "matching per tx keeps addresses in mainnet's proportion to txs. *txs with a UTXO* is "
        "what the outpoint index holds (mainnet ≈ 130 M, 0.118 per tx).",
        "",
    ]
    rows = []
    for r in sizes:
        s, c = r["store"], r["chain"]
        rows.append([
            r["label"], f"{s['txs']:,}", f"{s['addresses']:,}",
            f"{s['addresses'] / s['txs']:.2f}", f"{s['utxos']:,}", f"{s['utxos'] / s['txs']:.3f}",
            f"{s['utxo_txs']:,}", f"{s['outputs'] / s['txs']:.2f}", f"{s['inputs'] / s['txs']:.2f}",
            _gb(c["blk_bytes"]), f"{c['seconds']:.0f} s",
        ])  # fmt: skip
    lines.append(
        table(
            [
                "chain",
                "txs",
                "addresses",
                "addr/tx",
                "UTXOs",
                "UTXO/tx",
                "txs with a UTXO",
                "outputs/tx",
                "inputs/tx",
                "blk bytes",
                "built in",
            ],
            rows,
        )  # fmt: skip
    )
    lines += ["", "## Per chain: peak RSS, wall and CPU time, store bytes", ""]
    rows = []
    for r in sizes:
        for stage in _stages(sizes):
            x = r[stage]
            rows.append([
                r["label"], stage, _mb(x["peak_rss_bytes"]), _mb(x["peak_anon_bytes"]),
                _mb(x["peak_file_bytes"]), f"{x['seconds']:.1f}", f"{x['cpu_seconds']:.1f}",
            ])  # fmt: skip
    lines.append(
        table(
            ["chain", "stage", "peak RSS", "peak RssAnon", "peak RssFile", "wall s", "CPU s"], rows
        )  # fmt: skip
    )
    lines += [""]
    rows = [
        [r["label"], f"{r['store']['store_bytes']:,}",
         f"{r['store']['store_bytes'] / r['store']['txs']:.0f}",
         f"{r['store']['store_bytes'] / r['chain']['blk_bytes']:.2f}"]
        for r in sizes
    ]  # fmt: skip
    lines.append(table(["chain", "store bytes", "B/tx", "store / blk"], rows))
    lines += [
        "",
        "- Peak RSS is the child's `ru_maxrss` (from `wait4`); RssAnon and RssFile are the peaks "
        "of /proc/PID/status sampled every 20 ms: RssFile is the memory-mapped arrays' page "
        "cache, which the kernel can drop (clean) or write back (dirty), RssAnon is not.",
        "- Ingest runs with `addrindex.DELTA_MAX` scaled to the chain (2^26 × txs / 1.1 G), so "
        "its in-memory delta holds the share of the addresses it holds at mainnet.",
    ]
    if "investigate" in _stages(sizes):
        lines.append(
            f"- investigate: {res['seeds_n']} random addresses of the store as seeds, "
            "`--no-report --no-pdf`, after `cluster`."
        )
    lines.append("")
    if all("address_cold" in r for r in sizes):
        lines += _render_lookups(sizes)
    lines += _render_projections(res)
    return "\n".join(lines)


def _render_lookups(sizes: list[dict[str, Any]]) -> list[str]:
    lines = ["## Cold `address` lookups", ""]
    rows = []
    for r in sizes:
        a, c = r["address_cold"], r["address_cli_cold"]
        rows.append([
            r["label"], f"{r['store']['txs']:,}", f"{a['p50_ms']} / {a['p99_ms']} ({a['n']})",
            f"{a['warm']['p50_ms']} / {a['warm']['p99_ms']}" if "warm" in a else "—",
            _rounds_p99(a),
            f"{a['read_kib']['p50']} / {a['read_kib']['p99']}" if "read_kib" in a else "—",
            f"{c['p50_ms']} / {c['p99_ms']} ({c['n']})",
            f"{c['startup']['p50_ms']} / {c['startup']['p99_ms']}",
        ])  # fmt: skip
    lines.append(
        table(
            [
                "chain",
                "txs",
                "in process p50 / p99 ms (n)",
                "warm, in process p50 / p99 ms",
                "each round's p99 ms",
                "KiB read per cold lookup p50 / p99",
                "`chainsleuth address` process p50 / p99 ms (n)",
                "`chainsleuth --version` process p50 / p99 ms",
            ],
            rows,
        )  # fmt: skip
    )
    first, last = sizes[0]["address_cold"], sizes[-1]["address_cold"]
    flat = lookup_flat(sizes)
    lines += [
        "",
        "Cold: before each lookup every file of the store is evicted from the page cache with "
        "`posix_fadvise(POSIX_FADV_DONTNEED)` (dropping the whole machine's cache needs "
        "/proc/sys/vm/drop_caches, which this container cannot write, and would disturb other "
        "work). *In process*: `Store.open` + `lookups.address_info`, what `chainsleuth address` "
        "runs, timed after the eviction (`python -m bench.scale lookups DATA --n N`). *Process*: "
        "a fresh `chainsleuth address ADDR --json` after the eviction, wall time, which adds the "
        "interpreter's start and imports (the `--version` column: the same start without the "
        "lookup). *Warm*: the same addresses again in the same process, not evicted. "
        "The in-process cold lookups run in rounds over the same addresses (`--lookup-rounds`, "
        "each evicted before every lookup): p50 and p99 are the medians of the rounds', so one "
        "burst of another process's I/O does not decide the verdict; every round's p99 is shown. "
        "*KiB read*: what each cold lookup made the kernel read from storage "
        "(/proc/self/io `read_bytes`), which the machine's load does not change: O(the answer) "
        "shows as a flat column.",
        f"- p99 in process, {sizes[0]['label']} → {sizes[-1]['label']}: {first['p99_ms']} → "
        f"{last['p99_ms']} ms; largest / smallest p99 over all sizes {flat['ratio']:.2f}×. "
        "Target < 100 ms at every size and flat (largest ≤ 2× smallest, allowing for a "
        "shared machine's noise): "
        f"{'**met**' if flat['ok'] else '**not met**'}.",
        "",
    ]
    return lines


def _rounds_p99(a: dict[str, Any]) -> str:
    """Each round's p99 ("—" for a run from before the rounds)."""
    return ", ".join(str(q["p99_ms"]) for q in a["rounds"]) if "rounds" in a else "—"


def _render_projections(res: dict[str, Any]) -> list[str]:
    sizes = res["sizes"]
    lines = [
        "## Projection to mainnet",
        "",
        f"Mainnet: {MAINNET['txs'] / 1e9:.1f} G txs, {MAINNET['addresses'] / 1e9:.1f} G "
        f"addresses, {MAINNET['utxos'] / 1e6:.0f} M UTXOs. Each figure is fitted against each of "
        "txs, addresses and UTXOs by least squares, linearly (y = a + b·x) and as a power law "
        "(y = c·x^k, the exponent shows whether growth is faster than linear), and projected to "
        "mainnet's count of that item; the table gives the largest of the six projections.",
        "",
    ]
    rows = []
    for p in res["projections"]:
        by = p["by"][p["driver"]]
        unit = _gb if "bytes" in p["metric"] else (lambda v: f"{v / 3600:,.1f} h")
        budget = ""
        if p["metric"] == "ingest.peak_rss_bytes":
            budget = f"≤ 16 GB: {'**met**' if p['value'] <= INGEST_BUDGET else '**not met**'}"
        elif p["metric"] in ("cluster.peak_rss_bytes", "investigate.peak_rss_bytes"):
            budget = f"≤ 24 GB: {'**met**' if p['value'] <= LATER_BUDGET else '**not met**'}"
        k = ", ".join(f"{d} k={f['k']:.2f}" for d, f in p["by"].items())
        per = "B" if "bytes" in p["metric"] else "s"
        rows.append([
            p["metric"], unit(p["value"]), f"{p['driver']}, {p['model']}",
            f"a = {by['a']:.4g}, b = {by['b']:.4g} {per} per {ITEM[p['driver']]}", k, budget,
        ])  # fmt: skip
    lines.append(
        table(
            [
                "figure",
                "mainnet",
                "from (driver, fit)",
                "linear fit",
                "power-law exponents",
                "budget",
            ],
            rows,
        )  # fmt: skip
    )
    lines += [
        "",
        "What the fits assume: that each figure keeps growing with its item as it does between "
        "the smallest and the largest chain here (no new term appears beyond 20 M txs); that "
        "mainnet's mix of inputs, outputs, reuse and UTXOs per tx is the chains' (measured in "
        "the first table; the chains are input- and output-heavier than mainnet's ~2.6 / 2.8 "
        "per tx, which overstates per-tx costs); that bounded structures stay bounded (the "
        "address delta at 2^26 ids, emulated by the scaled DELTA_MAX; the lookup index's sort "
        "chunk of 2^24 entries, which these chains do not all fill, so its growth here is "
        "projected linearly and overstated); and that power-of-two tables (the outpoint index) "
        "are averaged by the fit, up to 2× off at one size. Times are this 2-core shared box's.",
        "",
    ]
    lim = res.get("limit_run")
    if lim and "skipped" in lim:
        lines += [
            "## Ingest under a hard memory limit",
            "",
            f"**Not run** in this run (`--no-limit-run`): {lim['skipped']}",
            "",
        ]
    elif lim:
        ok = "**finished**" if lim["finished"] else f"**did not finish** (rc {lim['rc']})"
        lines += [
            "## Ingest under a hard memory limit",
            "",
            f"The {lim['label']} chain ({lim['n_txs']:,} txs) ingested again into a fresh store "
            f"under a limit of {lim['n_txs'] / 1e6:.0f} M / 1.1 G × 16 GB + fixed overheads = "
            f"{_mb(lim['n_txs'] / MAINNET['txs'] * INGEST_BUDGET)} + "
            f"{_mb(lim['fixed_bytes'])} = **{_mb(lim['limit']['limit_bytes'])}**, enforced by "
            f"{lim['limit']['kind']}: {ok} in {lim['seconds']:.0f} s, peak RSS "
            f"{_mb(lim['peak_rss_bytes'])} (RssAnon {_mb(lim['peak_anon_bytes'])}), cgroup "
            f"peak {_mb(lim['limit'].get('cgroup_peak_bytes', 0))}, limit hits (failcnt) "
            f"{lim['limit'].get('failcnt')}, OOM kills {lim['limit'].get('oom_kill')}.",
            "",
            "Fixed overheads = the peak RSS of the smallest chain's ingest in the same run "
            f"({sizes[0]['label']}): interpreter, libraries, numba's code and one 32-MiB batch's "
            "buffers, none of which grow with the chain. A memory cgroup (v1 "
            "`memory.limit_in_bytes`, v2 `memory.max`) counts anonymous memory and page cache "
            "alike and reclaims clean cache before it kills, so it limits what cannot be "
            "reclaimed; `ulimit -v` (the fallback) would count the address space of every "
            "memory-mapped array, gigabytes at 20 M txs, and is not what the budget means.",
            "",
        ]
    lines += _render_update(sizes)
    lines += ["## Commands", "", "```", res["command"]]
    for r in sizes[:1]:
        for stage in ("ingest", "cluster", "investigate", "address_cold", "address_cli_cold"):
            if stage in r:
                lines.append(" ".join(r[stage]["command"]))
        if "cluster_update" in r:
            lines.append(" ".join(r["cluster_update"]["process"]["command"]))
    lines += ["```", ""]
    return lines


def update_flat(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 13 item 3: a one-block update "must stay flat": the largest chain's median wall,
    CPU seconds and bytes published each at most 2x the smallest chain's (the lookups' rule,
    for a shared machine's noise; CPU is the steadier time on a loaded box), every update a
    delta layer (not a new base, not from scratch)."""
    ups = [r["cluster_update"] for r in sizes if "cluster_update" in r]
    if len(ups) < 1:
        return {"ok": None}
    first, last = ups[0], ups[-1]
    warm = {}
    if "warm" in first and "warm" in last:  # warm updates measured too: both must be flat
        w0, w1 = first["warm"], last["warm"]
        warm = {
            "warm_wall_ratio": w1["median_seconds"] / w0["median_seconds"]
            if w0["median_seconds"]
            else 1.0,
            "warm_cpu_ratio": w1["median_cpu_seconds"] / w0["median_cpu_seconds"]
            if w0["median_cpu_seconds"]
            else 1.0,
        }
    wall = last["median_seconds"] / first["median_seconds"] if first["median_seconds"] else 1.0
    c0, c1 = first.get("median_cpu_seconds", 0.0), last.get("median_cpu_seconds", 0.0)
    cpu = c1 / c0 if c0 else 1.0
    b0, b1 = first["median_bytes_published"], last["median_bytes_published"]
    bytes_ratio = b1 / b0 if b0 else float("inf")
    deltas = all(u["all_incremental"] for u in ups)
    ok = bool(len(ups) >= 2 and max(wall, cpu, bytes_ratio, *warm.values()) <= 2.0 and deltas)
    return {
        **warm,
        "ok": ok if len(ups) >= 2 else None,
        "wall_ratio": wall,
        "cpu_ratio": cpu,
        "bytes_ratio": bytes_ratio,
        "all_incremental": deltas,
        "sizes": len(ups),
    }


def verdicts(res: dict[str, Any]) -> list[dict[str, str]]:
    """One row per target of issue 13: what was measured or projected, the budget, and
    "met", "not met", "not measured" or "not run"."""
    sizes = res["sizes"]
    proj = {p["metric"]: p for p in res.get("projections", [])}
    rows: list[dict[str, str]] = []

    def memory(stage: str, budget: float) -> None:
        for key, what in (("peak_rss_bytes", "peak RSS"), ("peak_anon_bytes", "peak RssAnon")):
            p = proj.get(f"{stage}.{key}")
            target = f"{stage} {what} at mainnet"
            if p is None:
                rows.append({"target": target, "figure": "—", "budget": f"≤ {budget / 1e9:.0f} GB",
                             "verdict": "not measured"})  # fmt: skip
                continue
            rows.append({
                "target": target,
                "figure": f"{_gb(p['value'])} (projected: {p['driver']}, {p['model']})",
                "budget": f"≤ {budget / 1e9:.0f} GB",
                "verdict": "met" if p["value"] <= budget else "not met",
            })  # fmt: skip

    memory("ingest", INGEST_BUDGET)
    memory("cluster", LATER_BUDGET)
    memory("investigate", LATER_BUDGET)
    flat = res.get("lookup_flat") or lookup_flat(sizes)
    cold = [r for r in sizes if "address_cold" in r]
    if cold:
        figure = ", ".join(f"{r['label']} {r['address_cold']['p99_ms']} ms" for r in cold)
        rows.append({
            "target": "cold `address` lookup p99, flat",
            "figure": f"{figure}; largest / smallest {flat['ratio']:.2f}×",
            "budget": "< 100 ms at every size, largest ≤ 2× smallest",
            "verdict": "met" if flat["ok"] else "not met",
        })  # fmt: skip
    else:
        rows.append({"target": "cold `address` lookup p99, flat", "figure": "—",
                     "budget": "< 100 ms, flat", "verdict": "not measured"})  # fmt: skip
    uf = update_flat(sizes)
    ups = [r for r in sizes if "cluster_update" in r]
    if ups:
        figure = ", ".join(
            f"{r['label']} {r['cluster_update']['median_seconds']:.2f} s / "
            f"{r['cluster_update'].get('median_cpu_seconds', 0):.2f} CPU s / "
            f"{r['cluster_update']['median_bytes_published'] / 1e6:.3f} MB"
            for r in ups
        )
        verdict = {True: "met", False: "not met", None: "not measured (one size)"}[uf["ok"]]
        rows.append({
            "target": "one-block cluster update (median wall / CPU / bytes published), flat",
            "figure": figure,
            "budget": "largest ≤ 2× smallest, a delta layer each time",
            "verdict": verdict,
        })  # fmt: skip
    else:
        rows.append({"target": "one-block cluster update, flat", "figure": "—",
                     "budget": "largest ≤ 2× smallest", "verdict": "not measured"})  # fmt: skip
    lim = res.get("limit_run")
    target = "ingest under a hard memory limit"
    if not lim:
        rows.append({"target": target, "figure": "—", "budget": "finishes",
                     "verdict": "not run"})  # fmt: skip
    elif "skipped" in lim:
        rows.append({"target": target, "figure": lim["skipped"],
                     "budget": "finishes", "verdict": "not run"})  # fmt: skip
    else:
        rows.append({
            "target": target,
            "figure": f"{lim['label']} under {_mb(lim['limit']['limit_bytes'])}: rc {lim['rc']}, "
            f"{lim['seconds']:.0f} s",
            "budget": "finishes",
            "verdict": "met" if lim["finished"] else "not met",
        })  # fmt: skip
    return rows


def _render_verdicts(res: dict[str, Any]) -> list[str]:
    rows = [[v["target"], v["figure"], v["budget"], f"**{v['verdict']}**"] for v in verdicts(res)]
    return [
        "## Verdicts",
        "",
        table(["target", "measured / projected", "budget", "verdict"], rows),
        "",
        'Memory projections: the largest of six fits (below, "Projection to mainnet"); with '
        "fewer sizes than planned they rest on fewer points. RssAnon is what a memory limit "
        "cannot reclaim; peak RSS adds the mapped arrays' page cache (RssFile).",
        "",
    ]


def _render_update(sizes: list[dict[str, Any]]) -> list[str]:
    lines = ["## One-block cluster update (issue 13 item 3)", ""]
    ups = [r for r in sizes if "cluster_update" in r]
    if not ups:
        return lines + [
            "Not measured in this run (`--with-update` measures it).",
            "",
        ]
    rows = []
    for r in ups:
        u = r["cluster_update"]
        d, proc = u["delta"], u["process"]
        full = u.get("full_republish")
        rows.append([
            r["label"], f"{r['store']['txs']:,}", str(len(d)),
            f"{min(x['block_txs'] for x in d):,}–{max(x['block_txs'] for x in d):,}",
            f"{u['median_seconds']:.2f} ({min(x['seconds'] for x in d):.2f}–"
            f"{max(x['seconds'] for x in d):.2f})",
            f"{u['median_cpu_seconds']:.2f}",
            f"{u['warm']['median_seconds']:.2f} / {u['warm']['median_cpu_seconds']:.2f}"
            if "warm" in u else "—",
            f"{u['median_bytes_published'] / 1e6:.2f} MB",
            _mb(u["max_peak_rss_bytes"]) if u["max_peak_rss_bytes"] else "—",
            f"{_mb(proc['peak_rss_bytes'])} / {_mb(proc['peak_anon_bytes'])}",
            (f"{full['seconds']:.1f} s, {full['cpu_seconds']:.1f} CPU s, "
             f"{(full['bytes_published'] or 0) / 1e6:,.1f} MB ({full['published']})")
            if full else "not measured",
        ])  # fmt: skip
    lines.append(
        table(
            [
                "chain",
                "txs",
                "updates",
                "block txs",
                "cold: median wall s (min–max)",
                "cold: median CPU s",
                "warm: median wall / CPU s",
                "median bytes published",
                "peak RSS during an update",
                "update process peak RSS / RssAnon",
                "full republish of one block",
            ],
            rows,
        )  # fmt: skip
    )
    uf = update_flat(sizes)
    lines += [
        "",
        "After each size's other stages, a fresh process (`python -m bench.scale update`) "
        "appends the next block of the shared chain to the clustered store (`ingest` of one "
        "block, not timed here) and runs the incremental `cluster_store`, what `chainsleuth "
        "cluster` runs. *Cold*: every file of the store evicted from the page cache after the "
        "block's ingest; *warm*: the next blocks, not evicted. Timed in-process: wall and CPU seconds of the update, the bytes of the "
        "files it published (the delta layer), and the process's peak RSS during it (VmHWM, "
        "reset before the update). The process column is the whole child (one-block ingests "
        "included). *Full republish*: one more block, published as a whole new base "
        "(`compact_rows=-1`), what every update cost before delta layers; measured, not "
        "estimated.",
    ]
    if uf["ok"] is not None:
        lines.append(
            f"- {ups[0]['label']} → {ups[-1]['label']}: cold median wall ×{uf['wall_ratio']:.2f}, "
            f"CPU ×{uf.get('cpu_ratio', 1.0):.2f}"
            + (
                f"; warm wall ×{uf['warm_wall_ratio']:.2f}, CPU ×{uf['warm_cpu_ratio']:.2f}"
                if "warm_cpu_ratio" in uf
                else ""
            )
            + f"; bytes published ×{uf['bytes_ratio']:.2f}"
            f"{'' if uf['all_incremental'] else ', not every update was a delta layer'}. "
            "Target: flat (each ≤ 2× the smallest size's): "
            f"{'**met**' if uf['ok'] else '**not met**'}."
        )
    lines.append("")
    return lines


def machine() -> dict[str, Any]:
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "mem_gib": mem / 2**30,
        "loadavg": " / ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "commit": commit,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    order = list(dict.fromkeys(args.sizes))  # run in the order given; the report sorts them
    labels = sorted(order, key=parse_size)
    limit_label = args.limit_size or labels[-1]
    if limit_label not in labels:
        raise SystemExit(f"bench-scale: --limit-size {limit_label} is not one of --sizes")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    full = shared_chain(labels, args)  # before the warm-up: a --chain that does not fit stops
    if args.chain_only:
        log(f"chain: {full.n_txs:,} txs in {Path(full.blocks_dir).parent}")
        return {}
    if not args.no_warm_up:
        warm_up(Path(args.work) / "warm-up")
    res: dict[str, Any] = {
        "command": "python -m bench.scale " + shlex.join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "hold_rate": args.hold_rate,
        "reuse_rate": args.reuse_rate,
        "seeds_n": args.seeds_n,
        "stages": args.stages,
        "note": args.note,
        "order": order,
        "chain_dir": str(Path(full.blocks_dir).parent),
        "sizes": [],
    }
    res["chain_build_seconds"] = full.seconds
    if args.no_limit_run is not None:
        res["limit_run"] = {"label": limit_label, "skipped": args.no_limit_run}
    for label in order:
        r = measure_size(label, parse_size(label), full, args)
        res["sizes"].append(r)
        res["sizes"].sort(key=lambda x: x["chain"]["n_txs"])
        if not args.keep:
            shutil.rmtree(r["base"], ignore_errors=True)
        _write(res, args, started)  # after each size, so a long run leaves its figures
    if args.no_limit_run is None:
        # after every size: its fixed overheads are the smallest chain's ingest peak, and it
        # competes with none of the other measurements
        base = Path(args.work) / f"limit-{limit_label}"
        shutil.rmtree(base, ignore_errors=True)
        cp = _checkpoint(full, parse_size(limit_label))
        info = synth_chain.prefix_chain(Path(full.blocks_dir), cp, base / "blocks")
        r = {"label": limit_label, "base": str(base), "chain": asdict(info)}
        fixed = res["sizes"][0]["ingest"]["peak_rss_bytes"]
        res["limit_run"] = {"label": limit_label, **limit_run(r, fixed, args)}
        shutil.rmtree(base, ignore_errors=True)
        _write(res, args, started)
    if not args.keep and args.chain is None:
        shutil.rmtree(Path(args.work) / "chain", ignore_errors=True)
    return res


def lookup_flat(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Cold p99 below 100 ms at every size, and the largest p99 at most 2x the smallest."""
    p99 = [r["address_cold"]["p99_ms"] for r in sizes if "address_cold" in r]
    if not p99:
        return {"ratio": None, "ok": None}
    ratio = max(p99) / min(p99) if min(p99) > 0 else float("inf")
    return {"ratio": ratio, "ok": bool(max(p99) < 100 and ratio <= 2.0)}


def _write(res: dict[str, Any], args: argparse.Namespace, started: float) -> None:
    sizes = res["sizes"]
    res["lookup_flat"] = lookup_flat(sizes)
    res["projections"] = projections(sizes)
    res["total_seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    out.write_text(render(res))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ingest"]:  # child: python -m bench.scale ingest --delta-max N BLOCKS DATA
        _child_ingest(argv[3], argv[4], int(argv[2]))
        return 0
    if argv[:1] == ["lookups"]:  # child: python -m bench.scale lookups DATA --n N [--rounds R]
        rounds = int(argv[5]) if argv[4:5] == ["--rounds"] else 1
        _child_lookups(argv[1], int(argv[3]), 1, rounds)
        return 0
    if argv[:1] == ["update"]:  # child: python -m bench.scale update BLOCKS DATA --blocks N ...
        _child_update(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["2M", "5M", "10M", "20M"])
    p.add_argument("--work", default="/tmp/chainsleuth-scale", help="chains and stores go here")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-scale.md"))
    p.add_argument("--limit-size", help="which size is ingested under the limit (the largest)")
    p.add_argument("--lookups", type=int, default=300, help="cold lookups in process, per size")
    p.add_argument(
        "--lookup-rounds", type=int, default=3, help="rounds of the cold lookups (median p99)"
    )
    p.add_argument("--cli-lookups", type=int, default=30, help="fresh `address` processes")
    p.add_argument("--seeds-n", type=int, default=1000, help="investigate's seed addresses")
    p.add_argument("--hold-rate", type=float, default=HOLD_RATE)
    p.add_argument("--reuse-rate", type=float, default=REUSE_RATE)
    p.add_argument("--keep", action="store_true", help="keep each chain and store")
    p.add_argument("--no-warm-up", action="store_true", help="numba's cache is known to be warm")
    p.add_argument(
        "--with-update",
        action="store_true",
        help="also measure one-block cluster updates per size, and a full republish",
    )
    p.add_argument("--update-blocks", type=int, default=5, help="one-block updates per size")
    p.add_argument("--no-republish", action="store_true", help="with-update: no full republish")
    p.add_argument("--chain", type=Path, help="reuse this built chain (read-only; --chain-only)")
    p.add_argument("--chain-only", action="store_true", help="build WORK/chain for --sizes, stop")
    p.add_argument("--note", help="a line for the report (e.g. the box's load during the run)")
    p.add_argument(
        "--no-limit-run",
        metavar="REASON",
        help="skip the ingest under the hard memory limit; the report says it was not run, why",
    )
    p.add_argument("--render", type=Path, help="only write --out again from this JSON")
    p.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="what to measure per chain (each needs the ones before it; the limit run is ingest's)",
    )
    args = p.parse_args(argv)
    if args.render is not None:
        res = json.loads(args.render.read_text())
        if args.note:  # e.g. the load seen while the run went, known only afterwards
            res["note"] = args.note
            Path(args.out).with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        Path(args.out).write_text(render(res))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
