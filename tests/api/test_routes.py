"""The API's answers on the small simulated world, checked against the store's SQL views and
the library functions the CLI uses (independent computations, not the API's own code)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainsleuth.store.store import Store
from tests.api.conftest import API, error_model


def _all_pages(client: TestClient, url: str, limit: int = 7) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor (checks it ends)."""
    sep = "&" if "?" in url else "?"
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        r = client.get(f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            if body["total"] is not None:
                assert body["total"] == len(items)
            return items
    raise AssertionError("pagination never ended")


@pytest.fixture(scope="module")
def store(api_data: Path) -> Iterator[Store]:
    opened = Store.open(api_data)
    yield opened
    opened.close()  # no DuckDB state left for a later test that forks


@pytest.fixture(scope="module")
def busy(store: Store) -> str:
    """A busy address of a multi-address cluster (many neighbours both ways)."""
    rows = store.sql(
        "SELECT a.address FROM addresses a JOIN clusters c USING (address) "
        "WHERE c.cluster_id IN (SELECT cluster_id FROM clusters GROUP BY 1 HAVING count(*) > 5) "
        "ORDER BY a.n_txs DESC, a.address LIMIT 1"
    )
    return str(rows.column(0)[0].as_py())


def test_address_matches_the_view_and_clustering(
    client: TestClient, store: Store, busy: str
) -> None:
    body = client.get(f"{API}/addresses/{busy}").json()
    row = store.sql(
        "SELECT address, script_type, n_txs, received, sent, balance FROM addresses "
        "WHERE address = ?",
        [busy],
    ).to_pylist()[0]
    for key, value in row.items():
        assert body[key] == value, key
    cluster = store.sql("SELECT cluster_id FROM clusters WHERE address = ?", [busy])
    assert body["cluster_id"] == cluster.column(0)[0].as_py()


def test_neighbors_out_page_through_every_neighbour(
    client: TestClient, store: Store, busy: str
) -> None:
    items = _all_pages(client, f"{API}/addresses/{busy}/neighbors?direction=out")
    expected = {
        r["address"]: (r["v"], r["n"])
        for r in store.sql(
            "WITH t AS (SELECT DISTINCT txid FROM inputs WHERE address = $1) "
            "SELECT o.address, sum(o.value)::BIGINT AS v, count(DISTINCT o.txid) AS n "
            "FROM outputs o JOIN t USING (txid) "
            "WHERE o.address IS NOT NULL AND o.address <> $1 GROUP BY o.address",
            [busy],
        ).to_pylist()
    }
    got = {e["target"].removeprefix("address:"): (e["value"], e["n_txs"]) for e in items}
    assert len(expected) > 7  # more than one page
    assert got == expected
    values = [e["value"] for e in items]
    assert values == sorted(values, reverse=True)  # largest first, across pages
    assert all(e["source"] == f"address:{busy}" for e in items)


def test_neighbors_in_with_a_time_window(client: TestClient, store: Store, busy: str) -> None:
    lo, hi = 150, 300
    items = _all_pages(
        client, f"{API}/addresses/{busy}/neighbors?direction=in&from={lo}&to={hi}", limit=50
    )
    expected = {
        r["address"]: (r["v"], r["n"])
        for r in store.sql(
            "WITH r AS (SELECT txid, sum(value) AS got FROM outputs WHERE address = $1 "
            "  AND block_height BETWEEN $2 AND $3 GROUP BY txid), "
            "s AS (SELECT DISTINCT txid, address FROM inputs "
            "  WHERE address IS NOT NULL AND address <> $1) "
            "SELECT s.address, sum(r.got)::BIGINT AS v, count(*) AS n "
            "FROM s JOIN r USING (txid) GROUP BY s.address",
            [busy, lo, hi],
        ).to_pylist()
    }
    got = {e["source"].removeprefix("address:"): (e["value"], e["n_txs"]) for e in items}
    assert expected and got == expected
    assert all(lo <= e["first_height"] <= e["last_height"] <= hi for e in items)


def test_cluster_neighbors_and_relation_agree(client: TestClient, store: Store, busy: str) -> None:
    cid = client.get(f"{API}/addresses/{busy}").json()["cluster_id"]
    items = _all_pages(client, f"{API}/clusters/{cid}/neighbors?direction=out", limit=25)
    expected = {
        r["cluster_id"]: (r["v"], r["n"])
        for r in store.sql(
            "WITH t AS (SELECT DISTINCT i.txid FROM inputs i JOIN clusters c USING (address) "
            "  WHERE c.cluster_id = $1) "
            "SELECT c.cluster_id, sum(o.value)::BIGINT AS v, count(DISTINCT o.txid) AS n "
            "FROM outputs o JOIN t USING (txid) JOIN clusters c ON c.address = o.address "
            "WHERE c.cluster_id <> $1 GROUP BY c.cluster_id",
            [cid],
        ).to_pylist()
    }
    got = {int(e["target"].removeprefix("cluster:")): (e["value"], e["n_txs"]) for e in items}
    assert got == expected
    top = items[0]
    txs = _all_pages(
        client, f"{API}/graph/relation?source={top['source']}&target={top['target']}", limit=5
    )
    assert len(txs) == top["n_txs"]
    assert sum(t["value"] for t in txs) == top["value"]
    assert [t["height"] for t in txs] == sorted(t["height"] for t in txs)
    assert all(t["usd"] is not None and t["usd"] > 0 for t in txs)  # shipped closes cover it


def test_expand_a_tx_both_sides(client: TestClient, store: Store) -> None:
    txid = (
        store.sql(
            "SELECT txid FROM txs WHERE NOT is_coinbase AND n_inputs > 1 AND n_outputs > 1 "
            "ORDER BY tx_id LIMIT 1"
        )
        .column(0)[0]
        .as_py()
    )
    tx = client.get(f"{API}/txs/{txid}").json()
    outs = client.get(f"{API}/graph/expand?node=tx:{txid}&direction=out").json()
    ins = client.get(f"{API}/graph/expand?node=tx:{txid}&direction=in").json()
    assert outs["node"]["id"] == ins["node"]["id"] == f"tx:{txid}"
    paid: dict[str, int] = {}
    for o in tx["outputs"]:
        if o["address"]:
            paid[o["address"]] = paid.get(o["address"], 0) + o["value"]
    assert {e["target"].removeprefix("address:"): e["value"] for e in outs["edges"]} == paid
    spent: dict[str, int] = {}
    for i in tx["inputs"]:
        spent[i["address"]] = spent.get(i["address"], 0) + i["value"]
    assert {e["source"].removeprefix("address:"): e["value"] for e in ins["edges"]} == spent
    assert {n["id"] for n in outs["nodes"]} == {e["target"] for e in outs["edges"]}


def test_tx_change_guess_names_a_change_merge(client: TestClient, api_data: Path) -> None:
    from chainsleuth.cluster.engine import Clusters

    merges = Clusters(api_data).merges().to_pylist()
    change = next(r for r in merges if r["rule"] == "change")
    tx = client.get(f"{API}/txs/{change['txid']}").json()
    assert tx["change"]["rule"] == "change"
    assert tx["change"]["change_rules"] == change["change_rules"]
    out = tx["outputs"][tx["change"]["vout"]]
    assert out["address"] == tx["change"]["address"]
    multi = next(r for r in merges if r["rule"] == "multi_input")
    if not any(r["txid"] == multi["txid"] and r["rule"] != "multi_input" for r in merges):
        assert client.get(f"{API}/txs/{multi['txid']}").json()["change"] is None


def test_cluster_summary_members_and_evidence(client: TestClient, store: Store, busy: str) -> None:
    cid = client.get(f"{API}/addresses/{busy}").json()["cluster_id"]
    body = client.get(f"{API}/clusters/{cid}").json()
    members = (
        store.sql("SELECT address FROM clusters WHERE cluster_id = ? ORDER BY address", [cid])
        .column(0)
        .to_pylist()
    )
    assert body["n_addresses"] == len(members)
    listed = _all_pages(client, f"{API}/clusters/{cid}/addresses", limit=9)
    assert sorted(a["address"] for a in listed) == members
    merges = _all_pages(client, f"{API}/clusters/{cid}/merges", limit=9)
    assert len(merges) == sum(body["rules"].values())
    assert {m["from"] for m in merges} | {m["to"] for m in merges} <= set(members)
    a, b = members[0], members[-1]
    steps = client.get(f"{API}/explain?a={a}&b={b}").json()
    assert steps["linked"] is True and steps["steps"][0]["from"] == a
    assert steps["steps"][-1]["to"] == b


def test_search_kinds(client: TestClient, store: Store, busy: str) -> None:
    def ids(q: str) -> list[str]:
        r = client.get(f"{API}/search", params={"q": q})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(busy)[0] == f"address:{busy}"
    assert f"address:{busy}" in ids(busy[:8]) or len(ids(busy[:8])) == 20
    assert all(i.startswith("address:" + busy[:8]) for i in ids(busy[:8]))
    txid = store.sql("SELECT txid FROM txs LIMIT 1").column(0)[0].as_py()
    assert ids(txid) == [f"tx:{txid}"]
    block_hash = store.sql("SELECT hash FROM blocks WHERE height = 7").column(0)[0].as_py()
    assert ids(block_hash) == ["block:7"]
    assert "entity" in {
        i["kind"] for i in client.get(f"{API}/search?q=arcad").json()["items"]
    }  # the world's exchange Arcadia


def test_trace_rows_match_the_library_and_page(
    client: TestClient, api_data: Path, busy: str
) -> None:
    from chainsleuth.trace.rows import trace_rows

    rows = trace_rows(api_data, busy, "back", "haircut", 2, 0, True, False, None, None)
    first = client.get(f"{API}/trace?target={busy}&max_hops=2&limit=5").json()
    assert first["total"] == len(rows)
    items = _all_pages(client, f"{API}/trace?target={busy}&max_hops=2", limit=50)
    assert sorted(r["amount"] for r in items) == sorted(r["amount"] for r in rows)
    graph = first["graph"]
    ids = {n["id"] for n in graph["nodes"]}
    assert f"address:{busy}" in ids
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])


def test_path_to_a_chosen_target(client: TestClient, api_data: Path, busy: str) -> None:
    from chainsleuth.trace.paths import find_path

    far = client.get(f"{API}/addresses/{busy}/neighbors?direction=out&limit=1").json()
    target = far["items"][0]["target"].removeprefix("address:")
    body = client.get(f"{API}/path?source={busy}&target={target}").json()
    assert body["found"] is True
    assert body["n_hops"] == find_path(api_data, busy, target)["n_hops"] == 1
    assert body["edges"][0]["source"] == f"address:{busy}"
    # the global time filter: a window holding the hop's tx finds it, one after it does not
    h = client.get(f"{API}/txs/{body['hops'][0]['txid']}").json()["block_height"]
    inside = client.get(f"{API}/path?source={busy}&target={target}&from={h}&to={h}").json()
    assert inside["found"] is True and inside["hops"] == body["hops"]
    after = client.get(f"{API}/path?source={busy}&target={target}&from={h + 1}").json()
    assert after["found"] is False or all(
        client.get(f"{API}/txs/{x['txid']}").json()["block_height"] > h for x in after["hops"]
    )


def test_bad_input_is_the_error_model(client: TestClient) -> None:
    cases = {
        f"{API}/addresses/not-an-address": (400, "address"),
        f"{API}/txs/{'0' * 64}": (404, "txid"),
        f"{API}/clusters/999999999": (404, "cluster_id"),
        f"{API}/graph/expand?node=address:x&direction=sideways": (422, "direction"),
        f"{API}/trace?target=x&max_hops=99": (422, "max_hops"),
        f"{API}/addresses/x/txs?from=yesterday": (422, "from"),
        f"{API}/clusters/1/addresses?cursor=garbage": (400, "cursor"),
        f"{API}/no/such/route": (404, None),
    }
    for url, (status, field) in cases.items():
        r = client.get(url)
        assert r.status_code == status, (url, r.text)
        assert error_model(r.json()), r.text
        assert r.json()["error"]["field"] == field, url


def test_cursor_belongs_to_its_query(client: TestClient, busy: str) -> None:
    r = client.get(f"{API}/addresses/{busy}/neighbors?direction=out&limit=2").json()
    other = client.get(
        f"{API}/addresses/{busy}/neighbors?direction=in&limit=2&cursor={r['next_cursor']}"
    )
    assert other.status_code == 400 and other.json()["error"]["field"] == "cursor"


def test_sql_is_read_only_and_bounded(client: TestClient) -> None:
    r = client.post(f"{API}/sql", json={"query": "SELECT * FROM outputs", "limit": 3})
    assert r.status_code == 200 and len(r.json()["rows"]) == 3 and r.json()["truncated"]
    for query in ("COPY outputs TO '/tmp/x.csv'", "SELECT * FROM read_csv('/etc/passwd')"):
        r = client.post(f"{API}/sql", json={"query": query})
        assert r.status_code == 400 and error_model(r.json()), r.text


def test_analyst_tag_is_stored_and_audited(client: TestClient, api_data: Path, busy: str) -> None:
    body = {"address": busy, "label": "API test wallet", "category": "user", "note": "seen in"}
    r = client.post(f"{API}/tags", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["created_by"] == "api:local" and r.json()["note"] == "seen in"
    assert r.json()["source"] == "chainsleuth API, key local"
    tags = client.get(f"{API}/tags?address={busy}").json()["items"]
    assert ("API test wallet", "seen in") in {(t["label"], t["note"]) for t in tags}
    shown = client.get(f"{API}/addresses/{busy}").json()["tags"]
    assert ("API test wallet", "seen in") in {(t["label"], t["note"]) for t in shown}
    log = (api_data / "api" / "audit.jsonl").read_text().splitlines()
    assert any(
        '"POST"' in line and '"/api/v1/tags"' in line and '"status": 201' in line for line in log
    )


def test_security_headers_and_closed_cors(client: TestClient) -> None:
    r = client.get(f"{API}/status", headers={"Origin": "https://evil.example"})
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in r.headers
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<script>" not in docs.text  # no inline script
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = client.get(f"{API}/openapi.json").json()
    for path, methods in spec["paths"].items():
        for op in methods.values():
            assert op.get("operationId") and op.get("summary"), path


def test_cluster_coinjoins_sent_and_tags_page(client: TestClient, store: Store) -> None:
    row = store.sql(
        "WITH cj AS (SELECT txid FROM cluster_coinjoins), "
        "touch AS (SELECT o.txid, o.address FROM outputs o JOIN cj USING (txid) "
        "  UNION SELECT i.txid, i.address FROM inputs i JOIN cj USING (txid)) "
        "SELECT c.cluster_id, count(DISTINCT t.txid) AS n FROM touch t "
        "JOIN clusters c USING (address) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).to_pylist()[0]
    body = client.get(f"{API}/clusters/{row['cluster_id']}").json()
    assert body["coinjoin_txs"] == row["n"] > 0
    assert body["sent"] == body["received"] - body["balance"]
    assert body["tags"]["next_cursor"] is None
    assert body["tags"]["total"] == len(body["tags"]["items"])
