"""Clustering in slices (issue 13, memory): the evidence written range by range and the base
written a slice of addresses at a time give the same clustering as one range and one slice.

The small simulated world is clustered twice from scratch: with the production sizes (one
range, one slice at this scale) and with ranges of 500 txs and slices of 1,000 addresses. The
cluster ids, the `clusters` rows, the evidence tables and the state files must be equal, and
each cluster's size (read from the union-find, not counted) must be the count of its members.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chainsleuth.cluster import engine, publish
from chainsleuth.cluster.engine import cluster_store, read_manifest
from chainsleuth.store.store import Store


def _cluster(store: Path, dest: Path, attribution: np.ndarray | None = None) -> dict[str, object]:
    shutil.copytree(store, dest)
    shutil.rmtree(dest / "clusters", ignore_errors=True)
    report = cluster_store(dest, "conservative", attribution=attribution, from_scratch=True)
    manifest = read_manifest(dest)
    assert manifest is not None
    cdir = dest / "clusters"
    base = manifest["layers"]["base"]
    out: dict[str, object] = {
        "report": (report.clusters, report.largest_cluster, report.merges, report.rules),
        "ids": np.load(cdir / base["cluster_of"]),
        "map": pq.read_table(cdir / base["map"]),
        "state": {k: (cdir / v).read_bytes() for k, v in base["state"].items()},
    }
    for key, names in manifest["files"].items():
        tables = [pq.read_table(cdir / n) for n in names]
        out[key] = pa.concat_tables(tables) if tables else None
    out["merge_row_groups"] = sum(
        pq.ParquetFile(cdir / n).num_row_groups for n in manifest["files"]["merges"]
    )
    assert not list(cdir.glob("*.run.parquet")), "a run's evidence file was left behind"
    return out


def test_small_ranges_and_slices_give_the_same_clustering(
    small_ingested: tuple[Path, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = small_ingested[0]
    whole = _cluster(store, tmp_path / "whole")
    monkeypatch.setattr(engine, "CHUNK_TXS", 500)
    monkeypatch.setattr(publish, "BASE_SLICE", 1000)
    sliced = _cluster(store, tmp_path / "sliced")
    assert sliced["merge_row_groups"] > whole["merge_row_groups"]  # written range by range
    ids = whole["ids"]
    assert isinstance(ids, np.ndarray) and ids.shape[0] > 3000  # several slices of 1,000
    assert np.array_equal(ids, sliced["ids"])
    for key in ("report", "state"):
        assert whole[key] == sliced[key], key
    for key in ("map", "merges", "coinjoins", "quarantine"):
        a, b = whole[key], sliced[key]
        assert (a is None and b is None) or (a is not None and a.equals(b)), key
    # sizes come from the union-find's `size` at each root: they must be the member counts
    sizes = np.bincount(ids, minlength=ids.shape[0])
    table = whole["map"]
    assert isinstance(table, pa.Table)
    assert np.array_equal(table.column("cluster_size").to_numpy(), sizes[ids])
    clusters, largest = whole["report"][:2]  # type: ignore[index]
    assert clusters == int((sizes > 0).sum()) and largest == int(sizes.max())


def test_narrow_attribution_gives_the_same_clustering(
    small_ingested: tuple[Path, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run from scratch holds the actor codes as int16 while they fit (2 B per address less);
    # the kernels and the files must see the same values as with int32.
    store = small_ingested[0]
    n = Store.open(store).counts["addresses"]
    rng = np.random.default_rng(7)
    codes = np.full(n, -1, np.int32)
    tagged = rng.choice(n, n // 5, replace=False)
    codes[tagged] = rng.integers(0, 5, tagged.shape[0])
    assert publish._run_dtype("attribution", np.int32, codes, n) == np.int16
    narrow = _cluster(store, tmp_path / "narrow", codes)
    monkeypatch.setattr(publish, "NARROW_ACTORS", 0)  # no code fits: int32, as before
    assert publish._run_dtype("attribution", np.int32, codes, n) == np.int32
    wide = _cluster(store, tmp_path / "wide", codes)
    assert np.array_equal(narrow["ids"], wide["ids"])
    for key in ("report", "state"):
        assert narrow[key] == wide[key], key
    for key in ("map", "merges", "coinjoins", "quarantine"):
        a, b = narrow[key], wide[key]
        assert (a is None and b is None) or (a is not None and a.equals(b)), key
    state = narrow["state"]
    assert isinstance(state, dict)
    saved = np.frombuffer(state["attribution"], np.int32)[:n]
    assert (saved == -2).any() and (saved >= 0).any()  # merged conflicts and codes were written


def _members_by_list(next_: np.ndarray) -> dict[int, set[int]]:
    """Each circular list of `next_`, keyed by its smallest member."""
    seen = np.zeros(next_.shape[0], bool)
    out: dict[int, set[int]] = {}
    for start in range(next_.shape[0]):
        if seen[start]:
            continue
        cycle, x = set(), start
        while x not in cycle:
            cycle.add(x)
            seen[x] = True
            x = int(next_[x])
        assert x == start, "the list must come back to where it started"
        out[min(cycle)] = cycle
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_member_lists_from_cluster_ids_equal_the_spliced_lists(seed: int) -> None:
    # A clustering from scratch builds `next` from the cluster ids when the base is written;
    # a resumed run splices it union by union. Both must list the same members per cluster.
    rng = np.random.default_rng(seed)
    n = 2_000
    parent = np.arange(n)
    spliced = np.arange(n, dtype=np.uint32)

    def root(x: int) -> int:
        while parent[x] != x:
            x = int(parent[x])
        return x

    for a, b in rng.integers(0, n, size=(1_500, 2)):
        ra, rb = root(int(a)), root(int(b))
        if ra == rb:
            continue
        parent[max(ra, rb)] = min(ra, rb)  # union by smallest id, as the engine does
        publish.splice(spliced, np.array([a]), np.array([b]))
    cluster_of = np.array([root(x) for x in range(n)], np.int64)
    built = np.zeros(n, np.uint32)  # zeroed, as in a fresh file
    publish.member_lists(cluster_of, built)
    expected = _members_by_list(spliced)
    assert _members_by_list(built) == expected
    assert len(expected) < n - 500  # the unions did join clusters
    for r, members in expected.items():
        assert cluster_of[r] == r and all(cluster_of[m] == r for m in members)
