"""Tracing the real mainnet blocks 0-599: Satoshi's 10 BTC to Hal Finney (block 170)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chainsleuth.store.store import Store
from chainsleuth.trace.engine import outputs_of_tx, path_txids, trace_back, trace_forward, txid_hex
from chainsleuth.trace.rows import trace_rows
from tests.conftest import stage_app

HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
BLOCK9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
BTC = 10**8


@pytest.fixture(scope="module")
def store_dir(nbitcoin_store: Path) -> Path:
    """The session's mainnet store (tests/conftest.py); tracing only reads it."""
    return nbitcoin_store


@pytest.mark.parametrize("policy", ["haircut", "poison", "fifo"])
def test_hal_finneys_10_btc_come_from_the_block_9_coinbase(store_dir: Path, policy: str) -> None:
    store = Store.open(store_dir)
    hal_tx = store.tx_id_of(HAL_TX)
    assert hal_tx is not None
    r = trace_back(store_dir, outputs_of_tx(store, hal_tx)[:1], policy=policy)
    assert r.kind_names() == ["coinbase"]
    assert txid_hex(store, r.tx) == [BLOCK9_COINBASE]
    assert r.amount.tolist() == [10 * BTC]
    assert path_txids(store, r, 0) == [HAL_TX]


def test_the_block_9_coinbase_forward_reaches_hal_unspent(store_dir: Path) -> None:
    store = Store.open(store_dir)
    coinbase = store.tx_id_of(BLOCK9_COINBASE)
    hal_tx = store.tx_id_of(HAL_TX)
    assert coinbase is not None and hal_tx is not None
    r = trace_forward(store_dir, outputs_of_tx(store, coinbase), max_hops=20)
    hal_output = int(outputs_of_tx(store, hal_tx)[0])
    rows = dict(zip(r.output.tolist(), r.kind_names(), strict=True))
    assert rows[hal_output] == "unspent"  # Hal had not spent it by block 599
    assert set(rows.values()) == {"unspent"}
    assert int(r.amount.sum()) == 50 * BTC  # no fees on the way, haircut is lossless here
    assert path_txids(store, r, 0) == [HAL_TX]


def test_trace_rows_of_a_txid_back(store_dir: Path) -> None:
    rows = trace_rows(store_dir, HAL_TX, "back", "haircut")
    hal = [r for r in rows if r["path"] == [HAL_TX]]
    assert {r["txid"] for r in hal} == {BLOCK9_COINBASE}
    assert all(r["kind"] == "coinbase" for r in rows)
    assert rows[0]["address"] and rows[0]["amount"] == 10 * BTC


def test_the_trace_command_prints_sources_as_json(store_dir: Path) -> None:
    import json

    from typer.testing import CliRunner

    from chainsleuth.core.console import CliState
    from chainsleuth.trace.cli import register

    app = stage_app(register)

    state = CliState(store_dir)  # what the root command puts in typer's context
    out = CliRunner().invoke(app, ["trace", HAL_TX, "--policy", "fifo", "--json"], obj=state)
    table = CliRunner().invoke(app, ["trace", HAL_TX, "--direction", "forward"], obj=state)
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {r["kind"] for r in rows} == {"coinbase"} and len(rows) == 2
    assert table.exit_code == 0 and "unspent" in table.output


SATOSHI_BLOCK9 = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"


@pytest.mark.parametrize("mode", ["fewest_hops", "largest_flow"])
def test_the_path_from_block_9_to_hal_is_one_hop(store_dir: Path, mode: str) -> None:
    from chainsleuth.trace.paths import find_path

    r = find_path(store_dir, SATOSHI_BLOCK9, HAL, mode=mode)
    assert r["found"] and r["n_hops"] == 1
    (hop,) = r["hops"]
    assert hop["txid"] == HAL_TX
    assert (hop["amount_in"], hop["amount"]) == (50 * BTC, 10 * BTC)


def test_hals_exposure_is_all_coinbase(store_dir: Path) -> None:
    from chainsleuth.trace.exposure import exposure

    r = exposure(store_dir, HAL, max_hops=3)
    assert r["received"]["total"] == 10 * BTC
    assert r["received"]["direct"] == {"coinbase": {"amount": 10 * BTC, "share": 1.0}}
    assert r["received"]["indirect"] == {"coinbase": {"amount": 10 * BTC, "share": 1.0}}
    assert r["sent"]["total"] == 0 and r["sent"]["direct"] == {}


def test_the_path_and_exposure_commands(store_dir: Path) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from chainsleuth.core.console import CliState
    from chainsleuth.trace.cli import register

    app = typer.Typer()
    register(app)

    def run(args: list[str]) -> Any:
        return CliRunner().invoke(app, args, obj=CliState(store_dir))

    path_json = run(["path", SATOSHI_BLOCK9, HAL, "--json"])
    path_table = run(["path", SATOSHI_BLOCK9, HAL, "--mode", "largest_flow"])
    no_path = run(["path", HAL, SATOSHI_BLOCK9, "--max-hops", "3"])
    cluster = run(["path", SATOSHI_BLOCK9, HAL, "--cluster", "--json"])
    exposure_json = run(["exposure", HAL, "--json"])
    exposure_table = run(["exposure", HAL, "--max-hops", "2"])
    assert path_json.exit_code == 0, path_json.output
    assert [h["txid"] for h in json.loads(path_json.output)["hops"]] == [HAL_TX]
    assert path_table.exit_code == 0 and "bottleneck 10.00000000 BTC" in path_table.output
    assert no_path.exit_code == 0 and "no path within 3 hops" in no_path.output
    assert cluster.exit_code == 0 and json.loads(cluster.output)["level"] == "cluster"
    assert exposure_json.exit_code == 0, exposure_json.output
    assert json.loads(exposure_json.output)["received"]["direct"]["coinbase"]["share"] == 1.0
    assert exposure_table.exit_code == 0 and "coinbase" in exposure_table.output


def test_path_and_exposure_take_since_and_until(store_dir: Path) -> None:
    # Hal's tx is in block 170, mined 2009-01-12; block 9's coinbase on 2009-01-09.
    import json

    import typer
    from typer.testing import CliRunner

    from chainsleuth.core.console import CliState
    from chainsleuth.trace.cli import register

    app = typer.Typer()
    register(app)

    def run(*args: str) -> Any:
        done = CliRunner().invoke(app, [*args, "--json"], obj=CliState(store_dir))
        assert done.exit_code == 0, done.output
        return json.loads(done.output)

    assert run("path", SATOSHI_BLOCK9, HAL, "--until", "170")["found"] is True
    assert run("path", SATOSHI_BLOCK9, HAL, "--since", "171")["status"] == "no_path"
    assert run("path", SATOSHI_BLOCK9, HAL, "--since", "2009-01-12")["found"] is True
    assert run("path", SATOSHI_BLOCK9, HAL, "--until", "2009-01-11")["found"] is False
    inside = run("exposure", HAL, "--since", "2009-01-12", "--until", "170")
    assert (inside["min_height"], inside["max_height"]) == (169, 170)  # 169: 2009-01-12 too
    assert inside["received"]["total"] == 10 * BTC
    # block 9's coinbase is outside the window, but a coinbase is a source, never walked
    # through, so the engine names it (coinbase) before it checks the window
    assert inside["received"]["indirect"] == {"coinbase": {"amount": 10 * BTC, "share": 1.0}}
    assert run("exposure", HAL, "--since", "171")["received"]["total"] == 0
    bad = CliRunner().invoke(
        app, ["exposure", HAL, "--since", "2009-13-45"], obj=CliState(store_dir)
    )
    assert bad.exit_code != 0 and "--since takes a block height or a date" in str(
        bad.exception or bad.output
    )
