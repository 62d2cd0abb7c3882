"""The tags stage in the store: `chainsleuth sql` views, the manifest, versions on disk."""

from __future__ import annotations

import json
from pathlib import Path

from chainsleuth.store.store import Store
from chainsleuth.tags import add_tag, import_tagpacks
from chainsleuth.tags.storage import TAGS_VIEW_COLUMNS
from tests.tags.conftest import store_addresses, write_clusters, write_pack

REQUIRED = ("address", "label", "category", "actor", "confidence", "source", "tagpack")
PROVENANCE = (
    "created_by",
    "created_at",
    "lastmod",
    "is_public",
    "context",
    "network",
    "currency",
    "origin",
    "address_id",
    "tag_id",
)
ELSEWHERE = "1Archive1n2C579dMsAu3iC6tWzuQJz8dN"  # not in the first 600 blocks


def _pack(store_dir: Path, addresses: list[str]) -> Path:
    tags = "".join(f"- address: {a}\n" for a in addresses)
    return write_pack(
        store_dir.parent / "packs",
        "p.yaml",
        "title: t\ncreator: GraphSense-like\nlabel: L\nsource: https://s\ncurrency: BTC\n"
        f"category: exchange\nconfidence: service_data\nactor: acme\ntags:\n{tags}",
    )


def test_the_tags_view_has_the_public_columns_and_provenance(store_dir: Path) -> None:
    ids = store_addresses(store_dir)
    import_tagpacks(store_dir, [_pack(store_dir, [ids[9], ELSEWHERE])])
    add_tag(store_dir, ids[555], label="mine", source="case", created_by="alice")
    table = Store.open(store_dir).sql("SELECT * FROM tags ORDER BY address")
    assert table.column_names[: len(REQUIRED)] == list(REQUIRED)
    assert set(PROVENANCE) <= set(table.column_names)
    assert tuple(table.column_names) == TAGS_VIEW_COLUMNS
    rows = {r["address"]: r for r in table.to_pylist()}
    assert rows[ids[9]]["address_id"] == 9 and rows[ELSEWHERE]["address_id"] is None
    assert rows[ids[9]]["origin"] == "tagpack" and rows[ids[555]]["origin"] == "analyst"
    assert rows[ids[555]]["created_by"] == "alice" and rows[ids[9]]["network"] == "main"


def test_actors_tagpacks_and_cluster_tags_are_views_too(store_dir: Path) -> None:
    ids = store_addresses(store_dir)
    write_clusters(store_dir, [[9, 555]])
    import_tagpacks(store_dir, [_pack(store_dir, [ids[9], ids[555]])])
    store = Store.open(store_dir)
    (cluster,) = store.sql("SELECT * FROM cluster_tags").to_pylist()
    assert (cluster["cluster_id"], cluster["actor"], cluster["n_tagged_addresses"]) == (
        9,
        "acme",
        2,
    )
    assert store.sql("SELECT tagpack, n_tags FROM tagpacks").to_pylist() == [
        {"tagpack": "p", "n_tags": 2}
    ]
    assert store.sql("SELECT count(*) AS n FROM actors").to_pylist() == [{"n": 0}]
    joined = store.sql(
        "SELECT t.address, c.cluster_id FROM tags t JOIN cluster_tags c "
        "ON list_contains(c.evidence, t.tag_id) ORDER BY 1"
    ).to_pylist()
    assert [r["cluster_id"] for r in joined] == [9, 9]


def test_empty_stage_still_publishes_every_view(store_dir: Path) -> None:
    from chainsleuth.tags.storage import read_manifest, write_manifest

    write_manifest(store_dir, read_manifest(store_dir))
    store = Store.open(store_dir)
    for view in ("tags", "actors", "tagpacks", "cluster_tags"):
        assert store.sql(f"SELECT count(*) AS n FROM {view}").to_pylist() == [{"n": 0}]


def test_the_manifest_is_versioned_with_a_history_of_files(store_dir: Path) -> None:
    ids = store_addresses(store_dir)
    import_tagpacks(store_dir, [_pack(store_dir, [ids[9]])])
    import_tagpacks(store_dir, [_pack(store_dir, [ids[9], ids[555]])])
    manifest = json.loads((store_dir / "tags" / "manifest.json").read_text())
    assert manifest["version"] == 2
    first, second = manifest["history"]
    assert first["packs"]["p"] != second["packs"]["p"]
    for entry in (first, second):
        assert (store_dir / "tags" / entry["packs"]["p"]).exists()
    assert set(manifest["views"]) >= {"tags", "actors", "cluster_tags", "tagpacks"}
    assert not list((store_dir / "tags").glob("*.tmp"))
