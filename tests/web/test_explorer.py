"""The web explorer in a real browser against the real API on loopback.

One run walks an investigator's day: search an address, expand two hops, open the merge
evidence, run a trace, start a case from a CSV and wait for it, open a lead's path, export a PNG.
What the canvas shows is checked against what the API answers for the same question, so a UI
that drops or invents nodes fails. No console error and no request to any other host.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .conftest import Server, WebWorld

READY = "body[data-ready='1']"
IDLE = "body[data-busy='0']"
SHOTS_ENV = "CHAINSLEUTH_WEB_SCREENSHOTS"  # a folder to copy the screenshots into (for docs/img)


class Session:
    """A page on the explorer, recording requests, console errors and page errors."""

    def __init__(self, browser: Any, server: Server, shots: Path) -> None:
        self.server = server
        self.shots = shots
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(
            viewport={"width": 1500, "height": 950}, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"{m.text} at {m.location}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(server.url + "/")
        self.page.wait_for_selector(READY)

    def api(self, path: str, **params: Any) -> Any:
        resp = self.page.request.get(self.server.url + "/api/v1" + path, params=params)
        assert resp.ok, (path, resp.status, resp.text())
        return resp.json()

    def idle(self, timeout: float = 60_000) -> None:
        """Wait until no action runs, then fail on an error in the status line."""
        self.page.wait_for_selector(IDLE, state="attached", timeout=timeout)
        status = self.page.locator("#status")
        assert "error" not in (status.get_attribute("class") or ""), status.text_content()

    def click(self, selector: str, timeout: float = 60_000) -> None:
        self.page.click(selector)
        self.idle(timeout)

    def nodes(self) -> set[str]:
        return set(self.page.evaluate("() => window.cy.nodes().map(n => n.id())"))

    def select(self, node_id: str) -> None:
        self.page.evaluate(
            "(id) => { window.cy.$(':selected').unselect(); window.cy.getElementById(id).select(); }",
            node_id,
        )
        self.page.wait_for_selector(f"#panel [data-node='{node_id}']")
        self.idle()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def _btc(sat: int) -> str:
    """Satoshis as the panel writes them: BTC, thousands separated, trailing zeros cut."""
    whole, frac = divmod(sat, 10**8)
    tail = f"{frac:08d}".rstrip("0")
    return f"{whole:,}" + (f".{tail}" if tail else "") + " BTC"


def _pick_address(store: Path) -> str:
    """An address that paid several others (so expanding it draws a neighbourhood), in a
    wallet of several addresses (so it has merge evidence to show)."""
    from chainsleuth.store.store import Store

    rows = Store.open(store).sql(
        "SELECT a.address FROM addresses a JOIN clusters c USING (address) "
        "WHERE a.sent > 0 AND a.n_txs BETWEEN 4 AND 12 AND c.cluster_size BETWEEN 3 AND 200 "
        "ORDER BY a.n_txs DESC, a.address LIMIT 1"
    )
    return str(rows.to_pylist()[0]["address"])


def _seeds(world: WebWorld) -> list[str]:
    with open(world.seeds, newline="") as f:
        return [r["address"] for r in csv.DictReader(f)]


def _seen_seeds(world: WebWorld) -> list[str]:
    """The seeds the chain has seen (a deposit list also holds never-used addresses), in order."""
    from chainsleuth.store.store import Store

    seeds = _seeds(world)
    rows = Store.open(world.store).sql(
        "SELECT address FROM addresses WHERE list_contains(?, address)", [seeds]
    )
    seen = set(rows.column("address").to_pylist())
    return [a for a in seeds if a in seen]


@pytest.fixture(scope="module")
def session(chromium: Any, web_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Session(chromium, web_server, tmp_path_factory.mktemp("web-shots"))
    yield s
    s.context.close()
    target = os.environ.get(SHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for p in s.shots.glob("*.png"):
            shutil.copyfile(p, Path(target) / f"explorer-{p.name}")


def test_investigator_walkthrough(session: Session, web_world: WebWorld, tmp_path: Path) -> None:
    s, page = session, session.page

    # ---- search an address: it lands on the canvas, selected, with its panel
    address = _pick_address(web_world.store)
    a_id = f"address:{address}"
    page.fill("#search", address)
    s.click("#search-go")
    page.wait_for_selector(f"#panel [data-node='{a_id}']")
    assert s.nodes() == {a_id}
    facts = s.api(f"/addresses/{address}")
    panel = page.locator("#panel").inner_text()
    assert address in panel and f"{facts['n_txs']}" in panel
    # balance, first and last seen (time and block), the CoinJoin flag
    assert _btc(facts["balance"]) in panel
    assert f"(block {facts['first_seen_height']})" in panel
    assert f"(block {facts['last_seen_height']})" in panel
    assert ("CoinJoin\nno" in panel) == (facts["coinjoin_txs"] == 0)

    # ---- expand two hops: the canvas holds exactly what the API says the neighbours are
    s.click("#expand-out")
    hop1 = s.api("/graph/expand", node=a_id, direction="out", aggregate="true", limit=50)
    first = {n["id"] for n in hop1["nodes"]} | {a_id}
    assert len(first) > 1
    assert s.nodes() == first
    edges = page.evaluate("() => window.cy.edges().map(e => [e.id(), e.data('value')])")
    assert {e[0] for e in edges} == {e["id"] for e in hop1["edges"]}
    assert {e[1] for e in edges} == {e["value"] for e in hop1["edges"]}
    # arrows carry BTC and USD at the time (and the tx count when aggregated)
    labels = dict(page.evaluate("() => window.cy.edges().map(e => [e.id(), e.data('display')])"))
    for e in hop1["edges"]:
        assert "BTC" in labels[e["id"]] and ("$" in labels[e["id"]]) == (e["usd"] is not None)
        assert (f"{e['n_txs']} txs" in labels[e["id"]]) == (e["n_txs"] > 1)
    count = page.locator("#count-out").inner_text()
    assert count.startswith(f"{len(hop1['edges'])} of {hop1['total']}"), count
    second = sorted(first - {a_id})[0]
    s.select(second)
    s.click("#expand-out")
    hop2 = s.api("/graph/expand", node=second, direction="out", aggregate="true", limit=50)
    assert s.nodes() == first | {n["id"] for n in hop2["nodes"]} | {second}
    s.shot("1-expand")

    # ---- the evidence panel: why these addresses are one wallet (merges with txids and rules)
    s.select(a_id)
    s.click("#btn-evidence")
    merges = s.api(f"/clusters/{facts['cluster_id']}/merges", limit=50)
    assert merges["items"], "the picked address's wallet has no merges"
    rows = page.locator("table.evidence tbody tr")
    assert rows.count() == len(merges["items"])
    txids = page.locator("table.evidence [data-txid]").evaluate_all(
        "(links) => links.map((a) => a.dataset.txid)"
    )
    assert txids == [m["txid"] for m in merges["items"]]
    evidence = page.locator("table.evidence").inner_text()
    assert {m["rule"] for m in merges["items"]} <= set(evidence.split())
    s.shot("2-evidence")

    # ---- a backward trace from a deposit address, stopping at named entities
    def trace_of(a: str) -> Any:  # the UI's defaults: haircut, 6 hops, auto-trace stops on
        return s.api(
            "/trace", target=a, direction="back", policy="haircut", max_hops=6, min_value=0,
            stops="true", walk_coinjoins="false", limit=100,
        )  # fmt: skip

    target = next(
        a for a in _seen_seeds(web_world)[:40] if any(r["entity"] for r in trace_of(a)["items"])
    )
    page.click("#tab-trace")
    page.fill("#trace-target", target)
    s.click("#trace-go")
    trace = trace_of(target)
    assert page.locator("#trace-table tbody tr").count() == len(trace["items"])
    drawn = set(page.evaluate("() => window.cy.nodes().map(n => n.id())"))
    assert drawn == {n["id"] for n in trace["graph"]["nodes"]}
    named = page.evaluate("() => window.cy.nodes('[?entity]').map(n => n.data('entity'))")
    assert set(named) >= {r["entity"] for r in trace["items"] if r["entity"]}
    s.shot("3-trace")

    # ---- a case from a CSV: upload, wait for it, leads table, open a lead's path
    seeds_csv = tmp_path / "seeds.csv"
    seeds_csv.write_text("address\n" + "\n".join(_seeds(web_world)[:150]) + "\n")
    page.click("#tab-case")
    page.set_input_files("#case-file", str(seeds_csv))
    page.fill("#case-name", "browser test")
    page.click("#case-go")
    page.wait_for_selector("#case-progress[data-status='done']", timeout=180_000)
    s.idle(120_000)
    case_id = re.search(r"case (\S+):", page.locator("#case-progress").inner_text()).group(1)
    leads = s.api(f"/cases/{case_id}/leads", limit=1000)
    assert leads["items"], "the case found no lead: pick more seeds"
    assert page.locator("#leads-table tbody tr").count() == len(leads["items"])
    page.wait_for_selector("#money-flow img")
    s.shot("4-case")
    got = _download(page, "[data-file='leads.csv']", tmp_path / "leads.csv")
    s.idle()
    assert len(list(csv.DictReader(got.open()))) == len(leads["items"])
    report_html = _download(page, "[data-file='report.html']", tmp_path / "report.html")
    s.idle()
    assert "<html" in report_html.read_text().lower()
    # filter by exchange, then sort by amount, then open the top lead's path
    exchange = leads["items"][0]["source_entity"]
    page.select_option("#lead-exchange", exchange)
    want = [r for r in leads["items"] if r["source_entity"] == exchange]
    assert page.locator("#leads-table tbody tr").count() == len(want)
    confidences = sorted(float(r["confidence"] or 0) for r in want)
    floor = confidences[len(confidences) // 2]
    page.fill("#lead-confidence", str(floor))
    kept = [r for r in want if float(r["confidence"] or 0) >= floor]
    assert page.locator("#leads-table tbody tr").count() == len(kept)
    page.fill("#lead-confidence", "0")
    assert page.locator("#leads-table tbody tr").count() == len(want)
    top = max(want, key=lambda r: int(r["amount_sat"]))  # the first of the largest, as the UI sorts
    page.click("#leads-table tbody tr >> nth=0")
    s.idle()
    canvas = s.nodes()
    assert f"address:{top['deposit_address']}" in canvas
    drawn = s.api(f"/cases/{case_id}/leads/{leads['items'].index(top)}/graph")
    assert {f"tx:{t}" for t in top["path"].split("|")[0].split(";")} <= canvas
    assert {x["id"] for x in drawn["nodes"]} <= canvas  # the UI draws what the API laid out
    on_path = set(page.evaluate("() => window.cy.edges('.path').map((e) => e.id())"))
    assert on_path == {e["id"] for e in drawn["edges"]}
    s.shot("5-lead")

    # ---- export the picture
    with page.expect_download() as dl:
        page.click("#btn-png")
    png = tmp_path / "graph.png"
    dl.value.save_as(png)
    s.idle()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000

    # ---- nothing went wrong and nothing left the host
    assert s.errors == []
    hosts = {urlsplit(u).netloc for u in s.requests if urlsplit(u).scheme in ("http", "https")}
    assert hosts == {s.server.host}, hosts
    assert all(urlsplit(u).scheme in ("http", "blob", "data") for u in s.requests)


def _download(page: Any, selector: str, path: Path) -> Path:
    with page.expect_download() as dl:
        page.click(selector)
    dl.value.save_as(path)
    return path


def test_filters_exports_views_annotations_and_paths(
    chromium: Any, web_server: Server, web_world: WebWorld, tmp_path: Path
) -> None:
    s = Session(chromium, web_server, tmp_path)
    page = s.page
    address = _pick_address(web_world.store)
    a_id = f"address:{address}"
    page.fill("#search", address)
    s.click("#search-go")
    s.click("#expand-out")
    agg = s.api("/graph/expand", node=a_id, direction="out", aggregate="true", limit=50)

    # ---- aggregate off: one arrow per tx (address → tx), as the API draws it; then back on
    s.click("#aggregate")
    single = s.api("/graph/expand", node=a_id, direction="out", aggregate="false", limit=50)
    assert s.nodes() == {a_id} | {n["id"] for n in single["nodes"]}
    assert any(n.startswith("tx:") for n in s.nodes())
    s.click("#aggregate")
    assert s.nodes() == {a_id} | {n["id"] for n in agg["nodes"]}

    # ---- the global time filter redraws the expansion inside the window
    h = min(e["first_height"] for e in agg["edges"])
    page.fill("#from", str(h))
    page.fill("#to", str(h))
    s.click("#apply-filters")
    window = s.api("/graph/expand", node=a_id, direction="out", aggregate="true", limit=50,
                   **{"from": h, "to": h})  # fmt: skip
    assert s.nodes() == {a_id} | {n["id"] for n in window["nodes"]}
    assert s.nodes() < {a_id} | {n["id"] for n in agg["nodes"]} or len(agg["edges"]) == len(
        window["edges"]
    )
    page.fill("#from", "")
    page.fill("#to", "")
    s.click("#apply-filters")
    assert s.nodes() == {a_id} | {n["id"] for n in agg["nodes"]}

    # ---- hide small flows: edges under the threshold are hidden, not dropped
    values = sorted(e["value"] for e in agg["edges"])
    cut = values[len(values) // 2]
    page.fill("#min-flow", f"{cut / 1e8:.8f}")
    page.press("#min-flow", "Enter")
    s.idle()
    shown = page.evaluate("() => window.cy.edges().not('.filtered').length")
    assert shown == sum(v >= cut for v in values)
    assert page.evaluate("() => window.cy.edges().length") == len(values)
    page.fill("#min-flow", "")
    page.press("#min-flow", "Enter")
    s.idle()
    assert page.evaluate("() => window.cy.edges().not('.filtered').length") == len(values)

    # ---- CSV of every tx on the canvas: one row per tx behind each arrow
    rows = list(csv.DictReader(_download(page, "#btn-csv", tmp_path / "txs.csv").open()))
    s.idle()
    assert len(rows) == sum(e["n_txs"] for e in agg["edges"])
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["txid"]) for r in rows)
    for e in agg["edges"]:
        mine = [r for r in rows if (r["source"], r["target"]) == (e["source"], e["target"])]
        assert sum(int(r["value_sat"]) for r in mine) == e["value"]

    # ---- SVG export, and a saved view that loads back to the same canvas
    svg = _download(page, "#btn-svg", tmp_path / "graph.svg").read_text()
    assert "<svg" in svg and address[:6] in svg
    before = s.nodes()
    _download(page, "#btn-save", tmp_path / "view.json")
    s.click("#btn-clear")
    assert s.nodes() == set()
    page.set_input_files("#file-load", str(tmp_path / "view.json"))
    s.idle()
    assert s.nodes() == before

    # ---- path search: from the address to a neighbour of a neighbour
    hop = sorted(n["id"] for n in agg["nodes"] if n["id"].startswith("address:"))[0]
    far = s.api("/graph/expand", node=hop, direction="out", aggregate="true", limit=50)
    target = next(n["id"] for n in far["nodes"] if n["id"] not in before)
    page.click("#tab-path")
    page.fill("#path-source", address)
    page.fill("#path-target", target.split(":", 1)[1])
    s.click("#path-go")
    path = s.api("/path", source=address, target=target.split(":", 1)[1], mode="fewest_hops",
                 level="address", max_hops=8)  # fmt: skip
    assert path["found"]
    assert {n["id"] for n in path["nodes"]} <= s.nodes()
    assert page.evaluate("() => window.cy.edges('.path').length") == len(path["edges"])

    # ---- the address's wallet as a node, expanded at the cluster level
    s.select(a_id)
    s.click("#btn-cluster-node")
    facts = s.api(f"/addresses/{address}")
    c_id = f"cluster:{facts['cluster_id']}"
    assert c_id in s.nodes()
    s.select(c_id)
    assert str(facts["cluster_size"]) in page.locator("#panel").inner_text()
    s.click("#expand-out")
    wallets = s.api("/graph/expand", node=c_id, direction="out", limit=50)
    drawn = {n for n in s.nodes() if n.startswith("cluster:")}
    assert drawn == {c_id} | {n["id"] for n in wallets["nodes"]}
    for n in wallets["nodes"]:  # coloured by category, named by the tags' entity
        data = page.evaluate("(id) => window.cy.getElementById(id).data()", n["id"])
        assert data["category"] == n["category"] and data["entity"] == n["entity"]
        if n["entity"]:
            assert n["entity"] in data["display"]
    s.shot("6-wallets")

    # ---- annotate: an analyst tag with a note, saved through the API and shown in the panel
    s.select(a_id)
    page.fill("#note-label", "suspect wallet (browser test)")
    page.fill("#note-text", "paid the seized service twice")
    s.click("#note-save")
    page.wait_for_selector(f"#panel [data-node='{a_id}']")
    s.idle()
    tags = s.api("/tags", address=address)["items"]
    mine = [t for t in tags if t["label"] == "suspect wallet (browser test)"]
    assert [t["note"] for t in mine] == ["paid the seized service twice"]
    shown = page.locator("#panel-tags").inner_text()
    assert "suspect wallet (browser test)" in shown and "paid the seized service twice" in shown
    # each tag with its source and confidence, as the API stores them
    for t in tags:
        assert f"{t['source']} ({t['tagpack']})" in shown
        assert f"{t['confidence_level']} ({t['confidence']})" in shown
    s.shot("7-annotate")

    # ---- no silent top-N: with a few neighbours a page, "Load more" reaches every one
    total = far["total"]
    assert total > 6, "pick a busier hop"
    s.click("#btn-clear")
    page.fill("#page-size", "5")
    s.click("#apply-filters")
    page.fill("#search", hop.split(":", 1)[1])
    s.click("#search-go")
    s.click("#expand-out")
    assert page.locator("#count-out").inner_text().startswith(f"5 of {total}")
    while page.locator("#more-out").count():
        s.click("#more-out")
    assert page.locator("#count-out").inner_text().startswith(f"{total} of {total}")
    every = s.api("/graph/expand", node=hop, direction="out", aggregate="true", limit=1000)
    assert s.nodes() == {hop} | {n["id"] for n in every["nodes"]}
    # pin one neighbour, collapse: the expansion's nodes go, the pinned one and the seed stay
    pinned = sorted(n["id"] for n in every["nodes"])[0]
    s.select(pinned)
    s.click("#pin")
    s.select(hop)
    s.click("#collapse-out")
    assert s.nodes() == {hop, pinned}
    assert page.locator("#expand-out").count() == 1

    # ---- the CoinJoin flag with its mixer: on a CoinJoin tx and on an address that mixed
    mixed = _mixed(web_world.store)
    page.fill("#search", mixed["txid"])
    s.click("#search-go")
    page.wait_for_selector(f"#panel [data-node='tx:{mixed['txid']}']")
    assert page.locator("#panel h2").inner_text() == f"CoinJoin ({mixed['rule']})"
    assert page.evaluate(
        "(id) => window.cy.getElementById(id).data('coinjoin')", f"tx:{mixed['txid']}"
    )
    page.fill("#search", mixed["address"])
    s.click("#search-go")
    page.wait_for_selector(f"#panel [data-node='address:{mixed['address']}']")
    facts = s.api(f"/addresses/{mixed['address']}")
    assert facts["coinjoin_txs"] > 0
    assert f"yes: {facts['coinjoin_txs']} tx" in page.locator("#panel").inner_text()
    assert f"({', '.join(facts['mixers'])})" in page.locator("#panel").inner_text()

    assert s.errors == []
    hosts = {urlsplit(u).netloc for u in s.requests if urlsplit(u).scheme in ("http", "https")}
    assert hosts == {s.server.host}, hosts
    s.context.close()


def _mixed(store: Path) -> dict[str, str]:
    """A CoinJoin tx (flagged by the clustering), its mixer kind, and an address it paid."""
    from chainsleuth.store.store import Store

    rows = Store.open(store).sql(
        "SELECT c.txid, c.rule, min(o.address) AS address FROM cluster_coinjoins c "
        "JOIN outputs o USING (txid) WHERE o.address IS NOT NULL GROUP BY 1, 2 ORDER BY 1 LIMIT 1"
    )
    return {k: str(v) for k, v in rows.to_pylist()[0].items()}


def test_api_key_field_sends_the_key_and_keeps_it_for_the_tab_only(
    chromium: Any, tmp_path: Path
) -> None:
    """With a key store, the page says a key is needed; the key typed in is sent as a Bearer
    token, survives a reload of the tab (sessionStorage) and is gone in a new tab."""
    from chainsleuth.api.security import create_key

    from .conftest import serve

    data = tmp_path / "data"
    data.mkdir()
    key, record = create_key(data, "read", "browser test")
    server = serve(data)
    try:
        context = chromium.new_context()
        page = context.new_page()
        sent: list[str | None] = []
        errors: list[str] = []
        page.on("request", lambda r: sent.append(r.headers.get("authorization")))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/")
        page.wait_for_selector(READY)
        page.wait_for_function("() => document.getElementById('me').textContent !== ''")
        assert page.locator("#me").inner_text() == "key needed"
        page.fill("#api-key", key)
        page.press("#api-key", "Tab")
        page.wait_for_function(
            "(id) => document.getElementById('me').textContent.startsWith(id)", arg=record["id"]
        )
        assert page.locator("#me").inner_text() == f"{record['id']} · read"
        assert f"Bearer {key}" in sent
        page.reload()
        page.wait_for_selector(READY)
        page.wait_for_function(
            "(id) => document.getElementById('me').textContent.startsWith(id)", arg=record["id"]
        )
        other = context.new_page()  # sessionStorage is per tab
        other.goto(server.url + "/")
        other.wait_for_selector(READY)
        assert other.evaluate("() => sessionStorage.length") == 0
        # the only errors are the refused (401) lookups made before a key was given
        assert errors and all("401" in e for e in errors), errors
        assert not (data / "api" / "keys.json").read_text().count(key)
        context.close()
    finally:
        server.close()
