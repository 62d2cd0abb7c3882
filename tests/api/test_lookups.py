"""Routes the other API tests leave to the schema fuzzing alone: blocks, entities, exposure;
and the bounded-work answers (time budget, too large, a missing stage) in the error model."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainsleuth.api.app import create_app
from chainsleuth.store.store import Store
from tests.api.conftest import API, error_model


@pytest.fixture(scope="module")
def store(api_data: Path) -> Iterator[Store]:
    opened = Store.open(api_data)
    yield opened
    opened.close()


def test_block_by_height_and_by_hash_pages_its_txids(client: TestClient, store: Store) -> None:
    row = store.sql(
        "SELECT height, hash, tx_count FROM blocks WHERE tx_count > 3 ORDER BY height LIMIT 1"
    ).to_pylist()[0]
    txids = (
        store.sql(
            "SELECT txid FROM txs WHERE block_height = ? ORDER BY index_in_block", [row["height"]]
        )
        .column(0)
        .to_pylist()
    )
    assert len(txids) == row["tx_count"]
    by_hash = client.get(f"{API}/blocks/{row['hash']}?limit=1000").json()
    assert by_hash["height"] == row["height"] and by_hash["txids"] == txids
    assert by_hash["next_cursor"] is None
    pages, cursor = [], None
    while True:
        url = f"{API}/blocks/{row['height']}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        assert body["hash"] == row["hash"]
        pages += body["txids"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == txids  # block order, every tx
    r = client.get(f"{API}/blocks/{10**8}")
    assert r.status_code == 404 and error_model(r.json())
    assert r.json()["error"]["field"] == "height_or_hash"


def test_entity_and_every_tagged_address_through_tags(client: TestClient, api_data: Path) -> None:
    from chainsleuth.tags.query import entity

    name = next(
        i["id"]
        for i in client.get(f"{API}/search", params={"q": "arcad"}).json()["items"]
        if i["kind"] == "entity"
    )
    body = client.get(f"{API}/entities/{name}").json()
    expected = entity(api_data, name)
    for key in ("actor", "n_tags", "n_tagged_addresses", "labels", "tagpacks"):
        assert body[key] == expected[key], key
    assert [c["cluster_id"] for c in body["clusters"]] == [
        c["cluster_id"] for c in expected["clusters"]
    ]
    # the entity shows its first tagged addresses; /tags?actor= pages through every one
    seen: set[str] = set()
    cursor = None
    while True:
        url = f"{API}/tags?actor={body['actor']}&limit=100" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = client.get(url).json()
        seen |= {t["address"] for t in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == body["n_tagged_addresses"]
    assert {a["address"] for a in body["tagged_addresses"]} <= seen
    r = client.get(f"{API}/entities/no-such-actor-anywhere")
    assert r.status_code == 404 and error_model(r.json()) and r.json()["error"]["field"] == "name"


def test_exposure_is_the_library_answer(client: TestClient, api_data: Path, store: Store) -> None:
    from chainsleuth.trace.exposure import exposure

    address = (
        store.sql(
            "SELECT address FROM addresses WHERE n_txs BETWEEN 3 AND 20 ORDER BY n_txs DESC, "
            "address LIMIT 1"
        )
        .column(0)[0]
        .as_py()
    )
    body = client.get(f"{API}/exposure", params={"subject": address, "max_hops": 2}).json()
    expected = exposure(api_data, address, max_hops=2)
    assert body["received"] == expected["received"] and body["sent"] == expected["sent"]
    assert body["max_hops"] == 2
    r = client.get(f"{API}/exposure", params={"subject": address, "max_hops": 11})
    assert r.status_code == 422 and r.json()["error"]["field"] == "max_hops"
    # the global time filter: from/to as heights or dates, as the library's window
    from chainsleuth.trace.rows import window_heights

    tip = int(store.graph.tx_height.max())
    day = (
        dt.datetime.fromtimestamp(int(store.graph.block_time[tip // 2]), dt.UTC).date().isoformat()
    )
    for window in ({"from": str(tip // 2)}, {"to": str(tip // 2)}, {"from": day}):
        body = client.get(f"{API}/exposure", params={"subject": address, **window}).json()
        lo, hi = window_heights(store, window.get("from"), window.get("to"))
        expected = exposure(api_data, address, min_height=lo, max_height=hi)
        assert (body["min_height"], body["max_height"]) == (lo, hi)
        assert body["received"] == expected["received"] and body["sent"] == expected["sent"]
    whole = client.get(f"{API}/exposure", params={"subject": address}).json()
    early = client.get(f"{API}/exposure", params={"subject": address, "to": str(tip // 2)}).json()
    late = client.get(f"{API}/exposure", params={"subject": address, "from": str(tip // 2 + 1)})
    # received splits at the window's edge: every receiving tx is on one side of it
    assert (
        early["received"]["total"] + late.json()["received"]["total"] == whole["received"]["total"]
    )
    r = client.get(f"{API}/exposure", params={"subject": address, "from": "2009-13-45"})
    assert r.status_code == 400 and error_model(r.json()) and r.json()["error"]["field"] == "from"


def test_over_the_time_budget_is_a_422_not_a_timeout(api_data: Path, store: Store) -> None:
    busy = store.sql("SELECT address FROM addresses ORDER BY n_txs DESC LIMIT 1").column(0)
    with TestClient(create_app(api_data, rate=0, time_budget_s=0.001)) as c:
        # a small trace (its thread runs on after the answer, until the client closes)
        r = c.get(f"{API}/trace", params={"target": busy[0].as_py(), "max_hops": 2})
        assert r.status_code == 422 and error_model(r.json()), r.text
        assert r.json()["error"]["code"] == "budget_exceeded"
        assert "max_hops" in r.json()["error"]["message"]  # says what to lower


def test_a_trace_with_too_many_rows_is_refused(
    client: TestClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chainsleuth.api import services

    busy = store.sql("SELECT address FROM addresses ORDER BY n_txs DESC LIMIT 1").column(0)
    target = busy[0].as_py()
    whole = client.get(f"{API}/trace", params={"target": target, "max_hops": 3}).json()
    assert whole["total"] > 2
    monkeypatch.setattr(services, "MAX_TRACE_ROWS", whole["total"] - 1)
    r = client.get(f"{API}/trace", params={"target": target, "max_hops": 3})
    assert r.status_code == 422 and error_model(r.json())
    assert r.json()["error"]["code"] == "too_large" and r.json()["error"]["field"] == "max_hops"


def test_a_missing_stage_is_a_409_naming_its_command(
    api_data: Path, tmp_path: Path, store: Store
) -> None:
    bare = tmp_path / "data"
    shutil.copytree(api_data, bare, ignore=shutil.ignore_patterns("clusters", "tags", "api"))
    address = store.sql("SELECT address FROM addresses LIMIT 1").column(0)[0].as_py()
    with TestClient(create_app(bare, rate=0)) as c:
        assert c.get(f"{API}/addresses/{address}").json()["cluster_id"] is None
        for url in (f"{API}/clusters/0", f"{API}/tags?label=x", f"{API}/exposure?subject=0"):
            r = c.get(url)
            assert r.status_code == 409 and error_model(r.json()), (url, r.text)
            assert r.json()["error"]["code"] == "no_data"
            assert "chainsleuth" in r.json()["error"]["message"]


def test_coinjoin_flag_of_an_address_and_its_wallet(client: TestClient, store: Store) -> None:
    row = store.sql(
        "WITH cj AS (SELECT txid, rule FROM cluster_coinjoins), "
        "touch AS (SELECT o.txid, o.address FROM outputs o JOIN cj USING (txid) "
        "  UNION SELECT i.txid, i.address FROM inputs i JOIN cj USING (txid)) "
        "SELECT t.address, count(DISTINCT t.txid) AS n, list(DISTINCT cj.rule) AS rules "
        "FROM touch t JOIN cj USING (txid) WHERE t.address IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).to_pylist()[0]
    body = client.get(f"{API}/addresses/{row['address']}").json()
    assert body["coinjoin_txs"] == row["n"] > 0
    assert body["mixers"] == sorted(set(row["rules"]))
    wallet = client.get(f"{API}/clusters/{body['cluster_id']}").json()
    assert wallet["coinjoin_txs"] >= row["n"] and set(body["mixers"]) <= set(wallet["mixers"])
    plain = store.sql(
        "SELECT address FROM addresses WHERE address NOT IN (SELECT o.address FROM outputs o "
        "JOIN cluster_coinjoins USING (txid) WHERE o.address IS NOT NULL UNION SELECT i.address "
        "FROM inputs i JOIN cluster_coinjoins USING (txid) WHERE i.address IS NOT NULL) LIMIT 1"
    )
    body = client.get(f"{API}/addresses/{plain.column(0)[0].as_py()}").json()
    assert body["coinjoin_txs"] == 0 and body["mixers"] == []


def test_cluster_rules_count_every_merge_by_rule(client: TestClient, store: Store) -> None:
    rows = store.sql(
        "WITH m AS (SELECT cluster_id, CASE WHEN change_rules IS NULL THEN rule "
        "  ELSE 'change:' || change_rules END AS k FROM cluster_merges), "
        "big AS (SELECT cluster_id FROM m GROUP BY 1 "
        "  ORDER BY count(DISTINCT k) DESC, count(*) DESC, 1 LIMIT 3) "
        "SELECT cluster_id, k, count(*) AS n FROM m "
        "WHERE cluster_id IN (SELECT cluster_id FROM big) GROUP BY 1, 2"
    ).to_pylist()
    expected: dict[int, dict[str, int]] = {}
    for r in rows:
        expected.setdefault(r["cluster_id"], {})[r["k"]] = r["n"]
    assert any(len(v) > 1 for v in expected.values())  # more than one rule built them
    for cid, counts in expected.items():
        assert client.get(f"{API}/clusters/{cid}").json()["rules"] == counts
