"""kill -9 during an ingest: the store stays readable at its last commit, and re-running the ingest
finishes with exactly the store an uninterrupted run gives."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.layout import ARRAYS, TABLES, array_path, read_files
from chainsleuth.store.store import Store
from tests.conftest import copy_nbitcoin, dump_views

REPO = Path(__file__).resolve().parents[2]

# Prints one line after every batch (the progress callback runs right after the commit of the
# batch before it: a batch's parquet files are written while the next is linked), so the parent
# can kill it just after k-1 commits. batch_bytes=2000 gives ~70 batches over 600 blocks.
INGEST = """
import sys
from pathlib import Path
from chainsleuth.store.ingest import ingest_blocks_dir

def progress(report, total):
    print(report.n_blocks, flush=True)

ingest_blocks_dir(Path(sys.argv[1]), Path(sys.argv[2]), batch_bytes=2000, progress=progress)
print("done", flush=True)
"""

# The same ingest, killed by itself right after the k-th batch that spends outputs has marked
# them spent in the output array (before the batch is committed): recovery must find and undo
# every mark, or the re-run would see those outputs as already spent.
INGEST_KILLED_WHILE_MARKING_SPENT = """
import os, signal, sys
from pathlib import Path
from chainsleuth.store import writer
from chainsleuth.store.ingest import ingest_blocks_dir

mark, calls = writer._mark_spent, []

def mark_then_die(spent_by, spent_output, input_tx):
    mark(spent_by, spent_output, input_tx)
    if (spent_output >= 0).any():
        calls.append(1)
        if len(calls) == int(sys.argv[3]):
            spent_by.flush()
            os.kill(os.getpid(), signal.SIGKILL)

writer._mark_spent = mark_then_die
ingest_blocks_dir(Path(sys.argv[1]), Path(sys.argv[2]), batch_bytes=2000)
"""


def start(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_commits(blocks: Path, data: Path, commits: int, delay: float) -> int:
    """Run the ingest in a child, SIGKILL it `delay` seconds after its `commits`-th commit.
    Returns the number of commits it reported."""
    child = start(INGEST, blocks, data)
    assert child.stdout is not None
    seen = 0
    try:
        for line in child.stdout:
            if line.strip() == "done":
                break
            seen += 1
            if seen == commits:
                time.sleep(delay)
                child.send_signal(signal.SIGKILL)
                break
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        assert child.stderr is not None
        child.stderr.close()
    return seen


def assert_consistent(data: Path) -> None:
    """What a reader sees after a crash: the manifest's counts, files and arrays agree."""
    store = Store.open(data)
    counts = store.manifest["counts"]
    for view, key in (
        ("blocks", "blocks"),
        ("txs", "txs"),
        ("inputs", "inputs"),
        ("outputs", "outputs"),
        ("addresses", "addresses"),
    ):
        n = store.sql(f"SELECT count(*) AS n FROM {view}").column("n").to_pylist()[0]
        assert n == counts[key], view
    assert store.sql("SELECT max(height) AS h FROM blocks").column("h").to_pylist() == [
        counts["blocks"] - 1 if counts["blocks"] else None
    ]
    for table in TABLES:
        for entry in read_files(data, store.manifest)[table]:
            path = data / entry["path"]
            assert path.is_file(), path
            with open(path, "rb") as f:
                assert hashlib.file_digest(f, "sha256").hexdigest() == entry["sha256"]
    for name, spec in ARRAYS.items():
        rows = array_path(data, name).stat().st_size // (np.dtype(spec.dtype).itemsize * spec.width)
        assert rows >= counts[spec.count], name
    # No committed output may look spent by a transaction the manifest does not hold.
    spent = store.sql("SELECT count(*) AS n FROM outputs WHERE spent_by_txid IS NOT NULL")
    assert spent.column("n").to_pylist()[0] == int((store.spent_by_tx() >= 0).sum())


def assert_same_store(data: Path, reference: Path, reference_views: dict) -> None:
    assert dump_views(data) == reference_views
    done, clean = Store.open(data), Store.open(reference)
    assert done.counts == clean.counts
    for name in ARRAYS:
        assert np.array_equal(done.array(name), clean.array(name)), name


@pytest.mark.slow
@pytest.mark.parametrize(("commits", "seed"), [(1, 1), (9, 2), (22, 3), (40, 4)])
def test_ingest_killed_after_some_commits_recovers_to_an_uninterrupted_store(
    tmp_path: Path, commits: int, seed: int, nbitcoin_store: Path, nbitcoin_views: dict
) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    data = tmp_path / "data"
    delay = random.Random(seed).uniform(0, 0.02)
    seen = kill_after_commits(blocks, data, commits, delay)
    assert seen == commits, "the ingest finished before it could be killed"
    assert_consistent(data)
    assert Store.open(data).counts["blocks"] >= (1 if commits > 1 else 0)
    report = ingest_blocks_dir(blocks, data)
    assert report.tip_height == 599
    assert_same_store(data, nbitcoin_store, nbitcoin_views)


@pytest.mark.slow
@pytest.mark.parametrize("spending_batch", [1, 3])
def test_ingest_killed_right_after_marking_outputs_spent_recovers(
    tmp_path: Path, spending_batch: int, nbitcoin_store: Path, nbitcoin_views: dict
) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks")
    data = tmp_path / "data"
    child = start(INGEST_KILLED_WHILE_MARKING_SPENT, blocks, data, spending_batch)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert_consistent(data)
    ingest_blocks_dir(blocks, data)
    assert_same_store(data, nbitcoin_store, nbitcoin_views)


def test_store_read_during_a_crash_window_ignores_uncommitted_array_rows(
    tmp_path: Path, nbitcoin_store: Path
) -> None:
    # Simulate what a killed run leaves: bytes appended to every array past the manifest's counts.
    import shutil

    data = tmp_path / "data"
    shutil.copytree(nbitcoin_store, data)
    for name, spec in ARRAYS.items():
        with open(array_path(data, name), "ab") as f:
            f.write(os.urandom(np.dtype(spec.dtype).itemsize * spec.width * 3))
    assert_consistent(data)
    clean = Store.open(nbitcoin_store)
    for name in ARRAYS:
        assert np.array_equal(Store.open(data).array(name), clean.array(name)), name
