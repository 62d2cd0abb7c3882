"""The attribution step of `make demo`: from a handful of tagged addresses to whole wallets.

`run_tags_demo(world, store_dir, console)` imports the simulated world's TagPacks
(`world/tags/*.yaml`: a few public tags per exchange), lets the clusters carry each tag to its
whole cluster, and prints, per exchange, how many addresses were tagged, how many the attributed
clusters cover, and how many the exchange really has (the world's truth). It then plays an
analyst who tags one exchange address as a darknet market, to show the conflict being flagged
rather than resolved. `chainsleuth.demo.run_demo` calls it after clustering.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["run_tags_demo"]


def run_tags_demo(world: Path, store_dir: Path, console: Console) -> None:
    """Import the world's tags into the store at `store_dir` and show the exchanges grow."""
    from chainsleuth.tags.imports import add_tag, import_tagpacks
    from chainsleuth.tags.query import TagLookup, entity

    world, store_dir = Path(world), Path(store_dir)
    report = import_tagpacks(store_dir, [world / "tags"])
    console.print(
        f"   {report.imported:,} tags from {len(report.packs)} TagPack(s) in {report.seconds:.1f} s"
    )
    truth: Counter[str] = Counter()
    truth_path = world / "truth" / "addresses.csv"
    if truth_path.exists():
        with open(truth_path, newline="") as f:
            for row in csv.DictReader(f):
                if row["wallet_kind"] == "exchange":
                    truth[row["entity"]] += 1
    table = Table(
        "exchange",
        "tagged addresses",
        "clusters",
        "addresses in them",
        "wallet (truth)",
        "covered",
        title="Exchanges: from tagged addresses to wallets",
        title_justify="left",
    )
    with TagLookup.open(store_dir) as lookup:
        actors = [
            r["actor"]
            for r in lookup.query(
                "SELECT DISTINCT actor FROM tags WHERE category = 'exchange' AND actor IS NOT NULL "
                "ORDER BY actor"
            )
        ]
    for actor in actors:
        info = entity(store_dir, actor)
        covered = (info["totals"] or {}).get("n_addresses", 0)
        real = truth.get(actor, 0)
        table.add_row(
            actor,
            f"{info['n_tagged_addresses']:,}",
            f"{len(info['clusters']):,}",
            f"{covered:,}",
            f"{real:,}" if real else "?",
            f"{covered / real:.0%}" if real else "",
        )
    console.print(table)
    if not actors:
        return
    # An analyst's mistaken (or deliberate) tag: one exchange address called a darknet market.
    victim = entity(store_dir, actors[0])["tagged_addresses"][0]["address"]
    add_tag(
        store_dir,
        victim,
        label="Darknet market wallet (unverified tip)",
        category="market",
        actor="darkmarket",
        source="demo: anonymous tip",
        confidence="web_crawl",
        created_by="demo",
    )
    with TagLookup.open(store_dir) as lookup:
        cluster = lookup.address(victim)["cluster"]
    if cluster is not None and cluster["conflict"]:
        console.print(
            f"   tagged {victim} as a darknet market: cluster {cluster['cluster_id']} is now "
            f"[red]in conflict[/] ({'; '.join(cluster['conflicts'])}); "
            f"try: chainsleuth --data {store_dir} tags list --cluster {cluster['cluster_id']}"
        )
