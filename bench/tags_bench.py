"""Tags benchmark: importing the 499k public GraphSense tags, and attribution lookup latency.

Baseline, measured in the same run on the same files: loading every pack (and the ActorPack)
with PyYAML's C loader (`yaml.load(..., Loader=yaml.CSafeLoader)`) and nothing else, no
validation, no storage. chainsleuth's import includes reading with line numbers, validating
every tag (addresses, taxonomy), writing parquet and publishing the manifest; the re-import
measures the idempotent path (everything read and validated again, nothing written).

Lookups run against the imported tags: by address (the tags of one address) and by cluster
(one cluster's attribution). There is no mainnet store at hand, so the cluster lookups use a
synthetic clustering of the tagged addresses: dense address ids in address order, and the
addresses of each (tagpack, actor or label) group cut into clusters of up to 1,000 — the shape
of exchange and service wallets; the attribution over those clusters is computed with the same
`compute_cluster_tags` as on a real store and timed too. Latencies are per lookup on an open
`TagLookup` (warm, as a notebook or the API holds it) and for open+lookup+close (cold, what one
CLI call does).

    python -m bench.tags_bench            # prints the JSON result
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
TAGPACKS = ROOT.parent / "shared" / "data" / "graphsense-tagpacks"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {
        "n": len(seconds),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def _baseline(files: list[Path]) -> float:
    import yaml

    started = time.perf_counter()
    for path in files:
        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
    return time.perf_counter() - started


def _synthetic_clusters(data_dir: Path, cluster_size: int = 1_000) -> tuple[pa.Table, Any, int]:
    """Tags with synthetic address ids and a clustering of them (see the module docstring)."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.tags import storage

    manifest = storage.read_manifest(data_dir)
    tags = storage.current_tags(
        data_dir,
        manifest,
        ["tag_id", "address", "actor", "label", "category", "abuse", "confidence_level",
         "tagpack", "source"],
    )  # fmt: skip
    addresses = pc.unique(tags.column("address")).sort()
    address_id = pc.index_in(tags.column("address"), value_set=addresses).to_numpy()
    tags = tags.append_column("address_id", pa.array(address_id.astype(np.int64)))
    n = len(addresses)
    # group each address under its first tag's (tagpack, actor or label), cut into chunks
    keys = pc.binary_join_element_wise(
        tags.column("tagpack"), pc.coalesce(tags.column("actor"), tags.column("label")), "|"
    )
    group_codes = pc.dictionary_encode(keys).combine_chunks().indices.to_numpy()
    order = np.argsort(address_id, kind="stable")
    _, first_row = np.unique(address_id[order], return_index=True)
    first = group_codes[order[first_row]].astype(np.int64)  # the group of each address
    cluster_of = np.arange(n, dtype=np.int64)
    by_group = np.argsort(first, kind="stable")
    boundaries = np.flatnonzero(np.diff(first[by_group])) + 1
    for members in np.split(by_group, boundaries):
        for lo in range(0, members.shape[0], cluster_size):
            chunk = members[lo : lo + cluster_size]
            cluster_of[chunk] = chunk.min()
    return tags, Clusters.from_array(cluster_of, 1), n


def run(repeats: int = 1, lookups: int = 2_000, cold_lookups: int = 100) -> dict[str, Any]:
    """Measure import time against the PyYAML C-loader baseline and lookup latency."""
    from chainsleuth.tags import TagLookup, compute_cluster_tags, import_tagpacks, storage
    from chainsleuth.tags.attribution import _actors

    files = sorted((TAGPACKS / "packs").glob("*.yaml")) + sorted(
        (TAGPACKS / "actors").glob("*.yaml")
    )
    result: dict[str, Any] = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    work = Path(tempfile.mkdtemp(prefix="tags-bench-"))
    try:
        # warm the numba cache and the page cache (both runs then read from memory)
        import_tagpacks(work / "warm", [TAGPACKS / "packs" / "hydra.yaml"])
        for f in files:
            f.read_bytes()
        base, ours, again = [], [], []
        for k in range(repeats):
            base.append(_baseline(files))
            data_dir = work / f"data{k}"
            started = time.perf_counter()
            report = import_tagpacks(data_dir, [TAGPACKS], imported_by="bench")
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            import_tagpacks(data_dir, [TAGPACKS], imported_by="bench")
            again.append(time.perf_counter() - started)
        data_dir = work / "data0"
        result.update(
            {
                "tags_imported": report.imported,
                "tags_skipped_non_btc": report.skipped_non_btc,
                "tags_invalid": report.invalid,
                "actors": report.actors,
                "baseline_pyyaml_c_seconds": round(float(np.median(base)), 3),
                "import_seconds": round(float(np.median(ours)), 3),
                "reimport_seconds": round(float(np.median(again)), 3),
                "import_tags_per_s": round(report.imported / float(np.median(ours))),
            }
        )
        result["import_vs_baseline"] = round(
            result["import_seconds"] / result["baseline_pyyaml_c_seconds"], 3
        )

        # cluster attribution over a synthetic clustering of every tagged address
        tags, clusters, n_addr = _synthetic_clusters(data_dir)
        manifest = storage.read_manifest(data_dir)
        started = time.perf_counter()
        table = compute_cluster_tags(
            tags, clusters, n_addresses=n_addr, actors=_actors(data_dir, manifest)
        )
        result["attribution_seconds"] = round(time.perf_counter() - started, 3)
        result["attribution_clusters"] = table.num_rows
        result["attribution_conflicts"] = int(pc.sum(table.column("conflict")).as_py() or 0)
        rel = "derived/cluster_tags-bench.parquet"
        storage.write_table(storage.stage_dir(data_dir) / rel, table, row_group_size=256)
        manifest["cluster_tags"] = {"file": rel}
        storage.write_manifest(data_dir, manifest)

        rng = random.Random(1)
        addresses = tags.column("address").to_pylist()
        cluster_ids = table.column("cluster_id").to_pylist()
        sample_a = [addresses[rng.randrange(len(addresses))] for _ in range(lookups)]
        sample_c = [cluster_ids[rng.randrange(len(cluster_ids))] for _ in range(lookups)]
        for mode, in_memory in (("duckdb", False), ("memory", True)):
            started = time.perf_counter()
            with TagLookup.open(data_dir, refresh=False, in_memory=in_memory) as lookup:
                result[f"lookup_open_{mode}_seconds"] = round(time.perf_counter() - started, 3)
                lookup.by_address(sample_a[0])
                lookup.cluster(sample_c[0])
                warm_a, warm_c = [], []
                for a in sample_a[: lookups if in_memory else lookups // 4]:
                    t = time.perf_counter()
                    assert lookup.by_address(a)
                    warm_a.append(time.perf_counter() - t)
                for c in sample_c[: lookups if in_memory else lookups // 4]:
                    t = time.perf_counter()
                    assert lookup.cluster(c) is not None
                    warm_c.append(time.perf_counter() - t)
            result[f"lookup_address_warm_{mode}"] = _percentiles(warm_a)
            result[f"lookup_cluster_warm_{mode}"] = _percentiles(warm_c)
        cold_a, cold_c = [], []
        for a, c in zip(sample_a[:cold_lookups], sample_c[:cold_lookups], strict=True):
            t = time.perf_counter()
            with TagLookup.open(data_dir, refresh=False) as lookup:
                lookup.by_address(a)
            cold_a.append(time.perf_counter() - t)
            t = time.perf_counter()
            with TagLookup.open(data_dir, refresh=False) as lookup:
                lookup.cluster(c)
            cold_c.append(time.perf_counter() - t)
        result["lookup_address_cold"] = _percentiles(cold_a)
        result["lookup_cluster_cold"] = _percentiles(cold_c)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
