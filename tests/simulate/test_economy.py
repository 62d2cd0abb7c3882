"""Money is conserved, nothing is spent twice, the books match the chain, and a seed is a world."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from chainsleuth.core.address import decode_address, script_pubkey
from chainsleuth.simulate.cli import register
from chainsleuth.simulate.run import simulate
from tests.simulate.conftest import SEED, Chain


def test_every_transaction_spends_existing_outputs_and_conserves_value(
    chain: Chain, prevouts: dict
) -> None:
    seen: set[tuple[bytes, int]] = set()
    checked = 0
    for _, tx in chain.main_txs():
        txid = tx.txid()
        if not tx.is_coinbase():
            ins = [prevouts[(i.prev_txid, i.prev_vout)][0] for i in tx.inputs]
            assert all((i.prev_txid, i.prev_vout) in seen for i in tx.inputs), (
                "spends a later output"
            )
            assert sum(ins) >= sum(o.value for o in tx.outputs)
            checked += 1
        seen.update((txid, v) for v in range(len(tx.outputs)))
    assert checked > 0, "the world has no tx but coinbases: nothing checked"


def test_no_output_is_spent_twice_on_the_main_chain(chain: Chain) -> None:
    spent = [(i.prev_txid, i.prev_vout) for _, tx in chain.main_txs() if not tx.is_coinbase()
             for i in tx.inputs]  # fmt: skip
    assert len(spent) == len(set(spent))


def test_transaction_ids_are_unique(chain: Chain) -> None:
    txids = [tx.txid() for _, tx in chain.main_txs()]
    assert len(txids) == len(set(txids))


def test_fees_are_positive_at_plausible_rates(chain: Chain, prevouts: dict) -> None:
    rates = []
    for _, tx in chain.main_txs():
        if tx.is_coinbase():
            continue
        fee = sum(prevouts[(i.prev_txid, i.prev_vout)][0] for i in tx.inputs) - sum(
            o.value for o in tx.outputs
        )
        assert fee > 0
        rates.append(fee / tx.vsize())
    rates.sort()
    assert rates[len(rates) // 100] >= 0.9  # wallets pay at least about 1 sat/vB
    assert rates[len(rates) // 2] < 100
    assert rates[-1] < 5000


def test_coinbase_outputs_are_spent_only_after_100_blocks(chain: Chain) -> None:
    coinbase_height = {b.txs[0].txid(): h for h, b in enumerate(chain.main)}
    ages = [
        h - coinbase_height[i.prev_txid]
        for h, tx in chain.main_txs()
        for i in tx.inputs
        if i.prev_txid in coinbase_height
    ]
    assert ages, "the world spends no coinbase output: nothing checked"
    assert min(ages) >= 100


def test_small_world_has_15k_to_30k_transactions(world: dict) -> None:
    assert 15_000 <= world["n_txs"] <= 30_000


def test_balances_csv_equals_received_and_sent_per_address_on_the_chain(
    chain: Chain, truth: dict
) -> None:
    spk_to_address = {}
    for row in truth["balances"]:
        kind, payload, _ = decode_address(row["address"])
        spk_to_address[script_pubkey(kind, payload)] = row["address"]
    received: dict[str, int] = defaultdict(int)
    sent: dict[str, int] = defaultdict(int)
    outputs: dict[tuple[bytes, int], tuple[str | None, int]] = {}
    unaddressed = 0
    for h, tx in chain.main_txs():
        for i in tx.inputs:
            if not tx.is_coinbase():
                address, value = outputs[(i.prev_txid, i.prev_vout)]
                if address is not None:
                    sent[address] += value
        for vout, o in enumerate(tx.outputs):
            address = spk_to_address.get(o.script_pubkey)
            if address is None and o.value and not o.script_pubkey.startswith(b"\x6a"):
                unaddressed += o.value
                assert h == 0, "only the genesis block pays a script the books do not know"
            outputs[(tx.txid(), vout)] = (address, o.value)
            if address is not None:
                received[address] += o.value
    assert unaddressed == 50 * 10**8
    for row in truth["balances"]:
        a = row["address"]
        assert (received[a], sent[a]) == (int(row["received_sat"]), int(row["sent_sat"]))
        assert int(row["balance_sat"]) == received[a] - sent[a]
    assert set(received) == {row["address"] for row in truth["balances"]}


def test_same_seed_through_the_cli_gives_byte_identical_files(
    world_dir: Path, tmp_path: Path
) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a group, so that `simulate` is a subcommand as in the root CLI
        pass

    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--seed", str(SEED)])
    assert result.exit_code == 0, result.output
    assert "world written to" in result.output
    assert _digests(tmp_path) == _digests(world_dir)
    assert (tmp_path / "timing.json").exists()


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` but timing.json (the one file a seed does not fix)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "timing.json"
    }


def test_another_seed_gives_another_chain(world: dict, tmp_path: Path) -> None:
    summary = simulate(tmp_path, seed=SEED + 1, scale="small")
    assert summary.tip_hash != world["tip_hash"]
    assert summary.tip_height == world["tip_height"]


def test_rerunning_into_a_used_directory_replaces_the_world(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "blk00099.dat").write_bytes(b"left over")
    (tmp_path / "notes.txt").write_text("mine")
    simulate(tmp_path, seed=5, scale="small")
    assert not (tmp_path / "blocks" / "blk00099.dat").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_world_does_not_depend_on_the_cycle_collector(
    world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simulate` pauses Python's cycle collector (run.py, `_cycle_collection_paused`) for
    speed; the same seed with the collector running, and running often, is the same world."""
    import contextlib
    import gc

    from chainsleuth.simulate import run

    monkeypatch.setattr(run, "_cycle_collection_paused", contextlib.nullcontext)
    thresholds = gc.get_threshold()
    gc.set_threshold(50, 2, 2)
    collections = sum(s["collections"] for s in gc.get_stats())
    try:
        simulate(tmp_path, seed=SEED, scale="small")
    finally:
        gc.set_threshold(*thresholds)
    assert sum(s["collections"] for s in gc.get_stats()) > collections + 100
    assert _digests(tmp_path) == _digests(world_dir)


def test_simulate_leaves_the_cycle_collector_as_it_found_it(tmp_path: Path) -> None:
    import gc

    assert gc.isenabled()
    simulate(tmp_path / "on", seed=SEED, scale="small")
    assert gc.isenabled()
    gc.disable()
    try:
        simulate(tmp_path / "off", seed=SEED, scale="small")
        assert not gc.isenabled()
    finally:
        gc.enable()
