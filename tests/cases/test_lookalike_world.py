"""The look-alike warning on the world it was built for: hard small 9 (issue 11,
docs/investigations.md "The two new worst worlds"), where arcadia, borealis and cobalt are
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
