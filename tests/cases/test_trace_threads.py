"""The backward trace's threads and chunks follow the cores the process may run on, so the
same code uses 16 cores on a 16-core machine (issue 13, item 6); no world needed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import chainsleuth.cases.investigate as inv


def _groups(n_groups: int, size: int) -> np.ndarray:
    return np.repeat(np.arange(n_groups, dtype=np.int64), size)


def test_trace_threads_follow_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAINSLEUTH_TRACE_THREADS", raising=False)
    monkeypatch.setattr(inv.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert inv.trace_threads() == 16
    monkeypatch.setattr(inv.os, "sched_getaffinity", lambda pid: {3})
    assert inv.trace_threads() == 1
    monkeypatch.setattr(inv.os, "sched_getaffinity", lambda pid: set(range(500)))
    assert inv.trace_threads() == inv.MAX_TRACE_THREADS
    monkeypatch.setenv("CHAINSLEUTH_TRACE_THREADS", "3")
    assert inv.trace_threads() == 3
    monkeypatch.setattr(inv, "TRACE_THREADS", 5)
    assert inv.trace_threads() == 5


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_trace_threads_in_a_process_pinned_by_taskset() -> None:
    """The real thing: a child started on one core counts one, on two counts two."""
    env = {k: v for k, v in os.environ.items() if k != "CHAINSLEUTH_TRACE_THREADS"}
    code = "import chainsleuth.cases.investigate as i; print(i.trace_threads())"
    first_two = sorted(os.sched_getaffinity(0))[:2]
    for n in (1, 2):
        cpus = first_two[:n]
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus),
        )
        assert int(out.stdout.strip()) == n


def test_chunks_give_every_thread_work() -> None:
    group = _groups(1_000_000 // 4, 4)  # 1M seeds in groups of 4
    two = inv.chunk_cuts(group, 2)
    sixteen = inv.chunk_cuts(group, 16)
    # 2 threads: the 65,536-seed chunks as before (plenty of chunks for two threads)
    assert np.diff(two)[:-1].min() >= inv.CHUNK_SEEDS
    assert np.diff(two).max() <= inv.CHUNK_SEEDS + 3
    # 16 threads: at least CHUNKS_PER_THREAD chunks each, none under MIN_CHUNK_SEEDS
    assert len(sixteen) - 1 >= 16 * inv.CHUNKS_PER_THREAD
    assert np.diff(sixteen)[:-1].min() >= inv.MIN_CHUNK_SEEDS
    for cuts in (two, sixteen):
        assert cuts[0] == 0 and cuts[-1] == group.shape[0]
        # never inside a group
        assert all(group[c - 1] != group[c] for c in cuts[1:-1])


def test_small_cases_are_not_cut_below_the_minimum() -> None:
    group = _groups(3_000, 2)  # 6,000 seeds
    cuts = inv.chunk_cuts(group, 16)
    assert np.diff(cuts)[:-1].min() >= inv.MIN_CHUNK_SEEDS
    assert len(cuts) == 3  # 4,096 (at a group boundary), then the rest


def _greedy_cuts(group: np.ndarray, workers: int) -> list[int]:
    """`chunk_cuts` as it was written first: a loop over every group start."""
    n = int(group.shape[0])
    wanted = -(-n // max(1, workers * inv.CHUNKS_PER_THREAD))
    size = max(1, min(inv.CHUNK_SEEDS, max(inv.MIN_CHUNK_SEEDS, wanted)))
    cuts = [0]
    for b in (np.flatnonzero(np.diff(group)) + 1).tolist():
        if b - cuts[-1] >= size:
            cuts.append(b)
    cuts.append(n)
    return cuts


@pytest.mark.parametrize("n", [0, 1, 2, 4_097, 70_000, 300_000])
def test_chunk_cuts_by_search_equal_the_loop(n: int) -> None:
    rng = np.random.default_rng(n)
    for spread in (1, 3, 70, 9_000):
        group = np.sort(rng.integers(0, max(1, n // spread), n))
        starts = inv.group_starts(group)
        np.testing.assert_array_equal(starts, np.flatnonzero(np.diff(group)) + 1)
        for workers in (1, 2, 16):
            assert inv.chunk_cuts(group, workers) == _greedy_cuts(group, workers)
            assert inv.chunk_cuts(group, workers, starts) == _greedy_cuts(group, workers)
