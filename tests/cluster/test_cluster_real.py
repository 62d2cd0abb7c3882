"""Clustering the real mainnet blocks 0-599: what the data really contains."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.conftest import NBITCOIN


@pytest.fixture(scope="module")
def store_dir(nbitcoin_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's mainnet store (tests/conftest.py), clustered (conservative)."""
    data = tmp_path_factory.mktemp("real") / "store"
    shutil.copytree(nbitcoin_store, data)
    cluster_store(data, "conservative")
    return data


def test_only_the_multi_input_transactions_of_blocks_0_599_merge_addresses(
    store_dir: Path,
) -> None:
    store, clusters = Store.open(store_dir), Clusters(store_dir)
    # The data has a handful of multi-input transactions (the guess of none is wrong).
    multi = store.sql(
        "SELECT t.txid, count(DISTINCT i.address) AS n FROM txs t JOIN inputs i USING (txid)"
        " WHERE t.n_inputs > 1 GROUP BY t.txid"
    ).to_pylist()
    assert len(multi) == 5
    merges = store.sql("SELECT txid, rule FROM cluster_merges").to_pylist()
    assert {m["txid"] for m in merges} <= {m["txid"] for m in multi}
    assert {m["rule"] for m in merges} == {"multi_input"}
    # a spanning forest: n distinct input addresses give n - 1 unions per tx at most
    assert len(merges) <= sum(m["n"] - 1 for m in multi)
    sizes = np.bincount(np.asarray(clusters.cluster_of))
    assert sizes.sum() == store.counts["addresses"]


def test_multi_input_merges_exactly_the_addresses_that_spent_together(
    tmp_path: Path, nbitcoin_store: Path
) -> None:
    shutil.copytree(nbitcoin_store, tmp_path / "store")
    cluster_store(tmp_path / "store", "multi_input")
    store, clusters = Store.open(tmp_path / "store"), Clusters(tmp_path / "store")
    co_spenders = {
        r["address_id"]
        for r in store.sql(
            "SELECT i.address_id FROM inputs i JOIN ("
            "  SELECT txid FROM inputs GROUP BY txid HAVING count(DISTINCT address_id) > 1"
            ") USING (txid)"
        ).to_pylist()
    }
    sizes = np.bincount(np.asarray(clusters.cluster_of))
    merged = set(np.flatnonzero(sizes[np.asarray(clusters.cluster_of)] > 1).tolist())
    assert co_spenders and merged == co_spenders


def test_incremental_clustering_equals_clustering_from_scratch(
    tmp_path: Path, nbitcoin_store: Path
) -> None:
    part = tmp_path / "part"
    part.mkdir()
    shutil.copy(NBITCOIN / "blk00000.dat", part / "blk00000.dat")
    ingest_blocks_dir(part, tmp_path / "inc")
    cluster_store(tmp_path / "inc", "aggressive")
    shutil.copy(NBITCOIN / "blk00001.dat", part / "blk00001.dat")
    ingest_blocks_dir(part, tmp_path / "inc")
    report = cluster_store(tmp_path / "inc", "aggressive")
    assert not report.from_scratch
    shutil.copytree(nbitcoin_store, tmp_path / "full")  # the whole chain in one ingest
    cluster_store(tmp_path / "full", "aggressive")
    inc = Store.open(tmp_path / "inc").sql("SELECT * FROM cluster_merges ORDER BY txid, address_b")
    full = Store.open(tmp_path / "full").sql(
        "SELECT * FROM cluster_merges ORDER BY txid, address_b"
    )
    assert inc.equals(full)
    assert np.array_equal(
        Clusters(tmp_path / "inc").cluster_of, Clusters(tmp_path / "full").cluster_of
    )
