"""An investigation on a clustering with delta layers equals one on a clustering from scratch.

At the tip the published clustering is a mapped base plus sorted delta layers
(`cluster.layers.LayeredIds`); the case reads cluster ids where it indexes them and gives the
traces one stop flag per address (`trace.engine.AddressStops`) instead of materialising a
cluster id per address (8 B each). The small world is ingested to 85 % of its chain, clustered,
ingested to the end and clustered again (a delta layer), tagged, and investigated: its four
CSVs must be byte for byte those of the session's small world, clustered in one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.world import tag_world
from chainsleuth.cases.investigate import investigate, prepare_case
from chainsleuth.cluster.engine import Clusters
from chainsleuth.cluster.layers import LayeredIds
from chainsleuth.trace.engine import address_stops, outputs_of_tx, trace_back, trace_forward
from tests.conftest import cluster_in_steps

CSVS = ("leads.csv", "subpoenas.csv", "cashouts.csv", "services.csv")


@pytest.fixture(scope="module")
def layered(small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world's store clustered as a base and at least one delta layer, tagged."""
    world, _ = small_world
    root = tmp_path_factory.mktemp("layered")
    store = cluster_in_steps(world, root, (85, 100), compact_rows=1 << 40)
    tag_world(world, store)
    return store


def test_case_with_delta_layers_equals_the_case_from_scratch(
    small_world: tuple[Path, Path], layered: Path, tmp_path: Path
) -> None:
    world, data = small_world
    deltas = Clusters(layered).manifest["layers"]["deltas"]
    assert deltas, "the second run should have published a delta layer"
    seeds = world / "seeds" / "deposits.csv"
    setup = prepare_case(layered, seeds)
    # the layered ids themselves, read where indexed: no cluster id per address in memory
    assert isinstance(setup.cluster_of, LayeredIds)
    investigate(layered, seeds, tmp_path / "layered", report=False)
    investigate(data, seeds, tmp_path / "scratch", report=False)
    for name in CSVS:
        a = (tmp_path / "layered" / name).read_bytes()
        b = (tmp_path / "scratch" / name).read_bytes()
        assert a == b, name
    assert (tmp_path / "scratch" / "leads.csv").read_text().count("\n") > 100


@pytest.mark.parametrize("direction", ["back", "forward"])
def test_address_stops_trace_as_stop_clusters(
    small_world: tuple[Path, Path], layered: Path, direction: str
) -> None:
    """A stop flag per address, built from layered ids, walks as stop clusters do."""
    _, data = small_world
    cluster_of = np.asarray(Clusters(data).cluster_of, np.int64)
    rng = np.random.default_rng(3)
    stop = np.zeros(cluster_of.shape[0], np.bool_)
    stop[cluster_of[rng.random(cluster_of.shape[0]) < 0.03]] = True
    layered_ids = Clusters(layered).cluster_of
    assert isinstance(layered_ids, LayeredIds) and layered_ids.indexable() is layered_ids
    by_mask = address_stops(stop, layered_ids)
    by_ids = address_stops(np.flatnonzero(stop), layered_ids, stop_sorted=True)
    assert np.array_equal(by_mask.mask, stop[cluster_of])
    assert np.array_equal(by_ids.mask, by_mask.mask)
    trace = trace_back if direction == "back" else trace_forward
    from chainsleuth.store.store import Store

    store = Store.open(data)
    seeds = np.concatenate([outputs_of_tx(store, t) for t in range(200, store.counts["txs"], 97)])
    a = trace(data, seeds, max_hops=8, stop_clusters=stop, cluster_of=cluster_of)
    b = trace(data, seeds, max_hops=8, stop_clusters=by_ids)
    assert (a.kind == 0).any()  # some walks did stop at a cluster
    for field in ("seed", "output", "tx", "amount", "hops", "kind", "flags", "entry"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
