"""A full disk (here a file-size limit, RLIMIT_FSIZE: the same failed write) is one line, not a
traceback, and the store keeps its last committed state: the same ingest run again, without the
limit, ends with the store a run without the limit makes."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from chainsleuth.store.store import Store

LIMIT = 256 * 1024  # bytes a process may write to one file: less than the small world's arrays


def _ingest(blocks: Path, data: Path, limit: int | None) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", "from chainsleuth.cli import main; main()", "--data", str(data),
         "ingest", "--blocks-dir", str(blocks)],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=cap,  # noqa: PLW1509 (a resource limit in the child only)
        env={**os.environ, "COLUMNS": "500"},  # rich wraps at the terminal width otherwise
    )  # fmt: skip


def test_a_failed_write_is_one_line_and_the_ingest_runs_again(
    small_world_dir: Path, tmp_path: Path
) -> None:
    blocks = small_world_dir / "blocks"
    data = tmp_path / "data"
    failed = _ingest(blocks, data, LIMIT)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), failed.stderr
    assert "File too large" in lines[0] and "last committed state" in lines[0]
    done = _ingest(blocks, data, None)
    assert done.returncode == 0, done.stderr
    whole = _ingest(blocks, tmp_path / "whole", None)
    assert whole.returncode == 0, whole.stderr
    again, once = Store.open(data), Store.open(tmp_path / "whole")
    assert again.counts == once.counts
    assert bytes(again.graph.tx_txid[-1]) == bytes(once.graph.tx_txid[-1])
