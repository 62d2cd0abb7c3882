"""Ingest of the real nbitcoin blk files (mainnet heights 0-599): the views' contract, input
linking, the first bitcoin payment, address totals, re-runs, incremental runs, and the arrays."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.layout import read_files, read_manifest
from chainsleuth.store.store import Store
from tests.conftest import NBITCOIN, copy_nbitcoin, dump_views

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
assert SHARED / "mainnet-blocks" / "blk" / "nbitcoin" == NBITCOIN

HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
BLOCK_9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"  # P2PKH form of block 9's coinbase key
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"

STRING, INT32, INT64, BOOL, BINARY = pa.string(), pa.int32(), pa.int64(), pa.bool_(), pa.binary()
TIME = "timestamp"
# The views' columns, names and types: README's contract columns first (in README order), then
# the extras the store adds (ids into the arrays). A rename here breaks users' SQL.
CONTRACT = {
    "blocks": [
        ("height", INT32),
        ("hash", STRING),
        ("prev_hash", STRING),
        ("time", TIME),
        ("tx_count", INT32),
        ("size", INT64),
        ("weight", INT64),
        ("stripped_size", INT64),
        ("version", INT64),
        ("merkle_root", STRING),
        ("bits", INT64),
        ("nonce", INT64),
        ("fees", INT64),
        ("coinbase_value", INT64),
        ("bip34_height", INT64),
        ("first_tx_id", INT64),
    ],
    "txs": [
        ("txid", STRING),
        ("block_height", INT32),
        ("block_time", TIME),
        ("n_inputs", INT32),
        ("n_outputs", INT32),
        ("fee", INT64),
        ("size", INT64),
        ("vsize", INT64),
        ("weight", INT64),
        ("is_coinbase", BOOL),
        ("is_segwit", BOOL),
        ("signals_rbf", BOOL),
        ("version", INT64),
        ("locktime", INT64),
        ("input_value", INT64),
        ("output_value", INT64),
        ("base_size", INT64),
        ("index_in_block", INT32),
        ("tx_id", INT64),
        ("first_input_id", INT64),
        ("first_output_id", INT64),
    ],
    "outputs": [
        ("txid", STRING),
        ("vout", INT32),
        ("value", INT64),
        ("script_type", STRING),
        ("address", STRING),
        ("spent_by_txid", STRING),
        ("spent_by_vin", INT32),
        ("spent_height", INT32),
        ("block_height", INT32),
        ("address_type", STRING),
        ("address_derived", BOOL),
        ("multisig_m", pa.int8()),
        ("multisig_n", pa.int8()),
        ("script_pubkey", BINARY),
        ("output_id", INT64),
        ("tx_id", INT64),
        ("address_id", INT64),
    ],
    "inputs": [
        ("txid", STRING),
        ("vin", INT32),
        ("prev_txid", STRING),
        ("prev_vout", INT64),
        ("value", INT64),
        ("address", STRING),
        ("block_height", INT32),
        ("sequence", INT64),
        ("is_coinbase", BOOL),
        ("script_sig", BINARY),
        ("witness", BINARY),
        ("spent_output_id", INT64),
        ("input_id", INT64),
        ("tx_id", INT64),
        ("address_id", INT64),
    ],
    "addresses": [
        ("address", STRING),
        ("script_type", STRING),
        ("n_txs", INT64),
        ("received", INT64),
        ("sent", INT64),
        ("balance", INT64),
        ("first_seen_height", INT32),
        ("last_seen_height", INT32),
        ("address_id", INT64),
    ],
}


@pytest.fixture(scope="module")
def store(nbitcoin_store: Path) -> Store:
    return Store.open(nbitcoin_store)


def one(store: Store, query: str, params: list | None = None) -> dict:
    rows = store.sql(query, params).to_pylist()
    assert len(rows) == 1, rows
    return rows[0]


def test_ingest_holds_600_blocks_and_616_transactions(store: Store) -> None:
    assert store.counts["blocks"] == 600 and store.counts["txs"] == 616
    assert one(store, "SELECT count(*) AS n, max(height) AS tip FROM blocks") == {
        "n": 600,
        "tip": 599,
    }
    assert one(store, "SELECT count(*) AS n FROM txs")["n"] == 616
    assert store.tip == (599, "0000000042844571bc6bce8e1c0fbec99466971eaff89fef8c0d123582181d4d")


@pytest.mark.parametrize("view", list(CONTRACT))
def test_view_has_exactly_the_contract_columns_and_types(store: Store, view: str) -> None:
    schema = store.sql(f"SELECT * FROM {view} LIMIT 0").schema
    assert schema.names == [name for name, _ in CONTRACT[view]]
    for name, expected in CONTRACT[view]:
        actual = schema.field(name).type
        if expected == TIME:
            assert pa.types.is_timestamp(actual) and actual.tz in ("UTC", "Etc/UTC"), name
        else:
            assert actual == expected, name


def test_view_row_counts_equal_the_manifest_counts(store: Store) -> None:
    counts = store.manifest["counts"]
    for view, key in (
        ("blocks", "blocks"),
        ("txs", "txs"),
        ("outputs", "outputs"),
        ("inputs", "inputs"),
        ("addresses", "addresses"),
    ):
        assert one(store, f"SELECT count(*) AS n FROM {view}")["n"] == counts[key], view


def test_every_non_coinbase_input_has_a_value_and_an_address(store: Store) -> None:
    row = one(
        store,
        """SELECT count(*) AS n, count(value) AS valued, count(address) AS addressed,
                  count(spent_output_id) AS linked
           FROM inputs WHERE NOT is_coinbase""",
    )
    assert row["n"] == 625 - 600 == 25  # 600 coinbase inputs (one a block), 25 spends
    assert row["valued"] == row["addressed"] == row["linked"] == row["n"]
    coinbase = one(
        store, "SELECT count(*) AS n, count(value) AS valued FROM inputs WHERE is_coinbase"
    )
    assert coinbase == {"n": 600, "valued": 0}


def test_spent_outputs_name_their_spender_and_unspent_ones_have_null(store: Store) -> None:
    joined = one(
        store,
        """SELECT count(*) AS n FROM outputs o JOIN inputs i
           ON i.prev_txid = o.txid AND i.prev_vout = o.vout
           WHERE o.spent_by_txid = i.txid AND o.spent_by_vin = i.vin
             AND o.spent_height = i.block_height""",
    )
    spent = one(store, "SELECT count(*) AS n FROM outputs WHERE spent_by_txid IS NOT NULL")
    assert joined["n"] == spent["n"] == 25
    unspent = one(
        store,
        """SELECT count(*) AS n, count(spent_by_vin) AS vin, count(spent_height) AS height
           FROM outputs o WHERE spent_by_txid IS NULL
             AND NOT EXISTS (SELECT 1 FROM inputs i
                             WHERE i.prev_txid = o.txid AND i.prev_vout = o.vout)""",
    )
    assert unspent == {"n": 627 - 25, "vin": 0, "height": 0}


def test_block_170_tx_spends_block_9_coinbase_and_pays_hal_10_btc(store: Store) -> None:
    spend = one(store, "SELECT * FROM inputs WHERE txid = ?", [HAL_TX])
    assert (spend["prev_txid"], spend["prev_vout"]) == (BLOCK_9_COINBASE, 0)
    assert (spend["value"], spend["address"], spend["block_height"]) == (50 * 10**8, SATOSHI, 170)
    coinbase = one(store, "SELECT * FROM outputs WHERE txid = ? AND vout = 0", [BLOCK_9_COINBASE])
    assert (coinbase["block_height"], coinbase["spent_by_txid"]) == (9, HAL_TX)
    paid = store.sql(
        "SELECT vout, value, address, script_type, address_derived FROM outputs "
        "WHERE txid = ? ORDER BY vout",
        [HAL_TX],
    ).to_pylist()
    assert paid == [
        {
            "vout": 0,
            "value": 10 * 10**8,
            "address": HAL,
            "script_type": "p2pk",
            "address_derived": True,
        },
        {
            "vout": 1,
            "value": 40 * 10**8,
            "address": SATOSHI,
            "script_type": "p2pk",
            "address_derived": True,
        },
    ]
    tx = one(store, "SELECT * FROM txs WHERE txid = ?", [HAL_TX])
    assert (tx["block_height"], tx["fee"], tx["is_coinbase"]) == (170, 0, False)


def test_address_summary_totals_equal_sql_aggregates(store: Store) -> None:
    busiest = (
        store.sql("SELECT address FROM addresses ORDER BY n_txs DESC, address LIMIT 4")
        .column("address")
        .to_pylist()
    )
    for address in {SATOSHI, HAL, *busiest}:
        summary = store.address_summary(address)
        assert summary is not None
        outs = one(
            store,
            """SELECT sum(value)::BIGINT AS received, count(*) AS n_outputs,
                      coalesce(sum(value) FILTER (WHERE spent_by_txid IS NOT NULL), 0)::BIGINT
                        AS sent,
                      count(*) FILTER (WHERE spent_by_txid IS NULL) AS n_unspent
               FROM outputs WHERE address = ?""",
            [address],
        )
        view = one(store, "SELECT * FROM addresses WHERE address = ?", [address])
        assert (summary.received, summary.sent, summary.n_outputs, summary.n_unspent) == (
            outs["received"],
            outs["sent"],
            outs["n_outputs"],
            outs["n_unspent"],
        ), address
        assert (summary.received, summary.sent, summary.balance, summary.n_txs) == (
            view["received"],
            view["sent"],
            view["balance"],
            view["n_txs"],
        ), address
        assert (summary.first_seen_height, summary.last_seen_height) == (
            view["first_seen_height"],
            view["last_seen_height"],
        ), address
        assert summary.script_type == view["script_type"] == "p2pkh"


def test_address_summary_of_satoshis_block_9_address(store: Store) -> None:
    summary = store.address_summary(SATOSHI)
    assert summary is not None
    assert summary.first_seen_height == 9 and summary.sent > 0
    assert summary.received - summary.sent == summary.balance


def test_second_ingest_run_adds_nothing(
    tmp_path: Path, nbitcoin_store: Path, nbitcoin_views: dict
) -> None:
    data = tmp_path / "data"
    shutil.copytree(nbitcoin_store, data)
    before = read_manifest(data)
    report = ingest_blocks_dir(NBITCOIN, data)
    assert (report.n_blocks, report.n_txs, report.rolled_back) == (0, 0, 0)
    after = read_manifest(data)
    assert after["counts"] == before["counts"] and read_files(data, after) == read_files(
        data, before
    )
    assert dump_views(data) == nbitcoin_views


def test_ingesting_blk00000_then_both_files_equals_ingesting_both_at_once(
    tmp_path: Path, nbitcoin_views: dict
) -> None:
    blocks = copy_nbitcoin(tmp_path / "blocks", ["blk00000.dat"])
    first = ingest_blocks_dir(blocks, tmp_path / "data")
    assert (first.n_blocks, first.tip_height) == (300, 299)
    copy_nbitcoin(blocks, ["blk00001.dat"])
    second = ingest_blocks_dir(blocks, tmp_path / "data")
    assert (second.n_blocks, second.tip_height, second.rolled_back) == (300, 599, 0)
    assert dump_views(tmp_path / "data") == nbitcoin_views


def test_memory_mapped_arrays_agree_with_the_parquet_views(store: Store) -> None:
    outputs = store.sql(
        "SELECT output_id, value, spent_by_txid, address_id FROM outputs ORDER BY output_id"
    )
    assert outputs.column("output_id").to_pylist() == list(range(store.counts["outputs"]))
    assert np.array_equal(store.array("output_value"), outputs.column("value").to_numpy())
    txids = store.sql("SELECT txid FROM txs ORDER BY tx_id").column("txid").to_pylist()
    spent_by = store.spent_by_tx()
    assert [txids[t] if t >= 0 else None for t in spent_by.tolist()] == outputs.column(
        "spent_by_txid"
    ).to_pylist()
    address = np.asarray(store.array("output_address")).astype(np.int64)
    address[address == 0xFFFFFFFF] = -1
    view_address = outputs.column("address_id").fill_null(-1).to_numpy()
    assert np.array_equal(address, view_address)
    assert [bytes(t[::-1]).hex() for t in store.array("tx_txid")] == txids
    inputs = store.sql("SELECT spent_output_id FROM inputs ORDER BY input_id")
    assert np.array_equal(
        store.array("input_spent_output"), inputs.column("spent_output_id").fill_null(-1).to_numpy()
    )
