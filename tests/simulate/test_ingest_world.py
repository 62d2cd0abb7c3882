"""A simulated world goes through the real ingest and comes out as the simulator booked it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainsleuth.core.address import encode_address, hash160
from chainsleuth.core.network import REGTEST
from chainsleuth.core.script_types import ScriptType
from chainsleuth.simulate.chain import regtest_genesis
from chainsleuth.store import ingest
from chainsleuth.store import store as store_mod


@pytest.fixture(scope="session")
def ingested(small_ingested: tuple[Path, ingest.IngestReport]) -> tuple[object, object]:
    """The session's small world as ingested (tests/conftest.py); these tests read only the
    chain's views and arrays, which the later layers (clusters, tags) leave as they are."""
    data, report = small_ingested
    return report, store_mod.Store.open(data)


@pytest.fixture(scope="session")
def ingested_xor(
    xor_world_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[object, object]:
    data = tmp_path_factory.mktemp("store-xor")
    report = ingest.ingest_blocks_dir(xor_world_dir / "blocks", data)
    return report, store_mod.Store.open(data)


def _one(store: object, query: str) -> object:
    return store.sql(query).to_pylist()[0]  # type: ignore[attr-defined]


def test_world_ingests_with_the_tip_and_tx_count_of_world_json(
    ingested: tuple, world: dict
) -> None:
    report, store = ingested
    assert report.network == "regtest"
    assert (report.tip_height, report.tip_hash) == (world["tip_height"], world["tip_hash"])
    assert report.n_txs == world["n_txs"]
    assert report.n_blocks == world["n_blocks"]
    counts = _one(store, "SELECT count(*) AS n, max(height) AS tip FROM blocks")
    assert counts == {"n": world["n_blocks"], "tip": world["tip_height"]}
    assert _one(store, "SELECT count(*) AS n FROM txs") == {"n": world["n_txs"]}


def test_stale_blocks_are_not_on_the_ingested_chain(ingested: tuple, world: dict) -> None:
    report, store = ingested
    hashes = {r["hash"] for r in store.sql("SELECT hash FROM blocks").to_pylist()}
    assert not hashes & set(world["stale_hashes"])
    assert sorted(report.stale_blocks) == sorted(world["stale_hashes"])


def test_ingested_received_and_sent_per_address_equal_the_simulators_books(
    ingested: tuple, truth: dict
) -> None:
    _, store = ingested
    got = {
        r["address"]: (r["received"], r["sent"])
        for r in store.sql("SELECT address, received, sent FROM addresses").to_pylist()
    }
    want = {r["address"]: (int(r["received_sat"]), int(r["sent_sat"])) for r in truth["balances"]}
    # genesis pays a bare public key; stores may index it under its P2PKH address
    pk = regtest_genesis().txs[0].outputs[0].script_pubkey[1:66]
    genesis = encode_address(ScriptType.P2PKH, hash160(pk), REGTEST)
    extra = set(got) - set(want)
    assert extra <= {genesis}
    mismatched = [a for a in want if got.get(a) != want[a]]
    assert not mismatched, f"{len(mismatched)} addresses differ, e.g. {mismatched[:3]}"


def test_every_transaction_conserves_value_in_the_store(ingested: tuple) -> None:
    _, store = ingested
    row = _one(store, "SELECT count(*) AS bad FROM txs WHERE NOT is_coinbase AND fee < 0")
    assert row == {"bad": 0}
    spent_twice = _one(
        store,
        "SELECT count(*) AS n FROM (SELECT prev_txid, prev_vout FROM inputs WHERE NOT is_coinbase "
        "GROUP BY 1, 2 HAVING count(*) > 1)",
    )
    assert spent_twice == {"n": 0}


def test_xor_world_ingests_to_the_same_chain(ingested: tuple, ingested_xor: tuple) -> None:
    (a, sa), (b, sb) = ingested, ingested_xor
    assert (a.tip_height, a.tip_hash, a.n_txs, a.n_inputs, a.n_outputs) == (
        b.tip_height, b.tip_hash, b.n_txs, b.n_inputs, b.n_outputs,
    )  # fmt: skip
    q = "SELECT sum(fee)::BIGINT AS fees, sum(vsize)::BIGINT AS vsize FROM txs"
    assert _one(sa, q) == _one(sb, q)


def test_lookups_of_every_address_and_tx_equal_a_scan(ingested: tuple) -> None:
    from tests.store.test_lookup import assert_lookups_equal_scans

    _, store = ingested
    assert_lookups_equal_scans(store.data_dir)  # type: ignore[attr-defined]


def test_address_ids_are_those_of_the_single_table_index(
    ingested: tuple, chain: object, world_dir: Path
) -> None:
    """The sharded address index (store.addrindex) numbers addresses exactly as the former
    single in-memory table did: first appearance in chain order, one id per distinct key."""
    import numpy as np

    from chainsleuth.parse.blocks import parse_blocks
    from chainsleuth.store.hashindex import HashIndex
    from chainsleuth.store.layout import ADDRESS_KEY_WIDTH, NONE32

    _, store = ingested
    batch = parse_blocks([b.serialize() for b in chain.main])  # type: ignore[attr-defined]
    rows = np.flatnonzero(batch.out_key_len > 0)
    keys = np.zeros((rows.shape[0], ADDRESS_KEY_WIDTH), np.uint8)
    keys[:, 0] = batch.out_key_kind[rows]
    keys[:, 1] = batch.out_key_len[rows]
    keys[:, 2:] = batch.out_key_payload[rows]
    want, new_rows = HashIndex().lookup_or_add(keys, np.zeros((0, ADDRESS_KEY_WIDTH), np.uint8), 0)
    out_address = np.asarray(store.array("output_address")).astype(np.int64)
    assert out_address.shape[0] == batch.n_outputs
    assert (out_address[rows] == want).all()
    others = np.ones(batch.n_outputs, bool)
    others[rows] = False
    assert (out_address[others] == int(NONE32)).all()
    assert (np.asarray(store.array("address_key")) == keys[new_rows]).all()
    assert new_rows.shape[0] > 1000  # the world is address-heavy enough to exercise the shards
