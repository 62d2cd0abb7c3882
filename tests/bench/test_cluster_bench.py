"""bench/cluster_bench on the small world: every run's cluster ids are scipy's partition (the
bench asserts it), and bench/run renders the like-for-like and end-to-end rows. No timing is
checked here (speed is bench/'s business)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cluster_bench import run
from bench.run import render_stages


def test_cluster_bench_rows(small_ingested: tuple[Path, object], tmp_path: Path) -> None:
    store = small_ingested[0]
    c = json.loads(json.dumps(run(store, networkx_edge_limit=1000)))  # as bench.measure hands it
    assert c["same_partition_as_scipy"] is True
    assert c["clusters_ours"] == c["clusters_scipy"]
    assert set(c["union_find_seconds_by_threads"]) == set(c["ours_seconds_by_threads"])
    assert {"uf_1", "ours_1", "scipy", "scipy_edges"} <= set(c["cpu_seconds"])
    (tmp_path / "world.json").write_text(json.dumps({"n_txs": c["txs"], "n_blocks": 1}))
    text = render_stages(
        tmp_path, 1.0, "small", {"world": {"ingest": {"n_txs": 1, "seconds": 1}}}, c, None
    )
    assert "chainsleuth union-find, same edge list" in text
    assert "scipy connected_components, same edge list" in text
    assert "Scaling from 1 to" in text
