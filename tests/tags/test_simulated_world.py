"""Attribution on a simulated world: the world's TagPacks import cleanly, exchange clusters
grow from a handful of tagged addresses to most of their wallet, and an exchange address that is
deliberately also tagged as a darknet market puts its cluster in conflict."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from chainsleuth.tags import ImportReport, add_tag, attribution_of_cluster, entity, list_tags


@pytest.fixture(scope="module")
def imported(
    small_world_dir: Path, small_tagged: tuple[Path, ImportReport]
) -> tuple[Path, Path, object]:
    """(world, store, import report): the session's small world, clustered (conservative) and
    given its TagPacks (tests/conftest.py); read-only."""
    store, report = small_tagged
    return small_world_dir, store, report


def _truth(world_dir: Path) -> dict[str, str]:
    with open(world_dir / "truth" / "addresses.csv", newline="") as f:
        return {r["address"]: r["entity"] for r in csv.DictReader(f)}


def test_the_world_s_tagpacks_import_without_problems(imported) -> None:  # type: ignore[no-untyped-def]
    world_dir, _, report = imported
    n_tags = sum(
        len(yaml.safe_load(p.read_text())["tags"])
        for p in sorted((world_dir / "tags").glob("*.yaml"))
    )
    assert report.imported == n_tags and report.invalid == 0 and report.errors() == []


def test_exchange_clusters_grow_from_their_tagged_addresses(imported) -> None:  # type: ignore[no-untyped-def]
    world_dir, store, _ = imported
    truth = _truth(world_dir)
    exchanges = sorted({t["actor"] for t in list_tags(store, category="exchange")})
    assert exchanges
    for name in exchanges:
        info = entity(store, name)
        assert info["totals"]["n_addresses"] > info["n_tagged_addresses"]
        members = [
            r["address"] for c in info["clusters"] for r in _cluster_members(store, c["cluster_id"])
        ]
        owners = Counter(truth.get(a) for a in members)
        assert owners[name] / len(members) >= 0.95, (name, owners.most_common(3))


def _cluster_members(store: Path, cluster_id: int) -> list[dict[str, object]]:
    from chainsleuth.store.store import Store

    rows: list[dict[str, object]] = (
        Store.open(store)
        .sql("SELECT address FROM clusters WHERE cluster_id = ?", [cluster_id])
        .to_pylist()
    )
    return rows


def test_an_exchange_address_also_tagged_as_a_darknet_market_is_a_conflict(
    imported,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"  # a private copy: the test adds a tag
    shutil.copytree(imported[1], store)
    exchange_tags = list_tags(store, category="exchange")
    before = [attribution_of_cluster(store, t["address"]) for t in exchange_tags]
    assert not any(c["conflict"] for c in before if c)
    target = exchange_tags[0]
    market = add_tag(
        store,
        target["address"],
        label="DarkMarket wallet",
        category="market",
        actor="darkmarket",
        abuse="drugs",
        source="informant report 7",
        confidence="web_crawl",
    )
    cluster = attribution_of_cluster(store, target["address"])
    assert cluster is not None and cluster["conflict"]
    assert {"different_actors", "incompatible_categories"} <= set(cluster["conflict_kinds"])
    assert {target["tag_id"], market["tag_id"]} <= set(cluster["conflicting_tags"])
    assert cluster["actor"] == target["actor"]  # the better-supported actor is shown, flagged
    contested = entity(store, "darkmarket")["contested_clusters"]
    assert [c["cluster_id"] for c in contested] == [cluster["cluster_id"]]
