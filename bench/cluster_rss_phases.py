"""Where a clustering's anonymous memory goes, phase by phase (issue 13, item 1).

    python -m bench.cluster_rss_phases DATA [--policy conservative] [--json OUT.json]

Runs `cluster_store(DATA, policy, from_scratch=True)` in this process (it rewrites
`DATA/clusters/`) while a thread samples `RssAnon` and `RssFile` from /proc/self/status every
millisecond (the numba kernels and pyarrow release the GIL, so the sampler runs during them).
The clusterer's functions are wrapped with phase markers: each sample is charged to the
innermost phase running, and the report gives per phase its calls, `RssAnon` at its first
entry and last exit and the highest sample inside it. Run it on chains of two sizes and
divide the differences by the addresses (or txs) between them to get bytes per item per phase.

The wrappers only time and sample; the clustering is the library's own, unchanged.

    python -m bench.cluster_rss_phases DATA --investigate SEEDS.csv CASE [--tracemalloc] [--trim]

`--investigate` profiles a case instead (every function `cases.investigate` and
`trace.services` call by name). `--tracemalloc` also gives per phase the highest bytes traced
by Python's tracemalloc (numpy's arrays report to it) and the bytes still traced at its exit:
what the phase's own structures and temporaries cost, with no allocator retention in it.
`--trim` calls `core.heap.bound_heap()` first and `core.heap.trim_heap()` after every phase:
RssAnon then shows the bytes in use, not what malloc kept. `--held PHASE ...` (with
`--tracemalloc`): at the first exit of each named phase, the lines of code whose allocations
are still alive, largest first (what the case holds from then on, by where it was made).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa


def _status() -> tuple[int, int]:
    anon = file = 0
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"RssAnon:"):
                anon = int(line.split()[1]) * 1024
            elif line.startswith(b"RssFile:"):
                file = int(line.split()[1]) * 1024
    return anon, file


class Phases:
    """A stack of phase names and, per phase, its samples' peaks."""

    def __init__(self) -> None:
        self.stack: list[str] = ["setup"]
        self.stats: dict[str, dict[str, Any]] = {}
        self.peak = (0, "", 0)  # (anon, phase, file at that moment)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.events: list[tuple[str, str, int]] = []  # (phase, "in" or "out", RssAnon)
        self.traced = False  # --tracemalloc: per phase, tracemalloc's peak
        self.trim = False  # --trim: core.heap.trim_heap() after every phase
        self.peaks: list[int] = [0]  # per open phase: the highest traced bytes seen so far
        self.held: set[str] = set()  # --held: phases whose first exit takes a snapshot
        self.snapshots: dict[str, list[tuple[str, int, int]]] = {}

    def _stat(self, name: str) -> dict[str, Any]:
        return self.stats.setdefault(
            name,
            {"calls": 0, "seconds": 0.0, "anon_in_first": None, "anon_out_last": 0,
             "anon_peak": 0, "file_peak": 0, "arrow_peak": 0, "traced_peak": 0,
             "traced_out_last": 0},
        )  # fmt: skip

    def charge(self, anon: int, file: int) -> None:
        with self.lock:
            name = self.stack[-1]
            s = self._stat(name)
            s["anon_peak"] = max(s["anon_peak"], anon)
            s["file_peak"] = max(s["file_peak"], file)
            s["arrow_peak"] = max(s["arrow_peak"], pa.total_allocated_bytes())
            if anon > self.peak[0]:
                self.peak = (anon, name, file)

    def sample(self) -> None:
        while not self.done.wait(0.001):
            self.charge(*_status())

    def wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            anon, file = _status()
            self.charge(anon, file)
            with self.lock:
                s = self._stat(name)
                s["calls"] += 1
                if s["anon_in_first"] is None:
                    s["anon_in_first"] = anon
                self.events.append((name, "in", anon))
                self.stack.append(name)
                if self.traced:
                    # the enclosing phase's peak so far is kept before the peak is reset
                    self.peaks[-1] = max(self.peaks[-1], tracemalloc.get_traced_memory()[1])
                    tracemalloc.reset_peak()
                    self.peaks.append(0)
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.trim:
                    from chainsleuth.core.heap import trim_heap

                    trim_heap()
                anon, file = _status()
                self.charge(anon, file)
                with self.lock:
                    self.stack.pop()
                    s["seconds"] += time.perf_counter() - t
                    s["anon_out_last"] = anon
                    self.events.append((name, "out", anon))
                    if self.traced and name in self.held and name not in self.snapshots:
                        top = tracemalloc.take_snapshot().statistics("lineno")[:25]
                        self.snapshots[name] = [(str(t.traceback[0]), t.size, t.count) for t in top]
                    if self.traced:
                        now, peak = tracemalloc.get_traced_memory()
                        peak = max(peak, self.peaks.pop())
                        s["traced_peak"] = max(s["traced_peak"], peak)
                        s["traced_out_last"] = now
                        self.peaks[-1] = max(self.peaks[-1], peak)

        return wrapped


def instrument(phases: Phases) -> None:
    """Wrap the clusterer's functions where the engine and publish call them."""
    from chainsleuth.cluster import engine, publish, ranges

    for module, name in [
        (engine, "load_state"),
        (engine, "process_range"),
        (engine, "_merge_rows"),
        (engine, "publish"),
        (publish, "_write_base"),
        (publish, "flatten"),
        (publish, "member_lists"),
        (publish, "encode_key_rows"),
        (publish, "_gather"),
        (ranges, "analyze_range"),
    ]:
        setattr(module, name, phases.wrap(name, getattr(module, name)))
    ranges_apply = ranges.kernels.apply_merges
    ranges.kernels = _KernelsProxy(ranges.kernels, phases.wrap("apply_merges", ranges_apply))
    publish.EvidenceWriter.add = phases.wrap("evidence.add", publish.EvidenceWriter.add)
    engine.EvidenceWriter = publish.EvidenceWriter


def instrument_investigate(phases: Phases) -> None:
    """Wrap every chainsleuth function `cases.investigate` and `trace.services` call by name."""
    import inspect

    from chainsleuth.cases import investigate as inv
    from chainsleuth.trace import services

    for module in (inv, services):
        for name, obj in list(vars(module).items()):
            if (
                inspect.isfunction(obj)
                and obj.__module__.startswith("chainsleuth")
                and name != "investigate"
            ):
                setattr(module, name, phases.wrap(name, obj))


class _KernelsProxy:
    """`ranges.kernels` with `apply_merges` wrapped (the rest passed through)."""

    def __init__(self, module: Any, apply_merges: Any) -> None:
        self._module = module
        self.apply_merges = apply_merges

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("--policy", default="conservative")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--timeline", action="store_true", help="print every phase's entry and exit")
    p.add_argument(
        "--investigate",
        nargs=2,
        metavar=("SEEDS", "CASE"),
        help="profile `investigate(DATA, SEEDS, CASE)` instead (the functions it calls by name)",
    )
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also report each phase's peak bytes traced by tracemalloc (numpy's included)",
    )
    p.add_argument(
        "--trim",
        action="store_true",
        help="bound malloc's heap (core.heap.bound_heap) and trim it after every phase",
    )
    p.add_argument(
        "--held",
        nargs="+",
        default=[],
        metavar="PHASE",
        help="with --tracemalloc: what is still allocated at these phases' first exit, by line",
    )
    args = p.parse_args(argv)
    from chainsleuth.cluster import engine
    from chainsleuth.store.store import Store

    phases = Phases()
    phases.traced, phases.trim = args.tracemalloc, args.trim
    phases.held = set(args.held)
    if args.trim:
        from chainsleuth.core.heap import bound_heap

        bound_heap()
    if args.tracemalloc:
        tracemalloc.start()
    if args.investigate:
        instrument_investigate(phases)
    else:
        instrument(phases)
    counts = Store.open(args.data).counts
    sampler = threading.Thread(target=phases.sample, daemon=True)
    anon0, _ = _status()
    sampler.start()
    t = time.perf_counter()
    with phases.lock:
        phases.stack.append("investigate" if args.investigate else "cluster_store")
    if args.investigate:
        from chainsleuth.cases.investigate import investigate

        investigate(args.data, Path(args.investigate[0]), Path(args.investigate[1]), report=False)
        report = None
    else:
        report = engine.cluster_store(args.data, args.policy, from_scratch=True)
    phases.done.set()
    sampler.join()
    traced_peak = (
        max(phases.peaks[0], tracemalloc.get_traced_memory()[1]) if args.tracemalloc else 0
    )
    out = {
        "data": str(args.data),
        "policy": args.policy,
        "txs": counts["txs"],
        "addresses": counts["addresses"],
        "anon_before": anon0,
        "peak_anon": phases.peak[0],
        "peak_phase": phases.peak[1],
        "peak_file": phases.peak[2],
        "traced_peak": traced_peak,
        "trim": args.trim,
        "seconds": time.perf_counter() - t,
        "merges": report.merges if report else None,
        "clusters": report.clusters if report else None,
        "phases": phases.stats,
        "held": phases.snapshots,
        "events": phases.events,
    }
    mb = 1e6
    print(
        f"{args.data}: {counts['txs']:,} txs, {counts['addresses']:,} addresses; anon before "
        f"{anon0 / mb:.1f} MB, peak {phases.peak[0] / mb:.1f} MB in {phases.peak[1]}"
        + (f"; traced peak {traced_peak / mb:.1f} MB" if args.tracemalloc else ""),
        file=sys.stderr,
    )
    traced_head = f"{'traced':>9}{'tr out':>9}" if args.tracemalloc else ""
    print(
        f"{'phase':<22}{'calls':>6}{'anon in':>10}{'anon out':>10}{'peak':>10}{'arrow':>9}"
        f"{traced_head}{'s':>7}"
    )
    for name, s in phases.stats.items():
        traced = (
            f"{s['traced_peak'] / mb:>9.1f}{s['traced_out_last'] / mb:>9.1f}"
            if args.tracemalloc
            else ""
        )
        print(
            f"{name:<22}{s['calls']:>6}{(s['anon_in_first'] or 0) / mb:>10.1f}"
            f"{s['anon_out_last'] / mb:>10.1f}{s['anon_peak'] / mb:>10.1f}"
            f"{s['arrow_peak'] / mb:>9.1f}{traced}{s['seconds']:>7.2f}"
        )
    for name, rows in phases.snapshots.items():
        print(f"held at the exit of {name} (tracemalloc, by line):")
        for where, size, count in rows:
            print(f"  {size / mb:>9.2f} MB {count:>9,} blocks  {where}")
    if args.timeline:
        for name, edge, anon in phases.events:
            if name not in ("encode_key_rows", "_merge_rows", "evidence.add"):
                print(f"  {edge:>3} {name:<18}{anon / mb:>10.1f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
