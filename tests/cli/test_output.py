"""Output that is not a terminal keeps every identifier whole (`explain A B > evidence.txt`).

The commands run with stdout a pipe (subprocess) or captured (typer's CliRunner): tables come
out as TSV, with full 64-hex txids and full addresses. On a narrow terminal, tables fold long
cells instead of cutting them with "…".
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from chainsleuth.cli import app
from chainsleuth.cluster.engine import cluster_store
from chainsleuth.core.console import OutputConsole
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8
HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
BLOCK_9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def tsv_rows(text: str, header: str) -> list[list[str]]:
    """The rows under the TSV header line `header` (up to the next blank or `#` line)."""
    lines = text.splitlines()
    start = lines.index(header) + 1
    rows = []
    for line in lines[start:]:
        if not line or line.startswith("#"):
            break
        rows.append(line.split("\t"))
    return rows


def test_tx_piped_is_tsv_with_full_txids_and_addresses(nbitcoin_store: Path) -> None:
    out = run(nbitcoin_store, "tx", HAL_TX).stdout
    assert "…" not in out and "│" not in out
    assert f"# Transaction {HAL_TX}" in out
    inputs = tsv_rows(out, "vin\tspends\taddress\tvalue")
    assert inputs[0][:2] == ["0", f"{BLOCK_9_COINBASE}:0"]
    outputs = tsv_rows(out, "vout\ttype\taddress\tvalue\tspent by")
    assert outputs[0][2] == HAL and outputs[0][1] == "p2pk"
    assert all(len(row) == 5 for row in outputs)
    assert len(outputs[1][4]) == 64  # the spending txid, whole


def test_sql_table_and_block_piped_keep_every_txid_whole(nbitcoin_store: Path) -> None:
    out = run(nbitcoin_store, "sql", "SELECT txid, block_height FROM txs ORDER BY tx_id LIMIT 3")
    rows = tsv_rows(out.stdout, "txid\tblock_height")
    want = Store.open(nbitcoin_store).sql("SELECT txid FROM txs ORDER BY tx_id LIMIT 3")
    assert [r[0] for r in rows] == want.column("txid").to_pylist()
    assert all(len(r[0]) == 64 for r in rows)
    block = run(nbitcoin_store, "block", "170").stdout
    assert HAL_TX in block.split()


# A hand-built chain, not the session's simulated world: the tests need these exact shapes.
@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two coins of one wallet spent together (multi-input), clustered."""
    chain = ChainBuilder()
    funding = [chain.add_block(miner=p2wpkh(f"owner{k}")) for k in range(2)]
    payment = spend(
        [(funding[0].txs[0], 0), (funding[1].txs[0], 0)],
        [(60 * BTC, p2wpkh("shop")), (39 * BTC, p2wpkh("change"))],
    )
    chain.add_block([payment])
    data = tmp_path_factory.mktemp("output") / "store"
    ingest_blocks_dir(chain.write(data.parent / "blocks"), data)
    cluster_store(data, "multi_input", from_scratch=True)
    store = Store.open(data)
    address = {
        name: store.sql(
            "SELECT address FROM outputs WHERE script_pubkey = ? LIMIT 1", [p2wpkh(name)]
        ).to_pylist()[0]["address"]
        for name in ("owner0", "owner1")
    }
    return {"data": data, "payment": payment.txid_hex(), **address}


def test_explain_redirected_to_a_file_keeps_the_evidence(clustered: dict, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.txt"
    with evidence.open("w") as f:  # `chainsleuth explain A B > evidence.txt`
        subprocess.run(
            [sys.executable, "-m", "chainsleuth", "--data", str(clustered["data"])]
            + ["explain", clustered["owner0"], clustered["owner1"]],
            stdout=f,
            check=True,
            timeout=120,
        )
    text = evidence.read_text()
    steps = tsv_rows(text, "step\tfrom\tto\ttxid\trule\tconfidence")
    assert len(steps) == 1
    assert steps[0][3] == clustered["payment"] and len(steps[0][3]) == 64
    assert {steps[0][1], steps[0][2]} == {clustered["owner0"], clustered["owner1"]}
    assert clustered["owner0"].startswith("bcrt1q") and len(clustered["owner0"]) == 44


def test_cli_runner_output_is_tsv_too(clustered: dict) -> None:
    result = CliRunner().invoke(
        app, ["--data", str(clustered["data"]), "cluster-of", clustered["owner0"]]
    )
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "\t" in result.output
    result = CliRunner().invoke(
        app,
        ["--data", str(clustered["data"]), "explain", clustered["owner0"], clustered["owner1"]],
    )
    assert result.exit_code == 0, result.output
    assert clustered["payment"] in result.output.split("\t")


def test_a_narrow_terminal_folds_long_cells_instead_of_cutting_them() -> None:
    txid = "ab" * 32
    table = Table("txid", "value", title="Outputs")
    table.add_row(txid, "1.0")
    out = io.StringIO()
    OutputConsole(file=out, force_terminal=True, width=30, color_system=None).print(table)
    text = out.getvalue()
    assert "…" not in text
    joined = "".join(ch for ch in text if ch in "ab")
    assert txid in joined  # every character is there, folded over several lines
    assert txid not in text  # (it did not fit on one line)


def test_a_pipe_gets_tsv_with_markup_removed_and_text_unwrapped() -> None:
    out = io.StringIO()
    console = OutputConsole(file=out, width=20)
    table = Table(show_header=False, title="Address x")
    table.add_row("[bold]balance[/]", "a\tb")
    console.print(table)
    console.print("x" * 100)
    assert out.getvalue() == "# Address x\nfield\tvalue\nbalance\ta b\n" + "x" * 100 + "\n"
