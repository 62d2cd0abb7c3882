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


def _run(n: int, wall: float, cpu: float, available: float) -> dict[str, object]:
    return {
        "cores": list(range(n)),
        "wall_s": wall,
        "cpu_s": cpu,
        "threads": n,
        "work": "10 txs",
        "contention": {
            "available_cores": available,
            "used_cores": cpu / wall,
            "others_s": 0.0,
            "steal_s": 0.0,
        },
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [1.0, 1.0, 1.0],
    }


def test_summarize_adjusts_for_the_cores_actually_available() -> None:
    # 1 core: 10 s with half a core available (5 s alone); 2 cores: 4 s with 1 of 2 (2 s alone)
    runs = [_run(1, 10.0, 5.0, 0.5), _run(2, 4.0, 5.5, 1.0), _run(1, 12.0, 5.0, 0.5)]
    runs.append(_run(2, 5.0, 5.5, 1.0))
    s = cores.summarize(runs)
    assert s["median"][1]["wall_s"] == 12.0  # the upper median of two, by wall
    assert s["median"][2]["wall_s"] == 5.0
    assert s["raw"] == "2.40x"
    assert s["adjusted_speedup"] == pytest.approx((12.0 * 0.5) / (5.0 * 1.0 / 2))
    assert s["parallel_fraction"] == 1.0
    assert s["measurable"] is True
    flat = cores.summarize([_run(1, 10.0, 5.0, 0.5), _run(2, 10.0, 5.0, 0.6)])
    assert flat["measurable"] is False
    text = cores.render({"pairs": 2, "stages": {"cluster": s}})
    assert "| cluster | 1 (0) | 1 | 12.00 s (10.00, 12.00)" in text
    assert "projected on 16 cores" in text


def test_pinned_child_runs_on_the_cores_it_was_given() -> None:
    mine = sorted(os.sched_getaffinity(0))
    r = cores.run_pinned("spin", [mine[0]], seconds=0.3)
    assert r["affinity"] == [mine[0]]
    assert r["cpu_s"] >= 0.3
    assert 0.05 <= r["contention"]["available_cores"] <= 1.0
    assert r["contention"]["busy_s"] >= 0.25  # the spin itself shows in the core's jiffies


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
