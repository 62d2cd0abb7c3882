"""The real `chainsleuth` command on the real 600 mainnet blocks: every lookup, --json, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chainsleuth.store.layout import read_files
from tests.conftest import NBITCOIN

HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
BLOCK_9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


# Its own store, not the session's `nbitcoin_store`: ingesting through the CLI is under test.
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cli") / "store"
    done = run(data, "ingest", "--blocks-dir", str(NBITCOIN), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["blocks"], report["txs"], report["tip_height"]) == (600, 616, 599)
    return data


def test_second_ingest_is_up_to_date(data: Path) -> None:
    done = run(data, "ingest", "--blocks-dir", str(NBITCOIN), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["blocks"] == 0


def test_status_reports_the_tip_and_counts(data: Path) -> None:
    status = json.loads(run(data, "status", "--json").stdout)
    assert status["tip_height"] == 599 and status["txs"] == 616 and status["network"] == "main"
    assert status["store_bytes"] > 0 and status["last_ingest"]["blocks"] == 600


def test_tx_shows_what_the_inputs_spend_and_who_spent_the_outputs(data: Path) -> None:
    tx = json.loads(run(data, "tx", HAL_TX, "--json").stdout)
    assert tx["block_height"] == 170 and tx["fee"] == 0
    assert [(i["prev_txid"], i["prev_vout"]) for i in tx["inputs"]] == [(BLOCK_9_COINBASE, 0)]
    assert tx["outputs"][0]["address"] == HAL and tx["outputs"][0]["value"] == 10 * 10**8


def test_block_by_height_and_by_hash_agree(data: Path) -> None:
    by_height = json.loads(run(data, "block", "170", "--json").stdout)
    by_hash = json.loads(run(data, "block", by_height["hash"], "--json").stdout)
    assert by_height == by_hash and HAL_TX in by_height["txids"]


def test_address_totals(data: Path) -> None:
    info = json.loads(run(data, "address", HAL, "--json").stdout)
    assert info["received"] == 10 * 10**8 and info["balance"] == 10 * 10**8
    assert info["first_seen_height"] == 170 and info["script_type"] == "p2pkh"


def test_sql_as_csv_and_json(data: Path) -> None:
    query = "SELECT count(*) AS n FROM outputs WHERE spent_by_txid IS NULL"
    csv_out = run(data, "sql", query, "--format", "csv").stdout.splitlines()
    json_out = json.loads(run(data, "sql", query, "--format", "json").stdout)
    assert csv_out[1] == str(json_out[0]["n"]) and json_out[0]["n"] > 500


def test_verify_passes_then_finds_a_changed_file(tmp_path: Path, data: Path) -> None:
    assert run(data, "verify").returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    victim = copy / read_files(copy, manifest)["outputs"][0]["path"]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    done = run(copy, "verify", "--json")
    assert done.returncode == 1
    failed = [c["check"] for c in json.loads(done.stdout)["checks"] if not c["ok"]]
    assert any("sha256 mismatch" in c for c in failed)


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, data: Path) -> None:
    for args, words in (
        (("tx", "nothex"), "not a txid"),
        (("tx", "00" * 32), "is not in the store"),
        (("address", "1NotAnAddress"), "not a valid address"),
        (("sql", "SELECT * FROM nowhere"), "SQL error"),
    ):
        done = run(data, *args)
        assert done.returncode == 2 and words in done.stderr
        assert "Traceback" not in done.stderr
    missing = run(tmp_path / "nothing", "status")
    assert missing.returncode == 2 and "no chainsleuth store" in missing.stderr
    both = run(tmp_path / "x", "ingest")
    assert both.returncode == 2 and "exactly one source" in both.stderr
