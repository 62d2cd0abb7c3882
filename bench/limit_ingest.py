"""One ingest of a `bench-scale` chain prefix, alone, optionally under the hard memory limit, with
a per-minute monitor: what `bench.scale`'s limit run does (`MemoryLimit`, `ingest_cmd`), plus
the child's rusage split (user, sys, major faults, blocks read) and its progress over time.

    python -m bench.limit_ingest --chain WORK/chain --size 20M --work W --limit-mb 1358.6 \
        --json-out W/limited.json
    python -m bench.limit_ingest --chain WORK/chain --size 2M --work W --json-out W/2m.json

Each monitor line (stderr, and `monitor` in the JSON): seconds since start, txs committed (the
store's manifest), the child's major faults, bytes read from disk (/proc/PID/io), user and sys
CPU seconds, RssAnon. `--stop-after S` kills the child after S seconds and reports how far it
got (`finished: false`). `--steps` runs the ingest in a child of this module that charges the
main thread's major faults and CPU (`RUSAGE_THREAD`) to the innermost writer or address-index
step running (`STEPS`; the parquet step is charged its own thread's), written to `steps.json` beside the store every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import synth_chain
from bench.scale import MemoryLimit, _checkpoint, _status, ingest_cmd, parse_size, run_measured

#: (module, class, method, step name): the steps `--steps` charges.
STEPS = (
    ("chainsleuth.store.addrindex", "AddressIndex", "_find_tables", "addr_lookup"),
    ("chainsleuth.store.addrindex", "AddressIndex", "_find_base", "addr_lookup"),  # format 1
    ("chainsleuth.store.addrindex", "AddressIndex", "merge", "addr_merge"),
    ("chainsleuth.store.addrindex", "AddressIndex", "_catch_up", "addr_catch_up"),
    ("chainsleuth.store.writer", "StoreWriter", "_append_txs", "txs"),
    ("chainsleuth.store.writer", "StoreWriter", "_append_outputs", "outputs"),
    ("chainsleuth.store.writer", "StoreWriter", "_append_inputs", "inputs"),
    ("chainsleuth.store.writer", "StoreWriter", "_apply_spends", "spends"),
    ("chainsleuth.store.writer", "StoreWriter", "update_lookup", "lookup_update"),
    ("chainsleuth.store.writer", "StoreWriter", "commit", "commit"),
    ("chainsleuth.store.writer", "StoreWriter", "_write_tables", "parquet (writer thread)"),
)


def _child_steps(blocks: str, data_dir: str, delta_max: int) -> None:
    """`bench.scale`'s ingest child, with each step of STEPS charged its own faults and CPU."""
    import importlib
    import resource

    from chainsleuth.store import addrindex
    from chainsleuth.store.ingest import ingest_blocks_dir

    addrindex.DELTA_MAX = delta_max
    totals: dict[str, list[float]] = {}
    stack: list[list[float]] = []  # per running step: faults and CPU charged to its callees
    out = Path(data_dir).parent / "steps.json"
    last = [time.monotonic()]
    main = threading.get_ident()

    def usage() -> tuple[float, float]:
        ru = resource.getrusage(resource.RUSAGE_THREAD)
        return float(ru.ru_majflt), ru.ru_utime + ru.ru_stime

    def wrap(name: str, fn: Any) -> Any:
        def inner(*a: Any, **k: Any) -> Any:
            if threading.get_ident() != main:  # another thread: its own faults and CPU
                f0, c0 = usage()
                try:
                    return fn(*a, **k)
                finally:
                    f1, c1 = usage()
                    t = totals.setdefault(name, [0.0, 0.0, 0.0])
                    t[0] += f1 - f0
                    t[1] += c1 - c0
                    t[2] += 1
            f0, c0 = usage()
            stack.append([0.0, 0.0])
            try:
                return fn(*a, **k)
            finally:
                f1, c1 = usage()
                inner_f, inner_c = stack.pop()
                df, dc = f1 - f0, c1 - c0
                t = totals.setdefault(name, [0.0, 0.0, 0.0])
                t[0] += df - inner_f
                t[1] += dc - inner_c
                t[2] += 1
                if stack:
                    stack[-1][0] += df
                    stack[-1][1] += dc
                if time.monotonic() - last[0] > 10:
                    last[0] = time.monotonic()
                    f, c = usage()
                    body = {"thread_faults": f, "thread_cpu_s": c, "steps": totals}
                    out.write_text(json.dumps(body))

        return inner

    for module, cls, method, name in STEPS:
        klass = getattr(importlib.import_module(module), cls)
        if hasattr(klass, method):  # an older store module may lack some
            setattr(klass, method, wrap(name, getattr(klass, method)))
    report = ingest_blocks_dir(Path(blocks), Path(data_dir))
    f, c = usage()
    out.write_text(json.dumps({"thread_faults": f, "thread_cpu_s": c, "steps": totals}))
    print(json.dumps({"n_txs": report.n_txs, "n_addresses": report.n_new_addresses}))


def _proc(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        tick = os.sysconf("SC_CLK_TCK")
        out["majflt"] = int(fields[9])
        out["user_s"] = int(fields[11]) / tick
        out["sys_s"] = int(fields[12]) / tick
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "read_bytes":
                out["read_bytes"] = int(value)
    except (OSError, ValueError):
        pass
    return out


def _txs(data: Path) -> int | None:
    try:
        return int(json.loads((data / "manifest.json").read_text())["counts"]["txs"])
    except (OSError, ValueError, KeyError):
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    full = synth_chain.ChainInfo(**json.loads((args.chain / "chain.json").read_text()))
    n = parse_size(args.size)
    base = args.work / args.size
    blocks = base / "blocks"
    if not blocks.exists():
        synth_chain.prefix_chain(Path(full.blocks_dir), _checkpoint(full, n), blocks)
    n_txs = int(_checkpoint(full, n)["n_txs"])
    data = base / "data"
    shutil.rmtree(data, ignore_errors=True)
    steps = base / "steps.json"
    steps.unlink(missing_ok=True)  # a run before this one's
    limit = MemoryLimit(int(args.limit_mb * 1e6)) if args.limit_mb else None
    cmd = ingest_cmd(blocks, data, n_txs)
    if args.steps:
        cmd = [sys.executable, "-m", "bench.limit_ingest", "_child", *cmd[-2:], cmd[-3]]
    res: dict[str, Any] = {
        "command": cmd,
        "n_txs": n_txs,
        "limit": None if limit is None else {"kind": limit.kind, "bytes": limit.limit},
        "load_at_start": os.getloadavg(),
        "monitor": [],
    }
    killed = {"by_us": False}
    next_line = [args.every]

    def tick(proc: subprocess.Popen[bytes], seconds: float) -> None:
        if seconds >= next_line[0]:
            next_line[0] += args.every
            line = {
                "s": round(seconds, 1),
                "txs": _txs(data),
                **_proc(proc.pid),
                "rss_anon": _status(proc.pid).get("RssAnon"),
                "load": os.getloadavg()[0],
            }
            res["monitor"].append(line)
            print(json.dumps(line), file=sys.stderr, flush=True)
        if args.stop_after and seconds > args.stop_after and not killed["by_us"]:
            res["monitor"].append({"s": round(seconds, 1), "txs": _txs(data), **_proc(proc.pid)})
            killed["by_us"] = True
            proc.send_signal(signal.SIGKILL)

    r = run_measured(cmd, limit, tick=tick, every=0.05)
    res.update(
        rc=r["rc"],
        finished=r["rc"] == 0,
        killed_by_bench=killed["by_us"],
        wall_s=round(r["seconds"], 1),
        user_s=round(r["user_seconds"], 1),
        sys_s=round(r["sys_seconds"], 1),
        major_faults=r["major_faults"],
        read_bytes_inblock=r["read_bytes_inblock"],
        ru_maxrss_bytes=r["peak_rss_bytes"],
        peak_rss_anon_bytes=r["peak_anon_bytes"],
        peak_rss_file_bytes=r["peak_file_bytes"],
        txs_committed=_txs(data),
        load_at_end=os.getloadavg(),
        stdout_tail=r["stdout_tail"][-1000:],
        stderr_tail=r["stderr_tail"][-1500:],
    )
    if limit is not None:
        res["limit"] = limit.report()
        limit.close()
    if args.steps and steps.exists():
        res["steps"] = json.loads(steps.read_text())
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        _child_steps(argv[1], argv[2], int(argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chain", type=Path, required=True, help="a built chain (WORK/chain)")
    p.add_argument("--size", required=True, help="its prefix to ingest: 2M, 20M, ...")
    p.add_argument("--work", type=Path, required=True, help="the prefix and store go here")
    p.add_argument("--limit-mb", type=float, help="hard memory limit (cgroup, else RLIMIT_AS)")
    p.add_argument("--every", type=float, default=60.0, help="seconds between monitor lines")
    p.add_argument("--stop-after", type=float, help="kill the ingest after this many seconds")
    p.add_argument("--keep", action="store_true", help="keep the store")
    p.add_argument("--steps", action="store_true", help="charge faults and CPU to each step")
    p.add_argument("--json-out", type=Path, required=True)
    args = p.parse_args(argv)
    res = run(args)
    args.json_out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k not in ("monitor", "command")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
