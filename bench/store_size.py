"""Store bytes against the blk bytes it was built from, per structure (issue 13, item 5).

    python -m bench.store_size BLOCKS_DIR [BLOCKS_DIR ...] [--work DIR] [--keep-scripts both]
        [--experiments]
    python -m bench.store_size --same-results WORLD_DIR

For each blocks directory: ingest it into a fresh store (the default slim store, and with
`--keep-scripts`), then report bytes per transaction of every table (and of its largest
columns, from the parquet footers), every array, the indexes, and the ratio store / blk files.
`--experiments` also rewrites the slim store's tables with other parquet settings (codec,
level, dictionary, row-group size) and reports what each would weigh; nothing in the store is
changed. `store_bytes` and `breakdown` are used by `bench/run.py`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.world import tag_world
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.layout import read_files, read_manifest


def blk_bytes(blocks_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(blocks_dir).glob("blk*.dat"))


def store_bytes(data_dir: Path) -> int:
    """Bytes of every file of a store (what `du --apparent-size` counts)."""
    return sum(p.stat().st_size for p in Path(data_dir).rglob("*") if p.is_file())


def breakdown(data_dir: Path) -> dict[str, int]:
    """Bytes per structure: tables/<table>, arrays/<name>, index, address_index, lookup,
    trace_rows, manifest, other."""
    parts: dict[str, int] = defaultdict(int)
    root = Path(data_dir)
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(root).parts
        if rel[0] == "tables":
            key = f"tables/{rel[1]}"
        elif rel[0] == "arrays":
            key = f"arrays/{p.stem}"
        elif rel[0] in ("index", "lookup", "address_index", "trace_rows"):
            key = rel[0]
        elif rel[0] == "manifest.json":
            key = "manifest"
        else:
            key = "other"
        parts[key] += p.stat().st_size
    return dict(parts)


def column_bytes(data_dir: Path) -> dict[str, int]:
    """Compressed bytes of each parquet column (from the footers), as `table.column`."""
    out: dict[str, int] = defaultdict(int)
    manifest = read_manifest(Path(data_dir))
    assert manifest is not None
    for table, files in read_files(Path(data_dir), manifest).items():
        for entry in files:
            meta = pq.ParquetFile(Path(data_dir) / entry["path"]).metadata
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    out[f"{table}.{col.path_in_schema}"] += col.total_compressed_size
    return dict(out)


def ingest(blocks_dir: Path, data_dir: Path, keep_scripts: bool) -> dict[str, Any]:
    shutil.rmtree(data_dir, ignore_errors=True)
    kwargs: dict[str, Any] = {}
    if "keep_scripts" in inspect.signature(ingest_blocks_dir).parameters:
        kwargs["keep_scripts"] = keep_scripts
    elif not keep_scripts:
        raise SystemExit("this chainsleuth has no slim store (no keep_scripts)")
    started = time.perf_counter()
    report = ingest_blocks_dir(blocks_dir, data_dir, **kwargs)
    seconds = time.perf_counter() - started
    total = store_bytes(data_dir)
    blk = blk_bytes(blocks_dir)
    manifest = read_manifest(data_dir)
    assert manifest is not None
    return {
        "counts": manifest["counts"],
        "blocks_dir": str(blocks_dir),
        "keep_scripts": keep_scripts,
        "n_txs": report.n_txs,
        "seconds": round(seconds, 3),
        "blk_bytes": blk,
        "store_bytes": total,
        "ratio": total / blk,
        "parts": breakdown(data_dir),
        "columns": column_bytes(data_dir),
    }


#: Mainnet, for the projection: the estimates docs/design/store.md budgets for (2025).
MAINNET = {
    "blocks": 0.93e6,
    "txs": 1.1e9,
    "inputs": 2.9e9,
    "outputs": 3.1e9,
    "addresses": 1.4e9,
    "utxo_txs": 130e6,  # txs with an unspent output (the outpoint index holds these)
    "blk_bytes": 650e9,
}
#: What each table's bytes grow with.
TABLE_ITEM = {
    "blocks": "blocks",
    "txs": "txs",
    "inputs": "inputs",
    "outputs": "outputs",
    "address_list": "addresses",
}


def project(result: dict[str, Any], mainnet: dict[str, float] = MAINNET) -> dict[str, float]:
    """Each structure's bytes at mainnet: its measured bytes per item x mainnet's items.

    Tables and arrays scale with the item they have a row per (ARRAYS says which); the hash
    tables and the lookup index are not measured per item at this size (a hash table is a power
    of two of slots, with a minimum size), so they use their documented layouts
    (docs/design/store.md): the outpoint index (`index`) 12 B a slot, a power of two at most
    70 % full of the txs with an unspent output; the address index's base shards 8 B a slot at
    load 0.65; the lookup index 8 B per address + 8 B per output + 12 B per tx; the trace rows
    (store/tracerows.py) 8 B per output + 8 B per input.
    """
    from chainsleuth.store.layout import ARRAYS

    counts = result["counts"]
    out: dict[str, float] = {}
    for key, size in result["parts"].items():
        kind, _, name = key.partition("/")
        if kind == "tables":
            item = TABLE_ITEM[name]
        elif kind == "arrays":
            item = ARRAYS[name].count
        else:
            continue
        out[key] = size / max(counts[item], 1) * mainnet[item]
    out["index"] = 12 * 2 ** math.ceil(math.log2(mainnet["utxo_txs"] / 0.7))
    out["address_index"] = 8 / 0.65 * mainnet["addresses"]
    out["lookup"] = 8 * mainnet["addresses"] + 8 * mainnet["outputs"] + 12 * mainnet["txs"]
    out["trace_rows"] = 8 * mainnet["outputs"] + 8 * mainnet["inputs"]
    out["total"] = sum(out.values())
    out["ratio"] = out["total"] / mainnet["blk_bytes"]
    return out


#: Parquet settings tried by --experiments; the writer's own is zstd at pyarrow's default level
#: (1), 256 k-row groups, dictionary only on the script-type columns (StoreWriter._write_file).
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "snappy": {"compression": "snappy"},
    "zstd (level 1, as written)": {"compression": "zstd"},
    "zstd level 3": {"compression": "zstd", "compression_level": 3},
    "zstd level 9": {"compression": "zstd", "compression_level": 9},
    "zstd, dictionary on every column": {"compression": "zstd", "use_dictionary": True},
    "zstd, 1 M-row groups": {"compression": "zstd", "row_group_size": 1 << 20},
    "zstd, 64 k-row groups": {"compression": "zstd", "row_group_size": 1 << 16},
}


def experiments(data_dir: Path) -> dict[str, dict[str, int]]:
    """Bytes per table if its files were written with each of EXPERIMENTS' settings."""
    manifest = read_manifest(Path(data_dir))
    assert manifest is not None
    out: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in EXPERIMENTS.items():
            sizes: dict[str, int] = {}
            for table, files in read_files(Path(data_dir), manifest).items():
                total = 0
                for entry in files:
                    data = pq.read_table(Path(data_dir) / entry["path"])
                    opts = {"row_group_size": 256 * 1024, "use_dictionary": False, **settings}
                    if opts["use_dictionary"] is False:
                        opts["use_dictionary"] = [
                            c for c in ("script_type", "address_type") if c in data.column_names
                        ]
                    path = Path(tmp) / "x.parquet"
                    pq.write_table(data, path, **opts)
                    total += path.stat().st_size
                sizes[table] = total
            out[name] = sizes
    return out


def per_tx_table(result: dict[str, Any]) -> str:
    n = result["n_txs"]
    lines = ["| structure | bytes | B/tx |", "|---|---|---|"]
    for key, size in sorted(result["parts"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {key} | {size:,} | {size / n:.1f} |")
    lines.append(f"| **total** | {result['store_bytes']:,} | {result['store_bytes'] / n:.1f} |")
    lines.append(f"| blk files | {result['blk_bytes']:,} | {result['blk_bytes'] / n:.1f} |")
    lines.append(f"| **store / blk** | | {result['ratio']:.3f} |")
    at = project(result)
    lines.append(
        f"mainnet projection: {at['total'] / 1e9:,.0f} GB, {at['ratio']:.2f}x of "
        f"{MAINNET['blk_bytes'] / 1e9:,.0f} GB of blk files; "
        + ", ".join(f"{k} {v / 1e9:,.0f} GB" for k, v in sorted(at.items(), key=lambda kv: -kv[1])
                    if k not in ("total", "ratio"))
    )  # fmt: skip
    return "\n".join(lines)


def item_of(key: str) -> str | None:
    """What a structure's bytes grow with (its rows' item), None for the fixed-layout ones."""
    from chainsleuth.store.layout import ARRAYS

    kind, _, name = key.partition("/")
    if kind == "tables":
        return TABLE_ITEM[name]
    if kind == "arrays":
        return ARRAYS[name].count
    return None


def mainnet_table(results: list[dict[str, Any]]) -> str:
    """Markdown: each structure's bytes per item on each measured chain and its mainnet size
    (`project`), the structures of docs/design/store.md's table."""
    projections = [project(r) for r in results]
    keys = sorted(projections[0], key=lambda k: -projections[0][k])
    head = " / ".join(Path(r["blocks_dir"]).parent.name for r in results)
    lines = [
        f"| structure | per | B/item ({head}) | mainnet GB ({head}) |",
        "|---|---|---|---|",
    ]
    for key in keys:
        if key in ("total", "ratio"):
            continue
        item = item_of(key)
        per = " / ".join(
            f"{r['parts'].get(key, 0) / max(r['counts'][item], 1):.1f}" for r in results
        ) if item else "layout"  # fmt: skip
        at = " / ".join(f"{p[key] / 1e9:,.1f}" for p in projections)
        lines.append(f"| {key} | {item or '—'} | {per} | {at} |")
    total = " / ".join(f"{p['total'] / 1e9:,.0f}" for p in projections)
    ratio = " / ".join(f"{p['ratio']:.3f}" for p in projections)
    lines.append(f"| **total** | | | **{total}** |")
    lines.append(f"| **store / blk** ({MAINNET['blk_bytes'] / 1e9:,.0f} GB) | | | **{ratio}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blocks_dirs", nargs="*", type=Path)
    parser.add_argument("--work", type=Path, default=Path("bench-output/store-size"))
    parser.add_argument("--keep-scripts", choices=("no", "yes", "both"), default="both")
    parser.add_argument("--experiments", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--same-results",
        type=Path,
        metavar="WORLD",
        help="instead: cluster and investigate this simulated world on a default and a "
        "--keep-scripts store and say whether the results are the same",
    )
    args = parser.parse_args(argv)
    if args.same_results is not None:
        print(same_results(args.same_results, args.work / "same-results",
                           ("conservative_learned", "conservative")))  # fmt: skip
        return 0
    if not args.blocks_dirs:
        parser.error("give at least one BLOCKS_DIR (or --same-results WORLD)")
    modes = {"no": [False], "yes": [True], "both": [False, True]}[args.keep_scripts]
    results = []
    for k, blocks_dir in enumerate(args.blocks_dirs):
        for keep in modes:
            data_dir = args.work / f"{k}-{'keep' if keep else 'slim'}"
            r = ingest(blocks_dir.resolve(), data_dir, keep)
            print(f"\n## {blocks_dir} ({'--keep-scripts' if keep else 'default'})")
            print(f"{r['n_txs']:,} txs, ingest {r['seconds']} s")
            print(per_tx_table(r))
            top = sorted(r["columns"].items(), key=lambda kv: -kv[1])[:12]
            print("largest parquet columns (B/tx): " + ", ".join(
                f"{c} {b / r['n_txs']:.1f}" for c, b in top
            ))  # fmt: skip
            if args.experiments and not keep:
                r["experiments"] = experiments(data_dir)
                for name, sizes in r["experiments"].items():
                    total = sum(sizes.values())
                    print(f"  {name}: tables {total / r['n_txs']:.1f} B/tx  {sizes}")
            results.append(r)
    for keep in modes:
        chosen = [r for r in results if r["keep_scripts"] == keep]
        print(f"\n## mainnet, {'--keep-scripts' if keep else 'default'}")
        print(mainnet_table(chosen))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def same_results(world: Path, work: Path, policies: tuple[str, ...] = ("conservative",)) -> str:
    """Cluster and investigate a simulated world on a default and a `--keep-scripts` store;
    the clusters (every address's cluster), the learned fingerprints and every file of the
    case directory (leads, subpoenas, cash-outs) must be equal. Returns a one-line verdict."""
    import filecmp

    from chainsleuth.cases.investigate import investigate
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.cluster.learned import read_fingerprints
    from chainsleuth.store.store import Store

    cases, clusters = {}, {}
    for keep in (False, True):
        store = work / ("keep" if keep else "slim")
        shutil.rmtree(store, ignore_errors=True)
        ingest_blocks_dir(world / "blocks", store, keep_scripts=keep)
        for policy in policies:
            cluster_store(store, policy, from_scratch=True)
            opened = Store.open(store)
            rows = opened.sql(
                "SELECT address_id, cluster_id FROM clusters ORDER BY address_id"
            ).to_pylist()
            clusters[(keep, policy)] = rows
        tag_world(world, store)
        case = work / f"case-{'keep' if keep else 'slim'}"
        shutil.rmtree(case, ignore_errors=True)
        investigate(store, world / "seeds" / "deposits.csv", case, report=False)
        cases[keep] = case
        n = Store.open(store).counts["txs"]
        clusters[(keep, "fingerprints")] = read_fingerprints(Store.open(store), 0, n).tolist()
    for policy in (*policies, "fingerprints"):
        if clusters[(False, policy)] != clusters[(True, policy)]:
            return f"DIFFERENT: {policy}"
    names = sorted(p.name for p in cases[False].iterdir() if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(cases[False], cases[True], names, shallow=False)
    if mismatch == ["case.json"] and not errors:
        # its provenance differs (when, which data directory, the tags manifest's hash)
        a, b = (
            _without_provenance(json.loads((c / "case.json").read_text())) for c in cases.values()
        )
        if a == b:
            match, mismatch = [*match, "case.json (provenance aside)"], []
    if mismatch or errors:
        return f"DIFFERENT case files: {mismatch + errors}"
    n_addr = len(clusters[(False, policies[0])])
    n_clusters = len({r["cluster_id"] for r in clusters[(False, policies[0])]})
    return (
        f"same: {n_addr:,} addresses in {n_clusters:,} clusters ({', '.join(policies)}), "
        f"{len(clusters[(False, 'fingerprints')]):,} tx fingerprints, case files {match}"
    )


_PROVENANCE = ("created", "data_dir", "tags_manifest_sha256")


def _without_provenance(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k not in _PROVENANCE}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value
