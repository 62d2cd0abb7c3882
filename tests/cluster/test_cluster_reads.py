"""A cluster's members, merges and explanation cost O(the cluster), not O(the chain).

`Clusters.members` walks the published member lists (`next`, base + delta layers) and checks the
walk against the cluster ids; `Clusters.merges_in_txs` reads only the row groups holding the
cluster's txs. Each answer is compared with a pass over every address or every merge, and the
whole-array paths are made to fail while the cheap ones answer, so a fallback to them shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from chainsleuth.cluster import engine
from chainsleuth.cluster.engine import Clusters
from chainsleuth.cluster.layers import LayeredIds
from chainsleuth.cluster.summary import cluster_merges, cluster_summary_by_id, explain_link
from tests.conftest import cluster_in_steps


@pytest.fixture(scope="module")
def layered_store(small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world clustered at 90 % of its chain, then at the tip: a base and a delta."""
    world, _ = small_world
    store = cluster_in_steps(world, tmp_path_factory.mktemp("cluster-reads"), (90, 100))
    assert Clusters(store).manifest["layers"]["deltas"], "expected a delta layer"
    return store


def _sample_clusters(ids: np.ndarray) -> list[int]:
    """The largest clusters, some middling ones and a singleton."""
    sizes = np.bincount(ids)
    multi = np.flatnonzero(sizes > 1)
    rng = np.random.default_rng(7)
    picked = set(np.argsort(sizes)[-3:].tolist())
    picked |= set(rng.choice(multi, size=min(20, multi.shape[0]), replace=False).tolist())
    picked.add(int(np.flatnonzero(sizes == 1)[0]))
    return sorted(picked)


def _no_whole_array(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: LayeredIds) -> np.ndarray:
        raise AssertionError("a pass over every address id")

    monkeypatch.setattr(LayeredIds, "materialize", refuse)
    monkeypatch.setattr(LayeredIds, "range", lambda self, lo, hi: refuse(self))
    monkeypatch.setattr(Clusters, "merges", lambda self: refuse(self))  # type: ignore[arg-type]


def test_members_walk_the_member_lists_and_equal_a_pass_over_every_address(
    layered_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = np.asarray(Clusters(layered_store).cluster_of)
    wanted = {cid: np.flatnonzero(ids == cid) for cid in _sample_clusters(ids)}
    monkeypatch.setattr(engine, "WALK_MEMBERS_MIN", int(np.bincount(ids).max()))
    _no_whole_array(monkeypatch)
    clusters = Clusters(layered_store)
    for cid, members in wanted.items():
        assert clusters.members(cid).tolist() == members.tolist()
        # a member's id resolves to its cluster, and gives the same members
        assert clusters.members(int(members[-1])).tolist() == members.tolist()


def test_a_cluster_larger_than_the_walk_is_found_by_a_pass_over_the_ids(
    layered_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters = Clusters(layered_store)
    ids = np.asarray(clusters.cluster_of)
    largest = int(np.argmax(np.bincount(ids)))
    monkeypatch.setattr(engine, "WALK_MEMBERS_MIN", 2)
    assert clusters._walk_members(largest) is None
    assert clusters.members(largest).tolist() == np.flatnonzero(ids == largest).tolist()


def test_a_member_list_that_disagrees_with_the_cluster_ids_is_not_trusted(
    layered_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters = Clusters(layered_store)
    ids = np.asarray(clusters.cluster_of)
    sizes = np.bincount(ids)
    a, b = np.flatnonzero(sizes > 2)[:2].tolist()
    real = clusters._member_lists()
    assert real is not None
    # a later run spliced a's list into b's while this reader holds the older manifest
    stale = np.asarray(real).astype(np.int64)
    stale[a], stale[b] = stale[b], stale[a]
    monkeypatch.setattr(Clusters, "_member_lists", lambda self: stale)
    assert clusters._walk_members(a) is None
    assert clusters.members(a).tolist() == np.flatnonzero(ids == a).tolist()
    # a list that never comes back to its start (cut short) is not trusted either
    monkeypatch.setattr(engine, "WALK_MEMBERS_MIN", int(sizes[b]) - 2)
    monkeypatch.setattr(engine, "WALK_MEMBERS_MAX", int(sizes[b]) - 2)
    monkeypatch.setattr(Clusters, "_member_lists", lambda self: real)
    assert clusters._walk_members(b) is None
    assert clusters.members(b).tolist() == np.flatnonzero(ids == b).tolist()


def test_a_clusters_merges_and_summary_read_its_own_txs_only(
    layered_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters = Clusters(layered_store)
    ids = np.asarray(clusters.cluster_of)
    every = clusters.merges()
    inside = ids[every.column("address_a_id").to_numpy()]
    sample = _sample_clusters(ids)
    wanted = {cid: every.filter(pa.array(inside == cid)) for cid in sample}
    summaries = {cid: cluster_summary_by_id(layered_store, cid) for cid in sample}
    monkeypatch.setattr(engine, "WALK_MEMBERS_MIN", int(np.bincount(ids).max()))
    _no_whole_array(monkeypatch)
    n_merges = 0
    for cid in sample:
        found = cluster_merges(layered_store, cid)
        key = ["tx_id", "address_a_id", "address_b_id"]
        assert (
            found.sort_by([(k, "ascending") for k in key]).to_pylist()
            == wanted[cid].sort_by([(k, "ascending") for k in key]).to_pylist()
        )
        n_merges += found.num_rows
        # the rules in the summary are counted from the same merges
        summary = cluster_summary_by_id(layered_store, cid)
        assert summary == summaries[cid]
        assert sum(summary["rules"].values()) == wanted[cid].num_rows
    assert n_merges > 0


def test_explain_reads_the_clusters_merges_only(
    layered_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clusters = Clusters(layered_store)
    every = clusters.merges()
    ids = np.asarray(clusters.cluster_of)
    row = every.num_rows // 3
    a = int(every["address_a_id"][row].as_py())
    members = np.flatnonzero(ids == ids[a])
    b = int(members[-1]) if members[-1] != a else int(members[0])
    full = clusters.explain(a, b)
    monkeypatch.setattr(engine, "WALK_MEMBERS_MIN", int(members.shape[0]))
    _no_whole_array(monkeypatch)
    steps = explain_link(layered_store, a, b)
    assert full is not None and steps is not None
    assert len(steps) == len(full)  # both shortest
    assert steps[0]["from_address_id"] == a and steps[-1]["to_address_id"] == b
    for left, right in zip(steps, steps[1:], strict=False):
        assert left["to_address_id"] == right["from_address_id"]
    other = int(np.flatnonzero(ids != ids[a])[0])
    assert explain_link(layered_store, a, other) is None
