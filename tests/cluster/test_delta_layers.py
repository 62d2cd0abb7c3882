"""Publishing at the tip as delta layers: base + deltas equal a clustering from scratch.

The small simulated world is ingested a few blocks at a time, clustered after each step, and
compared address by address with one clustering of the whole chain: the cluster ids (so the
partition), the `clusters` view, the merge evidence and `explain`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from chainsleuth.cluster import publish as publish_module
from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.cluster.summary import cluster_summary_by_id
from chainsleuth.simulate.chain import regtest_genesis
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.conftest import blk_records, extend_chain, raw, read_blk, write_blocks_dir


def _world_blocks(world: Path) -> tuple[list[bytes], bytes]:
    files = sorted((world / "blocks").glob("blk*.dat"))
    magic = files[0].read_bytes()[:4]
    return [b for f in files for b in read_blk(f)], magic


def _snapshot(data: Path) -> dict[str, object]:
    """Everything a reader sees of a clustering, in a fixed order."""
    store = Store.open(data)
    clusters = Clusters(data)
    n = clusters.manifest["addresses"]  # the store may hold more (ingested, not yet clustered)
    ids = np.asarray(clusters.cluster_of)
    assert ids.shape == (n,)
    assert np.array_equal(Clusters.or_singletons(data).clusters_of(np.arange(n)), ids)
    assert np.array_equal(clusters.cluster_of[np.arange(n)], ids)
    view = store.sql("SELECT * FROM clusters ORDER BY address_id").to_pydict()
    merges = store.sql(
        "SELECT address_a, address_b, txid, rule, change_rules, confidence, cluster_id "
        "FROM cluster_merges ORDER BY txid, address_a, address_b"
    ).to_pydict()
    return {"ids": ids, "view": view, "merges": merges}


def _assert_same(inc: Path, full: Path) -> None:
    a, b = _snapshot(inc), _snapshot(full)
    assert np.array_equal(a["ids"], b["ids"])  # cluster id = smallest member: same partition
    assert a["view"] == b["view"]
    assert a["merges"] == b["merges"]
    sizes = np.bincount(a["ids"])  # type: ignore[arg-type]
    assert a["view"]["cluster_size"] == sizes[a["ids"]].tolist()  # type: ignore[index]


@pytest.fixture(scope="module")
def world_steps(
    small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[bytes], bytes, Path]:
    """The world's blocks and a store of the whole chain clustered from scratch."""
    world, _ = small_world
    blocks, magic = _world_blocks(world)
    root = tmp_path_factory.mktemp("delta-full")
    (root / "blocks").mkdir()
    (root / "blocks" / "blk00000.dat").write_bytes(blk_records(blocks, magic))
    ingest_blocks_dir(root / "blocks", root / "store")
    cluster_store(root / "store", "conservative", from_scratch=True)
    return blocks, magic, root / "store"


def _grow(tmp: Path, blocks: list[bytes], magic: bytes, upto: int) -> None:
    (tmp / "blocks").mkdir(exist_ok=True)
    (tmp / "blocks" / "blk00000.dat").write_bytes(blk_records(blocks[:upto], magic))
    ingest_blocks_dir(tmp / "blocks", tmp / "store")


@pytest.mark.parametrize("compact_rows", [1 << 40, 3_000])
def test_deltas_with_and_without_compaction_equal_a_clustering_from_scratch(
    world_steps: tuple[list[bytes], bytes, Path], tmp_path: Path, compact_rows: int
) -> None:
    blocks, magic, full = world_steps
    n = len(blocks)
    kinds = []
    # from 85 % of the chain: the base leaves room for a quarter more addresses
    for upto in ((85 * n) // 100, (85 * n) // 100 + 1, (9 * n) // 10, (19 * n) // 20, n - 2, n):
        _grow(tmp_path, blocks, magic, upto)
        report = cluster_store(tmp_path / "store", "conservative", compact_rows=compact_rows)
        kinds.append(report.published)
    assert kinds[0] == "base"
    if compact_rows > 1 << 30:
        assert kinds[1:] == ["delta"] * 5
        layers = Clusters(tmp_path / "store").manifest["layers"]["deltas"]
        # merged logarithmically: fewer layers than runs, newest last
        assert 1 <= len(layers) < 5
    else:
        assert "delta" in kinds[1:] and "base" in kinds[1:]
    _assert_same(tmp_path / "store", full)
    # readers built on the cluster ids: a cluster's summary (members, balance, rules)
    ids = np.asarray(Clusters(full).cluster_of)
    largest = np.argsort(np.bincount(ids))[-3:]
    for cid in largest.tolist():
        inc_summary = cluster_summary_by_id(tmp_path / "store", cid)
        assert inc_summary == cluster_summary_by_id(full, cid)
    # explain walks merges published in different generations
    merges = Clusters(full).merges()
    row = merges.num_rows // 2
    a, b = int(merges["address_a_id"][row].as_py()), int(merges["address_b_id"][row].as_py())
    steps = Clusters(tmp_path / "store").explain(a, b)
    assert steps is not None and steps[0]["from_address_id"] == a
    assert steps[-1]["to_address_id"] == b
    # nothing left behind but what the manifest names (and the one before it)
    leftovers = [p.name for p in (tmp_path / "store" / "clusters").glob("*.tmp")]
    assert leftovers == []


def test_a_crash_before_the_manifest_leaves_the_old_clustering_readable(
    world_steps: tuple[list[bytes], bytes, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks, magic, full = world_steps
    n = len(blocks)
    _grow(tmp_path, blocks, magic, n - 5)
    cluster_store(tmp_path / "store", "conservative")
    before = _snapshot(tmp_path / "store")
    _grow(tmp_path, blocks, magic, n)

    def crash(path: Path, data: bytes) -> None:
        raise KeyboardInterrupt("killed between the layer and the manifest")

    monkeypatch.setattr(publish_module, "atomic_write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        cluster_store(tmp_path / "store", "conservative")
    layers = list((tmp_path / "store" / "clusters" / "layers").iterdir())
    assert layers  # the delta was written, the manifest was not
    after_crash = _snapshot(tmp_path / "store")
    assert np.array_equal(after_crash["ids"], before["ids"])  # type: ignore[arg-type]
    assert after_crash["view"] == before["view"]
    monkeypatch.undo()
    report = cluster_store(tmp_path / "store", "conservative")
    assert report.published == "delta" and not report.from_scratch
    _assert_same(tmp_path / "store", full)


def test_a_crash_while_the_state_is_written_in_place_is_redone_by_the_next_run(
    world_steps: tuple[list[bytes], bytes, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks, magic, full = world_steps
    n = len(blocks)
    _grow(tmp_path, blocks, magic, n - 4)
    cluster_store(tmp_path / "store", "conservative")
    _grow(tmp_path, blocks, magic, n - 2)

    def crash(*args: object) -> int:
        raise KeyboardInterrupt("killed while writing the state")

    monkeypatch.setattr(publish_module, "_apply_state", crash)
    with pytest.raises(KeyboardInterrupt):
        cluster_store(tmp_path / "store", "conservative")
    # the run is published (readers see it); its state is pending, and redone next time
    assert Clusters(tmp_path / "store").manifest["layers"]["state_pending"]
    monkeypatch.undo()
    _grow(tmp_path, blocks, magic, n)
    assert cluster_store(tmp_path / "store", "conservative").published == "delta"
    assert "state_pending" not in Clusters(tmp_path / "store").manifest["layers"]
    _assert_same(tmp_path / "store", full)


def test_a_reorg_under_delta_layers_reclusters_the_new_branch(tmp_path: Path) -> None:
    a = extend_chain([regtest_genesis()], 40, seed=41, tag=b"A")
    b = extend_chain(a[:25], 30, seed=42, tag=b"B")
    data = tmp_path / "data"
    for upto in (20, 30, 35, 41):
        ingest_blocks_dir(write_blocks_dir(tmp_path / f"a{upto}", [raw(a[:upto])]), data)
        report = cluster_store(data, "multi_input")
    assert report.published == "delta"
    assert Clusters(data).manifest["layers"]["deltas"]
    # the node switches to B (more work): blocks 25-40 of A are rolled back
    ingest_blocks_dir(write_blocks_dir(tmp_path / "ab", [raw(a), raw(b[25:])]), data)
    report = cluster_store(data, "multi_input")
    assert report.from_scratch and report.published == "base"
    assert not Clusters(data).manifest["layers"]["deltas"]
    fresh = tmp_path / "fresh"
    ingest_blocks_dir(write_blocks_dir(tmp_path / "b", [raw(b)]), fresh)
    cluster_store(fresh, "multi_input")
    _assert_same(data, fresh)
    # and the tip moves on from the new base with deltas again
    c = extend_chain(b, 5, seed=43, tag=b"C")
    ingest_blocks_dir(write_blocks_dir(tmp_path / "abc", [raw(a), raw(c[25:])]), data)
    assert cluster_store(data, "multi_input").published == "delta"
    ingest_blocks_dir(write_blocks_dir(tmp_path / "c", [raw(c)]), tmp_path / "fresh-c")
    cluster_store(tmp_path / "fresh-c", "multi_input")
    _assert_same(data, tmp_path / "fresh-c")


def test_a_clustering_in_the_layout_before_layers_is_redone_and_its_files_removed(
    tmp_path: Path,
) -> None:
    a = extend_chain([regtest_genesis()], 12, seed=44, tag=b"L")
    data = tmp_path / "data"
    ingest_blocks_dir(write_blocks_dir(tmp_path / "a", [raw(a)]), data)
    cdir = data / "clusters"
    (cdir / "state").mkdir(parents=True)
    n = Store.open(data).counts["addresses"]
    np.save(cdir / "address_cluster.npy", np.arange(n, dtype=np.int64))
    np.save(cdir / "state" / "parent.npy", np.arange(n, dtype=np.uint32))
    (cdir / "manifest.json").write_text('{"generation": 4, "policy": "multi_input"}')
    assert Clusters.or_singletons(data).generation == 4  # still readable as it was
    report = cluster_store(data, "multi_input")
    assert report.from_scratch
    assert Clusters(data).manifest["generation"] == 5
    cluster_store(data, "multi_input", from_scratch=True)
    assert not (cdir / "address_cluster.npy").exists()
    assert not (cdir / "state" / "parent.npy").exists()


def _random_layers(
    rng: np.random.Generator, n: int, n_base: int, n_layers: int, per_layer: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """(a base of `n_base` random cluster ids, `n_layers` random layers oldest first, the
    cluster of each of the `n` ids they give: newest layer, then the base, then the id)."""
    base = rng.integers(0, n, n_base)
    truth = np.arange(n)
    truth[:n_base] = base
    layers = []
    for _ in range(n_layers):
        ids = np.unique(rng.integers(0, n, per_layer))
        values = rng.integers(0, n, ids.shape[0])
        layers.append((ids, values))
        truth[ids] = values
    return base, layers, truth


def test_the_layered_view_equals_the_array_it_stands_for() -> None:
    """Newest layer wins, then the base, then the id itself: every way readers index it."""
    from chainsleuth.cluster.layers import LayeredIds

    rng = np.random.default_rng(1)
    n = 1000
    base, layers, truth = _random_layers(rng, n, 800, 4, 150)
    view = LayeredIds(base, layers, n)
    assert np.array_equal(np.asarray(view), truth)
    for lo, hi in [(0, 10), (795, 805), (900, 1000), (0, 1000), (500, 400)]:
        assert np.array_equal(view.range(lo, hi), truth[lo:hi])
    queries = rng.integers(0, n, 300)
    assert np.array_equal(view.lookup(queries), truth[queries])
    assert np.array_equal(view[queries], truth[queries])
    assert np.array_equal(view[3:900:7], truth[3:900:7])
    assert view[999] == truth[999] and view.shape == (n,) and len(view) == n
    assert np.array_equal(view.members(int(truth[5])), np.flatnonzero(truth == truth[5]))
    assert view.lookup(np.array([n + 5]))[0] == n + 5  # beyond the clustering: its own cluster
    with pytest.raises(IndexError):
        view[n]


def test_a_few_ids_are_looked_up_without_a_pass_over_every_address() -> None:
    """A run at the tip looks up a few ids: the layers are searched for them directly (no layer
    bits, a pass over every address id), with the same answers as the bits give."""
    from chainsleuth.cluster.layers import SEARCH_PER_BIT, LayeredIds

    rng = np.random.default_rng(2)
    n = 64 * SEARCH_PER_BIT
    base, layers, truth = _random_layers(rng, n, n - 100, 3, 500)
    few = np.concatenate((layers[0][0][:20], layers[2][0][-5:], rng.integers(0, n, 30), [n + 3]))
    expected = np.append(truth, n + 3)[np.minimum(few, n)]
    view = LayeredIds(base, layers, n)
    assert np.array_equal(view.lookup(few), expected)
    assert "_bits" not in view.__dict__  # no pass over the n ids for a few
    many = rng.integers(0, n, n // SEARCH_PER_BIT + 1)
    assert np.array_equal(view.lookup(many), truth[many])
    assert "_bits" in view.__dict__  # many ids: the bits, built once
    assert np.array_equal(view.lookup(few), expected)  # and used from then on


def test_evidence_files_stay_bounded_through_deltas_and_compactions(
    world_steps: tuple[list[bytes], bytes, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evidence files of at most EVIDENCE_FILE_ROWS rows, each with its tx range in the
    manifest; a compaction keeps the full ones; a cluster's merges open only the files whose
    range holds one of its txs. Tiny files here, so there are many."""
    from chainsleuth.cluster.summary import cluster_merges
    from chainsleuth.store import points

    monkeypatch.setattr(publish_module, "EVIDENCE_FILE_ROWS", 200)
    monkeypatch.setattr(publish_module, "EVIDENCE_ROW_GROUP_ROWS", 64)
    blocks, magic, full = world_steps
    n = len(blocks)
    store = tmp_path / "store"
    seen: set[str] = set()
    kept_across_compaction = False
    for upto in ((85 * n) // 100, (9 * n) // 10, (19 * n) // 20, n - 2, n):
        _grow(tmp_path, blocks, magic, upto)
        report = cluster_store(store, "conservative", compact_rows=3_000)
        manifest = Clusters(store).manifest
        names = manifest["files"]["merges"]
        if report.published == "base" and seen & set(names):
            kept_across_compaction = True  # full files of an earlier generation were kept
        seen |= set(names)
        ranges = manifest["evidence_ranges"]
        for key, listed in manifest["files"].items():
            for name in listed:
                table = pq.read_table(store / "clusters" / name)
                assert table.num_rows <= 200, (key, name)
                ids = table.column("tx_id").to_numpy()
                lo, hi = (int(ids.min()), int(ids.max())) if ids.shape[0] else (-1, -1)
                assert ranges[name] == [lo, hi, table.num_rows], (key, name)
        assert set(ranges) == {x for listed in manifest["files"].values() for x in listed}
    assert len(Clusters(store).manifest["files"]["merges"]) > 5
    assert kept_across_compaction
    _assert_same(store, full)
    # a cluster's merges: only the files whose tx range holds one of its txs are opened
    clusters = Clusters(store)
    ids = np.asarray(clusters.cluster_of)
    sizes = np.bincount(ids)
    names = clusters.manifest["files"]["merges"]
    for cid in np.flatnonzero((sizes >= 2) & (sizes <= 20))[:10].tolist():
        expected = cluster_merges(full, cid)
        points.COUNTER.reset()
        got = cluster_merges(store, cid)
        assert got.num_rows == expected.num_rows
        assert points.COUNTER.files < len(names)
        assert set(points.COUNTER.by_file) <= {str(store / "clusters" / x) for x in names}
