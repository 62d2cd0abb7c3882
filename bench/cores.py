"""How each stage scales from 1 to 2 cores, measured so that a shared box can be read
(issue 13, item 6): `make bench`'s "Scaling by stage" section.

Why it exists: on a box shared with other sessions a second thread mostly waits for a core, so
"1 thread vs 2 threads" in one process measures the neighbours, not the code. Here each stage
runs in a fresh process pinned (`os.sched_setaffinity`, set before the interpreter starts) to
one core and then to two, alternated; the stage picks its own thread count from the cores it
may run on (`ingest.parse_threads`, `cluster.ranges.threads`, `investigate.trace_threads`), as
it would on a 16-core machine. Around the timed call the child records wall and CPU seconds,
the load average and `/proc/stat` of the pinned cores, so the parent can say how much of those
cores other processes (and the hypervisor: steal) took meanwhile: the *cores actually
available*. The speed-up is shown raw and adjusted for that, with the parallel fraction it
implies (Amdahl) and what that projects for 16 cores.

    python -m bench.cores ingest '{"blocks_dir": "...", "data_dir": "..."}'   # one child run

Stages: ingest (parse threads beside the sequential link and write), cluster (the clusterer end
to end from the store's arrays: per-tx analysis on threads, merges in chain order, flatten on
threads) and trace (investigate's backward trace over every deposit output, one chunk of seeds
per thread). The simulator is one thread by design and is not measured here.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, scaling, table

#: /proc/stat's per-CPU columns after the name, in the kernel's order
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
#: the columns that count as a CPU being busy (guest time is already inside user and nice)
_BUSY = ("user", "nice", "system", "irq", "softirq")

CORES_PROJECTED = 16


def read_proc_stat(text: str | None = None) -> dict[str, dict[str, int]]:
    """Per-CPU jiffies from /proc/stat ("cpu" is the sum, "cpu0"... each core)."""
    if text is None:
        text = Path("/proc/stat").read_text()
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if not line.startswith("cpu"):
            continue
        name, *values = line.split()
        nums = [int(v) for v in values[: len(_FIELDS)]]
        nums += [0] * (len(_FIELDS) - len(nums))
        out[name] = dict(zip(_FIELDS, nums, strict=True))
    return out


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def contention(
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
    cores: list[int],
    wall_s: float,
    cpu_s: float,
    hz: int | None = None,
) -> dict[str, float]:
    """What the pinned `cores` did during a run of `wall_s` in which the stage used `cpu_s`:
    busy CPU seconds on them, of which others' (busy minus ours), steal, and the cores actually
    available to the stage = pinned cores − (others' + steal) / wall, at least 0.05 of a core
    (ours cannot be told apart from others' within a jiffy, hence the clamps)."""
    tick = float(hz or os.sysconf("SC_CLK_TCK"))
    busy = steal = 0.0
    for c in cores:
        b, a = before[f"cpu{c}"], after[f"cpu{c}"]
        busy += sum(a[k] - b[k] for k in _BUSY) / tick
        steal += (a["steal"] - b["steal"]) / tick
    others = max(0.0, busy - cpu_s)
    wall = max(wall_s, 1e-9)
    available = min(float(len(cores)), max(0.05, len(cores) - (others + steal) / wall))
    return {
        "busy_s": round(busy, 3),
        "others_s": round(others, 3),
        "steal_s": round(steal, 3),
        "available_cores": round(available, 3),
        "used_cores": round(cpu_s / wall, 3),
    }


def amdahl(speedup: float, cores: float) -> float:
    """The parallel fraction p with 1 / ((1 - p) + p / cores) = speedup, clamped to [0, 1]."""
    if cores <= 1 or speedup <= 0:
        return 0.0
    p = (1 - 1 / speedup) / (1 - 1 / cores)
    return min(1.0, max(0.0, p))


def projected(p: float, cores: int = CORES_PROJECTED) -> float:
    """Amdahl's speed-up on `cores` for a parallel fraction p."""
    return 1 / ((1 - p) + p / cores)


def wanting(counts: list[int], cores: int) -> float:
    """Mean number of the stage's threads that wanted a core, each sample capped at `cores`
    (more runnable threads than cores cannot run at once)."""
    total = sum(counts)
    if not total:
        return 0.0
    return sum(min(k, cores) * c for k, c in enumerate(counts)) / total


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median 1-core and 2-core runs (by wall) of one stage and what they imply.

    The measured speed-up S = wall(1 core) / wall(2 cores) is read against the ratio of the
    cores the two runs actually had, N = available(2) / available(1): Amdahl's parallel
    fraction for S on N cores, p = (1 − 1/S) / (1 − 1/N), only where N ≥ 1.25 (otherwise the
    second core was taken by other processes and S measures them). The threads wanting a core
    in the 2-core run (sampled in the child) give a second, contention-free estimate: a stage
    whose threads want w cores on average would run about w times faster on an idle 2-core
    box, p_w = 2 (1 − 1/w), assuming the threads share the cores evenly."""
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_n.setdefault(len(r["cores"]), []).append(r)
    med = {n: sorted(rs, key=lambda r: r["wall_s"])[len(rs) // 2] for n, rs in by_n.items()}
    out: dict[str, Any] = {"median": med, "runs": by_n}
    if 1 in med and 2 in med:
        one, two = med[1], med[2]
        speedup = one["wall_s"] / max(two["wall_s"], 1e-9)
        ratio = two["contention"]["available_cores"] / max(
            one["contention"]["available_cores"], 1e-9
        )
        measurable = ratio >= 1.25
        w = wanting(two.get("runnable") or [], 2)
        p_w = amdahl(w, 2) if w >= 1 else 0.0
        p = amdahl(speedup, ratio) if measurable else None
        out.update(
            raw=scaling({1: one["wall_s"], 2: two["wall_s"]}),
            speedup=speedup,
            core_ratio=ratio,
            measurable=measurable,
            cpu_ratio=two["cpu_s"] / max(one["cpu_s"], 1e-9),
            wanting=w,
            parallel_fraction=p,
            parallel_fraction_wanting=p_w,
            projected_16=projected(p if p is not None else p_w),
            projected_from="speed-up" if p is not None else "threads wanting a core",
        )
    return out


# ---------------------------------------------------------------------------------------------
# the child: one stage, timed, in a process whose affinity the parent set


def runnable_threads(skip: int) -> int:
    """This process's threads that are running or waiting for a CPU (state R), but `skip`."""
    n = 0
    for task in Path("/proc/self/task").iterdir():
        if int(task.name) == skip:
            continue
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        n += stat[stat.rindex(")") + 2] == "R"
    return n


class Sampler:
    """Counts, every `period` seconds, the threads of this process that want a CPU (running or
    runnable): their mean is how many cores the stage keeps asking for, whether or not the box
    gives them (a thread waiting for a core is runnable all the same)."""

    def __init__(self, period: float = 0.02) -> None:
        import threading

        self.period, self.counts = period, [0] * 65
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = __import__("threading").get_native_id()
        while not self._stop.wait(self.period):
            self.counts[min(64, runnable_threads(me))] += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _window(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    load0, stat0 = loadavg(), Path("/proc/stat").read_text()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    with Sampler() as sampler:
        facts = work()
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stat1, load1 = Path("/proc/stat").read_text(), loadavg()
    return {
        "wall_s": wall,
        "cpu_s": r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime,
        "loadavg_before": load0,
        "loadavg_after": load1,
        "stat_before": stat0,
        "stat_after": stat1,
        "affinity": sorted(os.sched_getaffinity(0)),
        "runnable": sampler.counts,
        **facts,
    }


def stage_ingest(blocks_dir: str, data_dir: str) -> dict[str, Any]:
    from bench.measure import NBITCOIN
    from chainsleuth.store.ingest import ingest_blocks_dir, parse_threads

    warm = Path(data_dir + "-warmup")
    shutil.rmtree(warm, ignore_errors=True)
    ingest_blocks_dir(NBITCOIN, warm)  # numba's cached code, loaded once per process
    shutil.rmtree(warm, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)

    def work() -> dict[str, Any]:
        report = ingest_blocks_dir(Path(blocks_dir), Path(data_dir))
        return {"threads": parse_threads(), "work": f"{report.n_txs:,} txs"}

    out = _window(work)
    shutil.rmtree(data_dir, ignore_errors=True)
    return out


def stage_cluster(store: str, passes: int = 1) -> dict[str, Any]:
    """The clusterer end to end, `passes` times in the window (0.1 s on an idle core for the
    1 M-tx chain: too short for jiffies and the 20 ms samples alone)."""
    import numpy as np

    from bench.cluster_bench import NO_GUARD
    from chainsleuth.cluster import ranges
    from chainsleuth.cluster.ranges import UnionFind, process_range
    from chainsleuth.store.store import Store

    s = Store.open(Path(store))
    arrays, n_addr = s.graph, s.counts["addresses"]
    process_range(arrays, UnionFind.singletons(n_addr), NO_GUARD, 0, min(arrays.n_txs, 100))

    def work() -> dict[str, Any]:
        # the clusterer end to end from the arrays, as bench.cluster_bench's "ours"
        for _ in range(passes):
            unions = UnionFind.singletons(n_addr)
            process_range(arrays, unions, NO_GUARD, 0, arrays.n_txs)
            labels = np.empty(n_addr, np.int64)
            ranges.flatten_parallel(unions.parent, labels)
        times = f"{passes} passes of " if passes > 1 else ""
        return {
            "threads": ranges.threads(),
            "work": f"{times}{arrays.n_txs:,} txs, {n_addr:,} addresses",
        }

    return _window(work)


def stage_trace(store: str, seeds: str, passes: int = 1) -> dict[str, Any]:
    """The backward trace of the case, `passes` times in the window (a small world's trace
    takes a fraction of a second: too short for jiffies and the 20 ms samples alone)."""
    from bench.investigate_bench import case_inputs, trace_all
    from chainsleuth.cases.investigate import trace_threads
    from chainsleuth.trace.engine import trace_back

    case = case_inputs(Path(store), Path(seeds))
    trace_back(Path(store), case["deposits"][:16], case["options"], **case["stops"])

    def work() -> dict[str, Any]:
        for _ in range(passes):
            facts = trace_all(Path(store), case)
        times = f"{passes} passes of " if passes > 1 else ""
        return {
            "threads": trace_threads(),
            "work": f"{times}{len(case['addresses']):,} seeds, {case['deposits'].shape[0]:,} "
            f"deposit outputs, {facts['entries']:,} entries, in {facts['chunks']} chunks on "
            "1 core (two per thread)",
            **facts,
        }

    return _window(work)


def stage_spin(seconds: float) -> dict[str, Any]:
    """A pure-Python busy loop (tests: proves the pinning and the accounting)."""

    def work() -> dict[str, Any]:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return {"threads": 1, "work": f"{seconds} CPU s"}

    return _window(work)


STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "ingest": stage_ingest,
    "cluster": stage_cluster,
    "trace": stage_trace,
    "spin": stage_spin,
}


# ---------------------------------------------------------------------------------------------
# the parent


def run_pinned(stage: str, cores: list[int], **args: Any) -> dict[str, Any]:
    """One run of `stage` in a fresh interpreter pinned to `cores` (before it starts, so numba
    and the thread pools size themselves from them), with its contention figures."""
    cmd = [sys.executable, "-m", "bench.cores", stage, json.dumps(args)]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{proc.stderr[-4000:]}")
    r: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    before, after = read_proc_stat(r.pop("stat_before")), read_proc_stat(r.pop("stat_after"))
    r["cores"] = list(cores)
    r["contention"] = contention(before, after, cores, r["wall_s"], r["cpu_s"])
    return r


def pick_cores(n: int) -> list[int]:
    """The first n cores this process may run on."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < n:
        raise RuntimeError(f"{n} cores asked for, {len(mine)} available")
    return mine[:n]


def measure_stages(
    stages: dict[str, dict[str, Any]],
    pairs: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """For each stage, `pairs` × (1 core, 2 cores), alternated so that both see the same drift
    of the load; summarized by `summarize`."""
    out: dict[str, Any] = {}
    for stage, args in stages.items():
        runs = []
        for i in range(pairs):
            for n in (1, 2):
                r = run_pinned(stage, pick_cores(n), **args)
                c = r["contention"]
                log(
                    f"  {stage} {n} core(s), pair {i + 1}: wall {r['wall_s']:.2f} s, CPU "
                    f"{r['cpu_s']:.2f} s, {r['threads']} threads, available "
                    f"{c['available_cores']:.2f} cores, load {r['loadavg_before'][0]:.1f}"
                )
                runs.append(r)
        out[stage] = {"args": args, **summarize(runs)}
    return out


_WHAT = {
    "ingest": "`ingest_blocks_dir` of the re-linked chain into a fresh store (parse threads "
    "beside the sequential link and write)",
    "cluster": "the clusterer end to end on the re-linked chain's store (`process_range` under "
    "no guard, then `flatten_parallel`, as `bench.cluster_bench`: per-tx analysis on threads, "
    "merges in chain order)",
    "trace": "investigate's backward trace over every deposit output of the seed file "
    "(`_in_chunks` over `trace_back`, a chunk per thread, as `measure_trace`)",
}


def render(r: dict[str, Any]) -> str:
    """The "Scaling by stage" section."""
    rows, proj = [], []
    for stage, s in r["stages"].items():
        for n in (1, 2):
            m = s["median"].get(n)
            if m is None:
                continue
            c = m["contention"]
            walls = ", ".join(f"{x['wall_s']:.2f}" for x in s["runs"][n])
            rows.append(
                [
                    stage if n == 1 else "",
                    f"{n} ({','.join(map(str, m['cores']))})",
                    str(m["threads"]),
                    f"{m['wall_s']:.2f} s ({walls})",
                    f"{m['cpu_s']:.2f}",
                    f"{c['used_cores']:.2f}",
                    f"{c['others_s']:.2f} / {c['steal_s']:.2f}",
                    f"{c['available_cores']:.2f}",
                    f"{wanting(m.get('runnable') or [], n):.2f}",
                    f"{m['loadavg_before'][0]:.1f} → {m['loadavg_after'][0]:.1f}",
                ]
            )
        if "speedup" in s:
            p = s["parallel_fraction"]
            proj.append(
                [
                    stage,
                    s["raw"],
                    f"{s['core_ratio']:.2f}",
                    f"{p:.2f}" if p is not None else "not measurable",
                    f"{s['wanting']:.2f}",
                    f"{s['parallel_fraction_wanting']:.2f}",
                    f"{s['cpu_ratio']:.2f}",
                    f"{s['projected_16']:.1f}x (from {s['projected_from']})",
                ]
            )
    what = "; ".join(
        f"**{k}**: {_WHAT[k]}, {s['median'][1]['work']}"
        for k, s in r["stages"].items()
        if k in _WHAT and 1 in s["median"]
    )
    return "\n".join(
        [
            "",
            "## Scaling by stage, 1 core against 2 (issue 13, item 6)",
            "",
            "Each stage in a fresh process pinned to one core and then to two "
            "(`os.sched_setaffinity` before the interpreter starts; `bench/cores.py`), "
            f"{r['pairs']} pairs alternated, the median run of each shown (all walls in "
            "brackets). The stage sizes its threads from the cores it may run on, as it "
            f"would on a {CORES_PROJECTED}-core machine. {what}. The simulator is one "
            "thread by design and not measured.",
            "",
            "*others / steal*: CPU seconds that other processes and the hypervisor took on the "
            "pinned cores during the run (`/proc/stat` of those cores, busy minus the stage's "
            "own CPU). *available* = pinned cores − (others + steal) / wall: the cores the "
            "stage actually had. On this shared box that is what tells contention (little "
            "available) from poor scaling (available, but not used).",
            "",
            table(
                [
                    "stage",
                    "cores pinned",
                    "threads",
                    "wall",
                    "CPU s",
                    "used (CPU / wall)",
                    "others / steal s",
                    "available",
                    "threads wanting a core",
                    "load 1 min",
                ],
                rows,
            ),
            "",
            table(
                [
                    "stage",
                    "speed-up, wall 1 / 2 cores",
                    "cores had, 2-core run / 1-core run",
                    "p from the speed-up",
                    "threads wanting a core (2-core run, mean)",
                    "p from those threads",
                    "CPU 2 / 1",
                    f"projected on {CORES_PROJECTED} cores",
                ],
                proj,
            ),
            "",
            "- *p from the speed-up*: Amdahl's parallel fraction for the measured speed-up S on "
            "the ratio N of the cores the two runs actually had, p = (1 − 1/S) / (1 − 1/N); "
            "*not measurable* where N < 1.25 (the second core went to other processes, so S "
            "measures them, not the code). With Linux's autogroup scheduling "
            "(`/proc/sys/kernel/sched_autogroup_enabled`) a saturated box gives a session its "
            "share whatever its thread count, so this is the usual case here.",
            "- *Threads wanting a core*: every 20 ms the child counts its threads in state R "
            "(running or waiting for a CPU), capped at the 2 pinned cores; a thread waiting for "
            "a core counts, so contention does not hide the parallelism (it only stretches "
            "it). p from those threads = 2 (1 − 1/w): the 2-core speed-up an idle box would "
            "give if the runnable threads shared the cores evenly. An estimate, not a "
            "measurement: a thread spinning or waiting on memory counts as wanting a core.",
            "- The 16-core projection is Amdahl's 1 / ((1 − p) + p/16), from the speed-up's p "
            "where measurable, else from the threads'. It assumes the parallel part still "
            "splits into at least 16 pieces (the stages size their threads from the cores "
            "they may run on, and the trace cuts at least two chunks per thread), and that "
            "neither memory bandwidth nor the extra CPU per thread (*CPU 2 / 1*) grows with "
            "the threads; from one pair of core counts it is a projection, not a measurement.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stage, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    print(json.dumps(STAGES[stage](**args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
