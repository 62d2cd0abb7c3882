"""A case started through the API: upload the seed CSV, poll to done, read what it found."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import API, error_model, submit_case


def test_case_from_an_uploaded_csv(
    client: TestClient, small_world: tuple[Path, Path], api_data: Path
) -> None:
    case_id = submit_case(
        client, small_world[0], {"name": "welcome", "max_hops": "15", "pdf": "false"}
    )
    seen, refused = set(), 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = client.get(f"{API}/cases/{case_id}").json()
        seen.add(status["progress"]["step"])
        if status["status"] in ("done", "failed"):
            break
        early = client.get(f"{API}/cases/{case_id}/leads")
        if early.status_code == 200:  # it finished between the two calls
            assert client.get(f"{API}/cases/{case_id}").json()["status"] == "done"
        else:
            assert early.status_code == 409 and error_model(early.json())
            refused += 1
        time.sleep(0.2)
    assert status["status"] == "done", status
    assert refused > 0  # the case takes seconds: its leads were refused (409) until done
    assert status["name"] == "welcome" and status["summary"]["n_leads"] > 0
    assert seen & {"queued", "setup", "leads", "cashouts", "files", "report"}

    files = {f["name"] for f in client.get(f"{API}/cases/{case_id}/files").json()["items"]}
    assert {"leads.csv", "subpoenas.csv", "cashouts.csv", "case.json", "report.html"} <= files
    # the look-alike warning (cases.lookalikes): in case.json, and its groups in the summary
    case_json = client.get(f"{API}/cases/{case_id}/files/case.json").json()
    section = case_json["lookalike_exchanges"]
    assert section["exchanges"] and set(section["habits"]) == {
        "hot_type", "fingerprint", "change_position", "deposit_type", "change_address",
        "round_amounts", "output_order", "fee_rate",
    }  # fmt: skip
    assert status["summary"]["lookalike_exchanges"] == [g["exchanges"] for g in section["groups"]]
    assert status["summary"]["unreadable_exchanges"] == section["unreadable"]
    # style names on by default; the deciding leads resting on them counted (cases.investigate)
    closed = case_json["closed_world"]
    assert closed["style_names"] is True
    assert status["summary"]["n_leads_resting_on_style"] == closed["leads_resting_on_style"]
    assert status["summary"]["n_deciding_leads"] == closed["deciding_leads"]
    assert (
        status["summary"]["n_leads_resting_on_style_carried"]
        == closed["leads_resting_on_style_carried"]
    )
    leads_csv = client.get(f"{API}/cases/{case_id}/files/leads.csv")
    assert leads_csv.status_code == 200
    rows = list(csv.DictReader(io.StringIO(leads_csv.text)))
    assert len(rows) == status["summary"]["n_leads"]
    paged, cursor = [], None
    while True:
        url = f"{API}/cases/{case_id}/leads?limit=500" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        paged += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == rows  # file order, every row
    # a lead's path to draw: the library's answer, from the source address to the deposit
    from chainsleuth.cases.lead_path import lead_graph, lead_txids
    from chainsleuth.trace.graph import FlowGraph

    g = FlowGraph(api_data)
    for n in sorted({0, len(rows) // 2, len(rows) - 1}):
        body = client.get(f"{API}/cases/{case_id}/leads/{n}/graph").json()
        want = lead_graph(g, rows[n])
        assert body["txids"] == lead_txids(rows[n]) == want["txids"]
        assert {x["id"] for x in body["nodes"]} == {x["id"] for x in want["nodes"]}
        assert [(e["id"], e["value"]) for e in body["edges"]] == [
            (e["id"], e["value"]) for e in want["edges"]
        ]
        ids = {x["id"] for x in body["nodes"]}
        assert {f"tx:{t}" for t in body["txids"]} | {f"address:{rows[n]['deposit_address']}"} <= ids
        into_deposit = [
            e for e in body["edges"] if e["target"].endswith(rows[n]["deposit_address"])
        ]
        assert into_deposit and into_deposit[0]["txid"] == body["txids"][-1]
    r = client.get(f"{API}/cases/{case_id}/leads/{len(rows)}/graph")
    assert r.status_code == 404 and error_model(r.json()) and r.json()["error"]["field"] == "n"
    cash = client.get(f"{API}/cases/{case_id}/cashouts?limit=1000").json()
    assert cash["total"] == status["summary"]["n_cashouts"]
    # requests to rule exchanges in or out (cases.candidate_requests): the file, paged
    assert "requests.csv" in files
    asked = client.get(f"{API}/cases/{case_id}/requests?limit=1000").json()
    assert asked["total"] == status["summary"]["n_request_rows"]
    assert asked["total"] == case_json["candidate_requests"]["rows"]
    text = client.get(f"{API}/cases/{case_id}/files/requests.csv").text
    assert asked["items"] == list(csv.DictReader(io.StringIO(text)))
    svg = client.get(f"{API}/cases/{case_id}/money-flow.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    assert case_id in {c["case_id"] for c in client.get(f"{API}/cases").json()["items"]}
    for bad in ("..%2F..%2Fmanifest.json", "%2e%2e", "seeds.csv", "status.json"):
        r = client.get(f"{API}/cases/{case_id}/files/{bad}")
        assert r.status_code == 404, bad


def test_a_bad_seed_file_fails_the_case_with_one_line(client: TestClient) -> None:
    r = client.post(f"{API}/cases", files={"seeds": ("x.csv", b"\x00\xff\x00binary", "text/csv")})
    assert r.status_code == 202
    case_id = r.json()["case_id"]
    for _ in range(200):
        status = client.get(f"{API}/cases/{case_id}").json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert status["status"] == "failed"
    assert "seeds.csv" in status["error"] and "\n" not in status["error"]
    assert client.get(f"{API}/cases/c00000000-00000000").status_code == 404


def test_a_case_without_style_names(client: TestClient, small_world: tuple[Path, Path]) -> None:
    """The case form's `style_names=false` reaches investigate (`--no-style-names`)."""
    case_id = submit_case(
        client, small_world[0], {"style_names": "false", "report": "false", "pdf": "false"}
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = client.get(f"{API}/cases/{case_id}").json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert status["status"] == "done", status
    case_json = client.get(f"{API}/cases/{case_id}/files/case.json").json()
    closed = case_json["closed_world"]
    assert closed["style_names"] is False and closed["leads_resting_on_style"] == 0
    assert closed["leads_resting_on_style_carried"] == 0 < closed["deciding_leads"]
