"""`chainsleuth demo`, the README's first command, through the real CLI: every step runs, the
case files are written, and the commands it suggests work on what it left."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import run


@pytest.mark.slow
def test_demo_runs_every_step_and_its_suggested_commands_work(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    done = subprocess.run(
        [sys.executable, "-m", "chainsleuth", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = ["simulate", "ingest", "cluster", "attribute", "investigate", "largest clusters"]
    for k, step in enumerate(steps, 1):
        assert f"{k}. {step}" in done.stdout, done.stdout[-3000:]
    assert "pairwise precision" in done.stdout and "in conflict" in done.stdout
    for name in ("report.html", "leads.csv", "subpoenas.csv", "cashouts.csv", "case.json"):
        assert (out / "case" / name).stat().st_size > 0, name

    status = run(out / "store", "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert {"chain", "tags", "clusters"} <= set(info["holds"]) and info["txs"] > 15_000
    example = re.search(r"cluster-of (\S+)", done.stdout)
    assert example is not None, done.stdout[-1000:]
    cluster = run(out / "store", "cluster-of", example.group(1), "--json")
    assert cluster.returncode == 0, cluster.stderr
    assert json.loads(cluster.stdout)["size"] >= 2
