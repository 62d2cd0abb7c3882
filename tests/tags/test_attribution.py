"""Tags on clusters: evidence, aggregate confidence, conflicts, recomputation, entities.

Runs on a copy of the real 600-block mainnet store with a hand-made `address_cluster.npy`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.tags import (
    TagError,
    TagLookup,
    add_tag,
    attribution_of_cluster,
    entity,
    import_tagpacks,
    list_tags,
)
from chainsleuth.tags.attribution import Claim, address_actor_codes, conflict_between
from chainsleuth.tags.storage import read_manifest
from chainsleuth.tags.taxonomy import Taxonomy
from tests.tags.conftest import store_addresses, write_clusters, write_pack

TAX = Taxonomy.default()


def _claim(
    actor: str | None = None, category: str | None = None, abuse: str | None = None
) -> Claim:
    return Claim.of(TAX, actor, category, abuse, ["t"])


# --------------------------------------------------------------------------- the rules
@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [
        (_claim("binance", "exchange"), _claim("kraken", "exchange"), "different_actors"),
        (_claim("binance"), _claim("kraken"), "different_actors"),
        (_claim(None, "exchange"), _claim(None, "market"), "incompatible_categories"),
        (_claim("hydra", "market"), _claim("kraken"), "different_actors"),
        (_claim(None, "exchange"), _claim(None, "miner"), "incompatible_categories"),
        (_claim(None, "exchange"), _claim(None, "coinjoin"), "incompatible_categories"),
        (_claim("binance", "exchange"), _claim(None, None, "scam"), "abuse_on_vasp"),
        (_claim(None, "wallet_service"), _claim(None, None, "ransomware"), "abuse_on_vasp"),
        (_claim(None, "exchange"), _claim(None, "scam"), "abuse_on_vasp"),  # abuse as category
        (_claim(None, "exchange"), _claim("lazarus", None, "sanction"), "abuse_on_vasp"),
    ],
)
def test_conflicting_claims(a: Claim, b: Claim, kind: str) -> None:
    assert conflict_between(a, b, TAX, {}) == [kind]
    assert conflict_between(b, a, TAX, {}) == [kind]


def test_one_pair_may_conflict_in_several_ways() -> None:
    exchange, market = _claim("binance", "exchange"), _claim("hydra", "market", "drugs")
    assert conflict_between(exchange, market, TAX, {}) == [
        "different_actors",
        "incompatible_categories",
        "abuse_on_vasp",
    ]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (_claim("binance", "exchange"), _claim("binance", "exchange")),
        (_claim(None, "service"), _claim(None, "exchange")),  # one is narrower than the other
        (_claim(None, "exchange"), _claim(None, "hot_wallet")),  # a usage attribute
        (_claim(None, "user"), _claim(None, "miner")),
        (_claim(None, None, "ransomware"), _claim(None, None, "sextortion")),
        (_claim("hydra", "market"), _claim(None, None, "drugs")),  # a market is no VASP
        (_claim("binance", "exchange"), _claim("binance", None, "service_hack")),  # same actor
        (_claim(None, "exchange"), _claim(None, "unknown")),
    ],
)
def test_compatible_claims(a: Claim, b: Claim) -> None:
    assert conflict_between(a, b, TAX, {}) == []


def test_an_actor_s_actorpack_categories_make_it_a_vasp() -> None:
    assert conflict_between(_claim("acme"), _claim(None, None, "scam"), TAX, {}) == []
    assert conflict_between(
        _claim("acme"), _claim(None, None, "scam"), TAX, {"acme": ["exchange"]}
    ) == ["abuse_on_vasp"]


# -------------------------------------------------------------------------- on a store
@pytest.fixture
def ids(store_dir: Path) -> dict[int, str]:
    return store_addresses(store_dir)


def test_without_clusters_every_tagged_address_is_its_own_cluster(
    store_dir: Path, ids: dict[int, str]
) -> None:
    add_tag(store_dir, ids[9], label="A", source="s", actor="a")
    add_tag(store_dir, ids[555], label="B", source="s", actor="b")
    with TagLookup.open(store_dir) as lookup:
        rows = lookup.query("SELECT cluster_id, actor, n_addresses FROM cluster_tags ORDER BY 1")
    assert rows == [
        {"cluster_id": 9, "actor": "a", "n_addresses": 1},
        {"cluster_id": 555, "actor": "b", "n_addresses": 1},
    ]


def test_a_cluster_takes_the_tags_of_its_addresses_with_their_evidence(
    store_dir: Path, ids: dict[int, str]
) -> None:
    write_clusters(store_dir, [[9, 555, 533, 100]])
    t1 = add_tag(store_dir, ids[555], label="X hot", source="s1", actor="x", category="exchange")
    t2 = add_tag(
        store_dir, ids[533], label="X deposit", source="s2", actor="x", category="exchange"
    )
    c = attribution_of_cluster(store_dir, 9)
    assert c is not None
    assert (c["actor"], c["category"], c["n_addresses"], c["n_tagged_addresses"]) == (
        "x",
        "exchange",
        4,
        2,
    )
    assert c["evidence"] == sorted([t1["tag_id"], t2["tag_id"]])
    assert c["tagpacks"] == ["analyst"] and not c["conflict"]
    assert attribution_of_cluster(store_dir, ids[100]) == c  # by any of its addresses
    assert {t["tag_id"] for t in list_tags(store_dir, cluster=9)} == set(c["evidence"])


def test_aggregate_confidence_combines_independent_sources(
    store_dir: Path, ids: dict[int, str]
) -> None:
    write_clusters(store_dir, [[9, 555, 533, 557]])
    add_tag(store_dir, ids[555], label="x", source="report A", actor="x", confidence="forensic")
    add_tag(store_dir, ids[533], label="x", source="report B", actor="x", confidence="web_crawl")
    add_tag(store_dir, ids[557], label="x", source="Report B/", actor="x", confidence="forensic")
    c = attribution_of_cluster(store_dir, 9)
    assert c is not None
    # sources A (50) and B (max of 20 and 50: one source, however many tags) combine:
    assert c["confidence"] == round(100 * (1 - (1 - 0.5) * (1 - 0.5)))
    assert math.isclose(c["confidence"], 75)


def test_the_best_supported_actor_is_shown_and_the_conflict_flagged(
    store_dir: Path, ids: dict[int, str]
) -> None:
    write_clusters(store_dir, [[9, 555, 533]])
    a = add_tag(store_dir, ids[555], label="Exchange X", source="s", actor="x", category="exchange",
                confidence="ownership")  # fmt: skip
    b = add_tag(store_dir, ids[533], label="Dark market", source="t", actor="dm", category="market")
    c = attribution_of_cluster(store_dir, 9)
    assert c is not None and c["conflict"]
    assert c["actor"] == "x" and c["actors"] == ["dm", "x"]
    assert c["conflict_kinds"] == ["different_actors", "incompatible_categories"]
    assert c["conflicting_tags"] == sorted([a["tag_id"], b["tag_id"]])
    assert "dm/market (1 tag)" in c["conflicts"][0] and "x/exchange (1 tag)" in c["conflicts"][0]


def test_a_scam_tag_in_an_exchange_cluster_is_a_conflict(
    store_dir: Path, ids: dict[int, str]
) -> None:
    write_clusters(store_dir, [[9, 555]])
    add_tag(store_dir, ids[9], label="Exchange X", source="s", actor="x", category="exchange")
    scam = add_tag(store_dir, ids[555], label="Scam Y", source="t", abuse="scam")
    c = attribution_of_cluster(store_dir, 9)
    assert c is not None and c["conflict"] and c["conflict_kinds"] == ["abuse_on_vasp"]
    assert scam["tag_id"] in c["conflicting_tags"] and c["abuses"] == ["scam"]


def test_agreeing_tags_are_no_conflict(store_dir: Path, ids: dict[int, str]) -> None:
    write_clusters(store_dir, [[9, 555, 533]])
    add_tag(store_dir, ids[9], label="X", source="s", actor="x", category="exchange")
    add_tag(store_dir, ids[555], label="X hot", source="s", actor="x", category="hot_wallet")
    add_tag(store_dir, ids[533], label="X", source="t", category="service")
    c = attribution_of_cluster(store_dir, 9)
    assert c is not None and not c["conflict"] and c["conflicting_tags"] == []


def test_attribution_is_recomputed_when_the_clustering_changes(
    store_dir: Path, ids: dict[int, str]
) -> None:
    add_tag(store_dir, ids[9], label="X", source="s", actor="x")
    add_tag(store_dir, ids[555], label="X", source="s", actor="x")
    write_clusters(store_dir, [[9, 100]], generation=1)
    first = attribution_of_cluster(store_dir, 9)
    assert first is not None and first["n_tagged_addresses"] == 1 and first["n_addresses"] == 2
    write_clusters(store_dir, [[9, 100, 555]], generation=2)
    second = attribution_of_cluster(store_dir, 9)
    assert second is not None and second["n_tagged_addresses"] == 2 and second["n_addresses"] == 3
    assert second["clusters_generation"] == 2
    assert read_manifest(store_dir)["cluster_tags"]["clusters_generation"] == 2
    assert attribution_of_cluster(store_dir, 555) is None  # no longer a cluster of its own


def test_tags_imported_before_the_chain_are_joined_after_ingest(
    tmp_path: Path, nbitcoin_store: Path
) -> None:
    from chainsleuth.store.ingest import ingest_blocks_dir
    from tests.conftest import NBITCOIN

    address = store_addresses(nbitcoin_store)[9]
    data = tmp_path / "data"
    add_tag(data, address, label="early", source="s")
    assert list_tags(data)[0]["address_id"] is None
    ingest_blocks_dir(NBITCOIN, data)
    (tag,) = list_tags(data)
    assert tag["address_id"] == 9
    assert attribution_of_cluster(data, 9) is not None


def test_entity_shows_the_actor_s_clusters_totals_and_activity(
    store_dir: Path, ids: dict[int, str]
) -> None:
    from chainsleuth.store.store import Store

    actors = write_pack(
        store_dir.parent / "actors",
        "a.yaml",
        "title: t\ncreator: c\nlastmod: 2024-01-01\nactors:\n- id: x\n  label: Exchange X\n"
        "  uri: https://x.example\n  categories: [exchange]\n",
    )
    import_tagpacks(store_dir, [actors])
    write_clusters(store_dir, [[9, 555, 100], [533, 557]])
    add_tag(store_dir, ids[555], label="X hot", source="s", actor="x", category="exchange")
    add_tag(store_dir, ids[557], label="X deposit", source="s", actor="x", category="exchange")
    add_tag(store_dir, ids[533], label="Other", source="s", actor="other", confidence="ownership")
    info = entity(store_dir, "Exchange X")  # by label
    assert info["actor"] == "x" and info["label"] == "Exchange X" and info["in_actorpack"]
    assert [c["cluster_id"] for c in info["clusters"]] == [9]
    assert [c["cluster_id"] for c in info["contested_clusters"]] == [533]  # "other" wins there
    assert info["n_tags"] == 2 and info["n_tagged_addresses"] == 2
    expected = (
        Store.open(store_dir)
        .sql(
            "SELECT sum(received) AS received, sum(sent) AS sent, min(first_seen_height) AS lo, "
            "max(last_seen_height) AS hi FROM addresses WHERE address_id IN (9, 555, 100)"
        )
        .to_pylist()[0]
    )
    totals = info["totals"]
    assert totals["n_addresses"] == 3
    assert (totals["received"], totals["sent"]) == (expected["received"], expected["sent"])
    assert totals["balance"] == expected["received"] - expected["sent"]
    assert (totals["first_seen_height"], totals["last_seen_height"]) == (
        expected["lo"],
        expected["hi"],
    )
    assert totals["first_seen_time"].startswith("2009-01-")


def test_entity_of_an_unknown_name_suggests_close_actors(
    store_dir: Path, ids: dict[int, str]
) -> None:
    add_tag(store_dir, ids[9], label="X", source="s", actor="bitmex")
    with pytest.raises(TagError, match="did you mean: bitmex"):
        entity(store_dir, "bitmax")


def test_address_actor_codes_feed_the_clusterer(store_dir: Path, ids: dict[int, str]) -> None:
    add_tag(store_dir, ids[9], label="A", source="s", actor="a")
    add_tag(store_dir, ids[555], label="B", source="s", actor="b")
    add_tag(store_dir, ids[555], label="B2", source="s", actor="c")
    codes, names = address_actor_codes(store_dir)
    assert names == ["a", "b", "c"]
    assert codes.shape == (614,) and codes.dtype == np.int32
    assert (codes[9], codes[555], codes[533]) == (0, -2, -1)


def test_an_address_never_seen_gets_the_one_error_from_the_store_and_the_tags(
    store_dir: Path, ids: dict[int, str]
) -> None:
    from chainsleuth.core.address import encode_address
    from chainsleuth.core.errors import AddressNotSeenError
    from chainsleuth.core.network import MAIN
    from chainsleuth.core.script_types import ScriptType
    from chainsleuth.store.store import Store

    add_tag(store_dir, ids[9], label="A", source="s", actor="a")
    unseen = encode_address(ScriptType.P2WPKH, bytes(20), MAIN)  # no segwit in blocks 0-599
    with pytest.raises(AddressNotSeenError) as from_store:
        Store.open(store_dir).address_id(unseen)
    with pytest.raises(AddressNotSeenError) as from_tags:
        attribution_of_cluster(store_dir, unseen)
    assert str(from_store.value) == str(from_tags.value)
    assert str(from_store.value) == f"address {unseen} has never been seen in the store"
