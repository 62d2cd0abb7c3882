"""bench/cores (the 1-vs-2-core scaling section): the /proc/stat accounting, Amdahl's fraction,
and real pinned runs: the child runs on exactly the cores it was given and the stages size
their threads from them. No speed is checked (that is bench/'s business)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cores

STAT = """cpu  {t0} 0 {s0} 9000 10 0 0 {st0} 0 0
cpu0 {u0} 0 {s0} 4500 5 0 0 {st0} 0 0
cpu1 {u1} 0 0 4500 5 0 0 0 0 0
intr 1 2 3
"""


def _stat(u0: int, u1: int, s0: int, st0: int) -> dict[str, dict[str, int]]:
    return cores.read_proc_stat(STAT.format(t0=u0 + u1, u0=u0, u1=u1, s0=s0, st0=st0))


def test_read_proc_stat_columns() -> None:
    s = _stat(100, 50, 7, 3)
    assert set(s) == {"cpu", "cpu0", "cpu1"}
    assert s["cpu0"]["user"] == 100 and s["cpu0"]["system"] == 7 and s["cpu0"]["steal"] == 3
    real = cores.read_proc_stat()
    assert {f"cpu{c}" for c in os.sched_getaffinity(0)} <= set(real)


def test_contention_counts_others_and_steal_on_the_pinned_cores_only() -> None:
    before, after = _stat(0, 0, 0, 0), _stat(150, 400, 50, 100)
    # 10 s on cpu0 at 100 Hz: busy 2.0 CPU s there, of which the stage's own 1.2; 1.0 s stolen
    c = cores.contention(before, after, [0], wall_s=10.0, cpu_s=1.2, hz=100)
    assert c["busy_s"] == pytest.approx(2.0)
    assert c["others_s"] == pytest.approx(0.8)
    assert c["steal_s"] == pytest.approx(1.0)
    assert c["available_cores"] == pytest.approx(1 - 1.8 / 10)
    assert c["used_cores"] == pytest.approx(0.12)
    # cpu1's 4 busy seconds belong to nobody pinned: counted only when cpu1 is pinned
    both = cores.contention(before, after, [0, 1], wall_s=10.0, cpu_s=1.2, hz=100)
    assert both["others_s"] == pytest.approx(4.8)
    assert both["available_cores"] == pytest.approx(2 - 5.8 / 10)
    # a saturated core still leaves a sliver, never a negative or zero core
    full = cores.contention(before, _stat(5000, 0, 0, 0), [0], wall_s=1.0, cpu_s=0.0, hz=100)
    assert full["available_cores"] == pytest.approx(0.05)


def test_amdahl_round_trip_and_limits() -> None:
    for p in (0.0, 0.3, 0.9, 1.0):
        s = cores.projected(p, 2)
        assert cores.amdahl(s, 2) == pytest.approx(p)
    assert cores.amdahl(0.8, 2) == 0.0  # slower on 2 cores: no parallel part, not negative
    assert cores.amdahl(3.0, 2) == 1.0  # super-linear (noise): clamped
    assert cores.projected(0.5) == pytest.approx(1 / (0.5 + 0.5 / 16))
    assert cores.projected(1.0) == pytest.approx(16)


def _run(n: int, wall: float, cpu: float, available: float, want: int = 1) -> dict[str, object]:
    runnable = [0] * 65
    runnable[want] = 10
    return {
        "cores": list(range(n)),
        "wall_s": wall,
        "cpu_s": cpu,
        "threads": n,
        "work": "10 txs",
        "runnable": runnable,
        "contention": {
            "available_cores": available,
            "used_cores": cpu / wall,
            "others_s": 0.0,
            "steal_s": 0.0,
        },
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [1.0, 1.0, 1.0],
    }


def test_wanting_caps_each_sample_at_the_pinned_cores() -> None:
    counts = [0] * 65
    counts[1], counts[3] = 3, 1  # 3 samples with one runnable thread, 1 with three
    assert cores.wanting(counts, 2) == pytest.approx((3 * 1 + 1 * 2) / 4)
    assert cores.wanting(counts, 4) == pytest.approx((3 * 1 + 1 * 3) / 4)
    assert cores.wanting([0] * 65, 2) == 0.0


def test_summarize_reads_the_speedup_against_the_cores_actually_had() -> None:
    # 1 core: 10 and 12 s with 0.5 of it; 2 cores: 4 and 5 s with 1.0 of them, 2 threads wanting
    runs = [_run(1, 10.0, 5.0, 0.5), _run(2, 4.0, 5.5, 1.0, 2), _run(1, 12.0, 5.0, 0.5)]
    runs.append(_run(2, 5.0, 5.5, 1.0, 2))
    s = cores.summarize(runs)
    assert s["median"][1]["wall_s"] == 12.0  # the upper median of two, by wall
    assert s["median"][2]["wall_s"] == 5.0
    assert s["raw"] == "2.40x"
    assert s["core_ratio"] == pytest.approx(2.0)
    assert s["measurable"] is True
    assert s["parallel_fraction"] == 1.0  # 2.4x on twice the cores: clamped to 1
    assert s["wanting"] == pytest.approx(2.0)
    assert s["parallel_fraction_wanting"] == pytest.approx(1.0)
    assert s["projected_from"] == "speed-up"
    assert s["projected_16"] == pytest.approx(16.0)
    # contention: the 2-core run had no more than the 1-core run; the speed-up is not read
    flat = cores.summarize([_run(1, 10.0, 5.0, 0.5), _run(2, 10.0, 5.0, 0.55, 1)])
    assert flat["measurable"] is False and flat["parallel_fraction"] is None
    assert flat["parallel_fraction_wanting"] == 0.0
    assert flat["projected_from"] == "threads wanting a core"
    assert flat["projected_16"] == pytest.approx(1.0)
    text = cores.render({"pairs": 2, "stages": {"cluster": s, "trace": flat}})
    assert "| cluster | 1 (0) | 1 | 12.00 s (10.00, 12.00)" in text
    assert "not measurable" in text
    assert "projected on 16 cores" in text


def test_pinned_child_runs_on_the_cores_it_was_given() -> None:
    mine = sorted(os.sched_getaffinity(0))
    r = cores.run_pinned("spin", [mine[0]], seconds=0.3)
    assert r["affinity"] == [mine[0]]
    assert r["cpu_s"] >= 0.3
    assert 0.05 <= r["contention"]["available_cores"] <= 1.0
    assert r["contention"]["busy_s"] >= 0.25  # the spin itself shows in the core's jiffies
    # the spinning main thread was runnable in (nearly) every sample; the sampler never counts
    assert sum(r["runnable"]) > 0
    assert cores.wanting(r["runnable"], 1) > 0.8


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_cluster_stage_sizes_its_threads_from_the_pinned_cores(
    small_ingested: tuple[Path, object],
) -> None:
    """The clusterer's threads follow the cores it may run on (numba's default, read by
    cluster.ranges.threads), not a hard-coded count: 1 pinned core, 1 thread; 2, 2."""
    store = str(small_ingested[0])
    for n in (1, 2):
        r = cores.run_pinned("cluster", cores.pick_cores(n), store=store)
        assert r["affinity"] == cores.pick_cores(n)
        assert r["threads"] == n
        assert r["work"].endswith("addresses")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
@pytest.mark.parametrize(
    "expr",
    [
        "__import__('chainsleuth.store.ingest', fromlist=['x']).parse_threads()",
        "__import__('chainsleuth.cluster.ranges', fromlist=['x']).threads()",
        "__import__('chainsleuth.cases.investigate', fromlist=['x']).trace_threads()",
    ],
)
def test_every_parallel_stage_counts_the_cores_it_may_run_on(expr: str) -> None:
    """Ingest's parse threads, the clusterer's and the trace's: a fresh process pinned to 1
    core uses 1 thread and pinned to 2 uses 2, so on 16 cores they use 16 (none is a fixed 2)."""
    import subprocess
    import sys

    drop = ("CHAINSLEUTH_PARSE_THREADS", "CHAINSLEUTH_TRACE_THREADS", "NUMBA_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for n in (1, 2):
        cpus = cores.pick_cores(n)
        out = subprocess.run(
            [sys.executable, "-c", f"print({expr})"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus),
        )
        assert int(out.stdout.strip()) == n, expr
