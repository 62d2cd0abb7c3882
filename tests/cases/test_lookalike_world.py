"""The look-alike warning on the world it was built for: hard small 9 (issue 11,
docs/accuracy-log.md "The two new worst worlds"), where arcadia, borealis and cobalt are
alike on every habit the style rules read (the truth's `exchange_habits`) and the tool names
few of their customers' deposits. The case must say so from the chain alone
(`cases.lookalikes`): case.json, the report's warning box (in Chromium) and the API's case
summary come from one section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.accuracy_matrix import build_case, style_twins
from chainsleuth.cases.report import write_report
from tests.cases.test_lookalikes import check_against_truth
from tests.cases.test_report import _Page, browser  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # its own world, built by the accuracy bench's `build_case` (as test_hard_world.py)
    root = tmp_path_factory.mktemp("twins-case")
    build_case(root, "hard", "small", 9)
    return root


def test_the_warning_fires_where_exchanges_are_style_twins(twins: Path) -> None:
    section = check_against_truth(twins / "world", twins / "case")
    habits = json.loads((twins / "world" / "world.json").read_text())["exchange_habits"]
    assert section["warning"]
    # at least one group of two, all alike on the hot type, fingerprint and change position
    assert section["groups"]
    for g in section["groups"]:
        assert len(g["exchanges"]) >= 2
        assert {"hot_type", "fingerprint", "change_position"} <= set(g["alike_on"])
        assert g["exchanges"][0] in section["warning"]
    # what it costs the case: deposits whose leads end at a service that could be any of a
    # group (hard small 9 misses 194 deposits, 136 of them at such services: investigations.md)
    assert sum(g["unnamed_deposits"] for g in section["groups"]) > 50
    # every exchange the truth makes a twin is in a group or showed no habit at all
    warned = {n for g in section["groups"] for n in g["exchanges"]} | set(section["unreadable"])
    twins_by_truth = {n for g in style_twins(habits) for n in g}
    assert twins_by_truth and twins_by_truth <= warned


def test_the_report_shows_the_warning_and_the_habits_side_by_side(
    twins: Path,
    browser: Any,  # noqa: F811
) -> None:
    case = twins / "case"
    section = json.loads((case / "case.json").read_text())["lookalike_exchanges"]
    paths = write_report(case, pdf=True)
    assert paths.pdf is not None and paths.pdf.read_bytes().startswith(b"%PDF")
    from pypdf import PdfReader

    # the box is in the summary: on the PDF's first pages, with its words
    pages = PdfReader(paths.pdf).pages
    text = " ".join(" ".join(p.extract_text() for p in pages[:3]).split())
    assert "Look-alike exchanges" in text
    assert " ".join(section["warning"].split())[:60] in text
    view = _Page(browser, paths.html)
    try:
        box = view.page.locator("#summary #lookalike-exchanges")
        assert box.is_visible()
        text = " ".join(box.inner_text().split())
        assert " ".join(section["warning"].split()) in text
        warned = [n for g in section["groups"] for n in g["exchanges"]] + section["unreadable"]
        header = box.locator("table.lookalikes thead th").all_inner_texts()
        assert header == ["habit", *dict.fromkeys(warned)]
        assert box.locator("table.lookalikes tbody tr").count() == len(section["habits"])
        # an unread habit is shown as such, never as a value
        unread = sum(
            not section["exchanges"][n][h]["read"]
            for n in dict.fromkeys(warned)
            for h in section["habits"]
        )
        assert box.locator("td.unread").count() == unread
        assert view.errors == []
    finally:
        view.close()


def test_requests_ask_the_twins_about_the_deposits_no_subpoena_covers(twins: Path) -> None:
    """requests.csv (cases.candidate_requests) on the twin world: each row asks a candidate of
    a deposit's best lead about it, only for deposits no exchange lead names at the cut, and the
    truth's funder is among the exchanges asked (hard small 9: 150 of 150 asked deposits,
    docs/accuracy-log.md "Requests to rule style twins in or out")."""
    import csv

    from bench.recall_misses import deposit_outcomes
    from chainsleuth.cases.candidate_requests import REQUEST_COLUMNS, REQUEST_KIND
    from chainsleuth.cases.rows import LEAD_COLUMNS, SUBPOENA_COLUMNS

    case = twins / "case"

    def rows(name: str) -> list[dict[str, str]]:
        with open(case / name, newline="") as f:
            return list(csv.DictReader(f))

    asked = rows("requests.csv")
    leads = rows("leads.csv")
    # the files that were there before keep their columns
    for name, columns in (("leads.csv", LEAD_COLUMNS), ("subpoenas.csv", SUBPOENA_COLUMNS)):
        with open(case / name, newline="") as f:
            assert next(csv.reader(f)) == columns
    with open(case / "requests.csv", newline="") as f:
        assert next(csv.reader(f)) == REQUEST_COLUMNS
    assert asked and {r["request"] for r in asked} == {REQUEST_KIND}
    named = {
        r["deposit_address"]
        for r in leads
        if r["source_category"] == "exchange" and float(r["confidence"] or 0) >= 0.5
    }
    # the subpoena rows at the cut (with the default --min-confidence 0 the file also lists
    # weaker ones: a deposit may have one of those and still be asked about)
    in_subpoenas = {
        d
        for r in rows("subpoenas.csv")
        if float(r["confidence"]) >= 0.5
        for d in r["deposit_addresses"].split(";")
    }
    by_deposit: dict[str, list[dict[str, str]]] = {}
    for r in asked:
        by_deposit.setdefault(r["deposit_address"], []).append(r)
    for d, rs in by_deposit.items():
        assert d not in named and d not in in_subpoenas  # it asks what the subpoenas do not
        best = max(
            (r for r in leads if r["deposit_address"] == d and r["source_category"] != "coinjoin"),
            key=lambda r: int(r["amount_sat"]),
        )
        assert best["source_category"] == "unidentified_service"
        assert sorted(r["exchange"] for r in rs) == best["candidate_exchanges"].split(";")
        assert sorted(int(r["ask_order"]) for r in rs) == list(range(1, len(rs) + 1))
        assert {int(r["set_size"]) for r in rs} == {len(rs)}
        assert {r["funding_txid"] for r in rs} == {best["funding_txid"]}
    # case.json counts the file
    section = json.loads((case / "case.json").read_text())["candidate_requests"]
    assert section["rows"] == len(asked) and section["deposits"] == len(by_deposit)
    # against the truth: the deposits asked about are missed ones, and the funder is asked
    outcomes = {
        d: (right, best) for d, _, right, _, best in deposit_outcomes(twins / "world", case)
    }
    missed_asked = [d for d in by_deposit if d in outcomes]
    assert len(missed_asked) > 50
    funder_in = sum(
        bool(outcomes[d][0] & {r["exchange"] for r in by_deposit[d]}) for d in missed_asked
    )
    assert funder_in >= 0.95 * len(missed_asked)
    assert all(outcomes[d][1] is None for d in missed_asked)  # none was named at the cut


def test_the_report_lists_the_requests(twins: Path, tmp_path: Path) -> None:
    import shutil

    case = tmp_path / "case"
    shutil.copytree(twins / "case", case)
    section = json.loads((case / "case.json").read_text())["candidate_requests"]
    html = write_report(case, pdf=False).html.read_text()
    start = html.index('<section id="requests">')
    part = html[start : html.index("</section>", start)]
    assert "not an attribution" in part
    assert f"{section['deposits']:,} deposit addresses" in part
    # header + one line per deposit shown, each with all its candidates
    assert part.count("<tr>") == 1 + min(30, section["deposits"])
    # the largest deposit's line: its candidates in ask_order
    import csv

    with open(case / "requests.csv", newline="") as f:
        asked = list(csv.DictReader(f))
    top = max(asked, key=lambda r: (int(r["amount_sat"]), r["deposit_address"]))["deposit_address"]
    mine = sorted((r for r in asked if r["deposit_address"] == top), key=lambda r: r["ask_order"])
    assert "ask (in this order)" in part
    assert f"<td>{', '.join(r['exchange'] for r in mine)}</td>" in part
    assert 'src="data:image/svg+xml;base64,' in part
    assert "requests.csv" in html[html.index('<section id="method">') :]  # its digest checked
