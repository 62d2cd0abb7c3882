"""`make demo`: simulate the Welcome-to-Video world, ingest it, cluster it, show what is there.

Each stage that exists adds its step here; it must run on a fresh clone in about two minutes.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
from rich.console import Console


def _truth_scores(world: Path, store_dir: Path) -> tuple[float, float, float, float] | None:
    """Pairwise precision/recall of the default clustering and of multi-input alone."""
    from chainsleuth.cluster.engine import Clusters, cluster_store
    from chainsleuth.cluster.evaluate import score
    from chainsleuth.store.store import Store

    store = Store.open(store_dir)
    ids = {
        r["address"]: r["address_id"]
        for r in store.sql("SELECT address, address_id FROM clusters").to_pylist()
    }
    with open(world / "truth" / "addresses.csv", newline="") as f:
        rows = [
            (ids[r["address"]], r["wallet_id"]) for r in csv.DictReader(f) if r["address"] in ids
        ]
    if not rows:
        return None
    address_ids = np.array([a for a, _ in rows])
    _, owners = np.unique([w for _, w in rows], return_inverse=True)
    default = score(np.asarray(Clusters(store_dir).cluster_of)[address_ids], owners)
    scratch = store_dir.parent / "mi-only"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(store_dir, scratch)
    cluster_store(scratch, "multi_input", from_scratch=True)
    mi = score(np.asarray(Clusters(scratch).cluster_of)[address_ids], owners)
    shutil.rmtree(scratch, ignore_errors=True)
    return (
        default.pairwise_precision,
        default.bcubed_recall,
        mi.pairwise_precision,
        mi.bcubed_recall,
    )


def run_demo(out: Path, console: Console) -> None:
    """Run every stage that exists on the small simulated world under `out`."""
    from chainsleuth.cluster.engine import cluster_store
    from chainsleuth.simulate import simulate
    from chainsleuth.store.ingest import ingest_blocks_dir
    from chainsleuth.store.store import Store

    out = Path(out)
    started = time.perf_counter()
    shutil.rmtree(out / "store", ignore_errors=True)
    console.print(f"[bold]1. simulate[/] the small Welcome-to-Video world into {out}/world")
    world = simulate(out / "world", seed=1, scale="small", xor=False)
    console.print(f"   {world.n_txs:,} transactions in {world.n_blocks:,} blocks")

    console.print(f"[bold]2. ingest[/] {out}/world/blocks into {out}/store")
    report = ingest_blocks_dir(out / "world" / "blocks", out / "store")
    console.print(
        f"   {report.n_txs:,} txs, {report.n_outputs:,} outputs, {report.n_new_addresses:,} "
        f"addresses in {report.seconds:.1f} s; {len(report.stale_blocks)} stale block(s) "
        "left out"
    )

    console.print("[bold]3. cluster[/] addresses into wallets (policy: conservative)")
    clustering = cluster_store(out / "store", "conservative")
    console.print(
        f"   {clustering.addresses:,} addresses -> {clustering.clusters:,} clusters "
        f"(largest {clustering.largest_cluster:,}); {clustering.coinjoins:,} CoinJoins not "
        f"merged; {clustering.quarantined:,} merges quarantined"
    )
    scores = _truth_scores(out / "world", out / "store")
    if scores is not None:
        console.print(
            f"   against the world's ground truth: pairwise precision {scores[0]:.4f}, "
            f"B-cubed recall {scores[1]:.3f} (multi-input alone: {scores[2]:.4f}, "
            f"{scores[3]:.3f})"
        )

    from chainsleuth.tags.demo import run_tags_demo

    console.print("[bold]4. attribute[/] clusters with the world's TagPack")
    run_tags_demo(out / "world", out / "store", console)

    from chainsleuth.cases.demo import run_case_demo

    console.print(
        "[bold]5. investigate[/] the service's seized deposit addresses "
        f"({out}/world/seeds/deposits.csv)"
    )
    run_case_demo(out / "world", out / "store", out / "case", console)

    store = Store.open(out / "store")
    top = store.sql(
        "SELECT cluster_id, any_value(cluster_size) AS size, min(address) AS example "
        "FROM clusters GROUP BY cluster_id ORDER BY size DESC LIMIT 5"
    ).to_pylist()
    console.print("[bold]6. largest clusters[/]")
    for row in top:
        console.print(
            f"   cluster {row['cluster_id']:>7}  {row['size']:>5,} addresses  e.g. {row['example']}"
        )
    data = f"{out}/store"
    console.print(
        f"\nDone in {time.perf_counter() - started:.0f} s. The case: {out}/case/report.html "
        f"(open it in a browser; report.pdf to print), leads.csv, subpoenas.csv, cashouts.csv, "
        f"case.json. Try:\n"
        f"  .venv/bin/chainsleuth --data {data} status\n"
        f"  .venv/bin/chainsleuth --data {data} cluster-of {top[0]['example']}\n"
        f'  .venv/bin/chainsleuth --data {data} sql "SELECT * FROM cluster_coinjoins LIMIT 5"'
    )
