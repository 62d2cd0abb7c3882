"""Cold point reads cost O(the answer): `tx` reads one row group per table file (plus one for
a tx whose rows straddle two), `cluster-of`'s merges only the row groups holding the cluster's
txs; counted (store/points.py's COUNTER), never timed. Tiny row groups make the files hold many,
so reading a whole file would show."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from chainsleuth.cluster import publish
from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.cluster.summary import cluster_merges, cluster_summary_by_id
from chainsleuth.store import layout, points
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.lookups import _plain, transaction
from chainsleuth.store.store import VIEWS, Store, computed

ROWS = 64  # rows per row group in these stores


@pytest.fixture(scope="module")
def tiny_groups(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world ingested and clustered with 64-row row groups."""
    mp = pytest.MonkeyPatch()
    mp.setattr(layout, "ROW_GROUP_ROWS", ROWS)
    mp.setattr(publish, "EVIDENCE_ROW_GROUP_ROWS", ROWS)
    try:
        data = tmp_path_factory.mktemp("tiny-groups") / "data"
        ingest_blocks_dir(small_world_dir / "blocks", data)
        cluster_store(data, "conservative")
    finally:
        mp.undo()
    return data


def _old_transaction_rows(store: Store, tx_id: int, height: int) -> dict[str, list]:
    """What `transaction` read before point reads: a DuckDB filter over the files of the height."""
    tx_cols = VIEWS["txs"].split("SELECT", 1)[1].split("FROM", 1)[0]
    in_cols = (
        f"vin, is_coinbase, {computed('inputs', 'prev_txid')}, {computed('inputs', 'prev_vout')}, "
        f"{computed('inputs', 'value')}, address_id, sequence, script_sig, witness"
    )
    out_cols = (
        f"vout, {computed('outputs', 'value')}, script_type, address_id, address_derived, "
        f"{computed('outputs', 'script_pubkey')}, output_id"
    )
    return {
        table: _plain(store.at_height(table, height, cols, where, [tx_id]).to_pylist())
        for table, cols, where in (
            ("txs", tx_cols, "tx_id = ?"),
            ("inputs", in_cols, "tx_id = ? ORDER BY vin"),
            ("outputs", out_cols, "tx_id = ? ORDER BY vout"),
        )
    }


def test_a_tx_reads_one_row_group_per_file_and_the_same_rows(tiny_groups: Path) -> None:
    store = Store.open(tiny_groups)
    groups = {
        t: sum(
            pq.ParquetFile(p).metadata.num_row_groups
            for p in (tiny_groups / "tables" / t).rglob("*.parquet")
        )
        for t in layout.POINT_TABLES
    }
    assert min(groups.values()) > 50  # many groups: reading whole files would show
    n_tx = store.counts["txs"]
    first_in = np.asarray(store.graph.tx_first_input)
    first_out = np.asarray(store.graph.tx_first_output)
    n_in = np.diff(np.append(first_in, store.counts["inputs"]))
    picked = [0, 1, n_tx - 1, int(np.argmax(n_in))] + list(range(2, n_tx, max(1, n_tx // 60)))
    for tx_id in picked:
        height = int(store.graph.tx_height[tx_id])
        txid = bytes(store.graph.tx_txid[tx_id][::-1]).hex()
        points.COUNTER.reset()
        got = transaction(store, txid)
        rows = {
            "txs": 1,
            "inputs": int(n_in[tx_id]),
            "outputs": int(
                (first_out[tx_id + 1] if tx_id + 1 < n_tx else store.counts["outputs"])
                - first_out[tx_id]
            ),
        }
        files = {
            t: len(layout.files_at_height(tiny_groups, store.manifest, t, height))
            for t in layout.POINT_TABLES
        }
        # one group per file holding the height, one more where the tx's rows straddle groups
        bound = sum(files[t] + math.ceil(rows[t] / ROWS) for t in layout.POINT_TABLES)
        assert points.COUNTER.row_groups <= bound, (tx_id, points.COUNTER)
        assert points.COUNTER.files == sum(files.values())
        # the same rows as the DuckDB filter over the files read
        old = _old_transaction_rows(store, tx_id, height)
        assert {k: v for k, v in got.items() if k not in ("inputs", "outputs")} == old["txs"][-1]
        assert len(got["inputs"]) == len(old["inputs"]) == rows["inputs"]
        assert [r["vout"] for r in got["outputs"]] == [r["vout"] for r in old["outputs"]]
        for new, was in zip(got["inputs"], old["inputs"], strict=True):
            assert new["prev_txid"] == was["prev_txid"] and new["value"] == was["value"]
            assert new["prev_vout"] == was["prev_vout"] and new["sequence"] == was["sequence"]
        for new, was in zip(got["outputs"], old["outputs"], strict=True):
            assert new["value"] == was["value"] and new["script_pubkey"] == was["script_pubkey"]


def test_a_clusters_merges_read_only_the_row_groups_of_its_txs(
    tiny_groups: Path, tmp_path: Path
) -> None:
    clusters = Clusters(tiny_groups)
    every = clusters.merges()
    files = [tiny_groups / "clusters" / f for f in clusters.manifest["files"]["merges"]]
    total = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    assert total > 20
    ids = np.asarray(clusters.cluster_of)
    sizes = np.bincount(ids)
    rng = np.random.default_rng(3)
    for cid in rng.choice(np.flatnonzero((sizes >= 2) & (sizes <= 50)), 15, replace=False):
        points.COUNTER.reset()
        got = cluster_merges(tiny_groups, int(cid))
        read = points.COUNTER.row_groups
        members = np.flatnonzero(ids == cid)
        inside = np.isin(every.column("address_a_id").to_numpy(), members)
        assert got.num_rows == int(inside.sum())
        # the groups read: at most those whose tx_id range holds a tx the cluster spends or
        # creates an output in (each of its txs is in one group, or two where it straddles)
        store = Store.open(tiny_groups)
        outs = store.lookup_index().outputs_of_addresses(members)
        txs = np.unique(
            np.concatenate((store.lookup_index().txs_of_outputs(outs), store.spent_by(outs)))
        )
        assert read <= 2 * int((txs >= 0).sum()), (cid, read)
        assert read < total
        summary = cluster_summary_by_id(tiny_groups, int(cid))
        assert summary["size"] == members.shape[0]
    shutil.rmtree(tmp_path, ignore_errors=True)
