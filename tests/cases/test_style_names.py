"""The wallet-style rule's closed-world switch (issue 11, docs/design/cases.md "Wallet-style
names assume every exchange is tagged"): `style_names=False` (`--no-style-names`) names no wallet
by its style alone, and case.json's `closed_world` counts the deciding leads that rest on such a
name. Hand-built chains (tests.cases.test_candidate_exchanges) and the session's small world."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from chainsleuth.cases.investigate import closed_world_counts, leads_resting_on_style
from chainsleuth.cases.lookalikes import closed_world_line
from chainsleuth.cases.rows import UNIDENTIFIED_SERVICE
from tests.cases.test_candidate_exchanges import NAMES, _lend
from tests.conftest import stage_app
from tests.trace.test_more_habits import DEDUCTED, ROUND


def _one_alike(lend: bool) -> tuple[np.ndarray, dict, dict, dict]:
    """Four wallets alike on hot type, fingerprint and change, paying 9 batches of 6 payees:
    arcadia sends round amounts like the untagged service (cluster 1_003), borealis and cobalt
    deduct their fee, so the service fits arcadia alone. Returns `_lend_by_style`'s clusters
    named, its candidate sets, the attribution after it and the exchanges' habits it read."""
    habits: dict[tuple[str | None, str], tuple[np.ndarray, int]] = {}
    named, candidates, attribution = _lend((ROUND, DEDUCTED, DEDUCTED, ROUND), lend, habits)
    return named, candidates, attribution, habits


def test_the_one_wallet_it_fits_names_it_only_when_style_names_are_on() -> None:
    named, _, attribution, on_habits = _one_alike(lend=True)
    assert named.tolist() == [1_003] and attribution[1_003] == ("arcadia", "exchange")
    named, candidates, attribution, off_habits = _one_alike(lend=False)
    assert named.tolist() == []
    assert attribution[1_003] == ("cluster:7", UNIDENTIFIED_SERVICE)
    # the styles are still read: the tagged exchanges' habits (cash-outs' rule 6b) are there
    assert sorted(off_habits) == sorted(on_habits) == [(n, "exchange") for n in NAMES]
    # left unnamed, it still gets the one exchange it fits as a set of one: a request to
    # arcadia to rule its deposits in or out (requests.csv, `rule_in_or_out_style_only`)
    assert candidates == {("cluster:7", UNIDENTIFIED_SERVICE): "arcadia"}
    # with style names on it is named, so no set (sets there list two or more exchanges)
    _, on_candidates, _, _ = _one_alike(lend=True)
    assert on_candidates == {}


def _leads(rows: list[tuple[str, str, float, int, str]]) -> pa.Table:
    d, cat, conf, amt, via = zip(*rows, strict=True)
    return pa.table(
        {
            "deposit_address": pa.array(d, pa.string()),
            "source_category": pa.array(cat, pa.string()),
            "confidence": pa.array(conf, pa.float64()),
            "amount_sat": pa.array(amt, pa.int64()),
            "attributed_via": pa.array(via, pa.string()),
        }
    )


def test_leads_resting_on_style_counts_each_deposits_deciding_lead() -> None:
    leads = _leads([
        ("a", "exchange", 0.9, 500, "wallet_style"),  # a: decided by style
        ("a", "exchange", 0.9, 100, "tag"),
        ("b", "exchange", 0.9, 100, "wallet_style"),  # b: the larger tag row decides
        ("b", "exchange", 0.8, 900, "tag"),
        ("c", "exchange", 0.4, 900, "tag"),  # c: the row below 0.5 does not decide
        ("c", "exchange", 0.6, 100, "wallet_style"),
        ("d", "exchange", 0.3, 100, "wallet_style"),  # d: nothing at 0.5
        ("e", UNIDENTIFIED_SERVICE, 0.9, 900, ""),  # e: not an exchange row
        ("e", "exchange", 0.7, 10, "wallet_style"),
    ])  # fmt: skip
    assert leads_resting_on_style(leads) == 3  # a, c, e
    assert leads_resting_on_style(leads, cut=0.65) == 2  # a, e
    assert leads_resting_on_style(leads.slice(0, 0)) == 0


def test_closed_world_counts_name_basis_style_carried_or_not() -> None:
    """With leads.csv's name_basis, a deciding lead carried by a change link from a
    style-named wallet rests on style too (counted, and counted apart as carried); a style
    row that does not decide is not counted."""
    rows = [
        ("a", "exchange", 0.9, 500, "wallet_style", "style"),  # a: named by style
        ("b", "exchange", 0.9, 500, "change_spend", "style"),  # b: carried from a style name
        ("c", "exchange", 0.9, 500, "change_spend", "chain"),  # c: carried from a tag
        ("d", "exchange", 0.9, 500, "tag", "tag"),  # d: its own tag decides
        ("d", "exchange", 0.9, 100, "change_return", "style"),
        ("e", "exchange", 0.4, 900, "change_spend", "style"),  # e: below the cut, no lead
    ]
    leads = _leads([r[:5] for r in rows]).append_column(
        "name_basis", pa.array([r[5] for r in rows], pa.string())
    )
    assert closed_world_counts(leads) == {
        "deciding_leads": 4,  # a, b, c, d
        "leads_resting_on_style": 2,  # a, b
        "leads_resting_on_style_carried": 1,  # b
    }
    assert leads_resting_on_style(leads) == 2
    # a table from before name_basis: attributed_via wallet_style alone, none carried
    assert closed_world_counts(leads.drop_columns(["name_basis"])) == {
        "deciding_leads": 4,
        "leads_resting_on_style": 1,
        "leads_resting_on_style_carried": 0,
    }


def test_the_line_is_said_only_when_a_lead_rests_on_style() -> None:
    assert closed_world_line(0) == "" and closed_world_line(0, 10, 0) == ""
    line = closed_world_line(1_234)
    assert line.startswith("1,234 leads rest on wallet style") and "--no-style-names" in line
    line = closed_world_line(1_234, 5_000, 34)
    assert line.startswith("1,234 of 5,000 subpoena-grade leads (each deposit's largest exchange")
    assert "≥ 0.5) rest on wallet style" in line
    assert "34 of them through change links" in line


def test_the_report_says_it_from_case_json() -> None:
    from chainsleuth.cases.report.query import closed_world_note

    case = {"closed_world": {"style_names": True, "leads_resting_on_style": 12}}
    assert closed_world_note(case) == closed_world_line(12)  # before deciding_leads
    cw = {"leads_resting_on_style": 12, "deciding_leads": 40, "leads_resting_on_style_carried": 3}
    assert closed_world_note({"closed_world": cw}) == closed_world_line(12, 40, 3)
    assert (
        closed_world_note({"closed_world": {"style_names": False, "leads_resting_on_style": 0}})
        == ""
    )
    assert closed_world_note({}) == ""  # a case folder from before the key


def _deciding(case: Path) -> dict[str, dict[str, str]]:
    """leads.csv read apart from the case's code: per deposit, its largest exchange row at 0.5
    or above (the first in file order on a tie)."""
    best: dict[str, dict[str, str]] = {}
    with open(case / "leads.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["source_category"] != "exchange" or float(r["confidence"] or 0) < 0.5:
                continue
            d = r["deposit_address"]
            if d not in best or int(r["amount_sat"]) > int(best[d]["amount_sat"]):
                best[d] = r
    return best


def _closed_world_from_leads(case: Path) -> dict[str, int]:
    """case.json's closed_world counts, from leads.csv alone."""
    best = _deciding(case).values()
    return {
        "deciding_leads": len(best),
        "leads_resting_on_style": sum(r["name_basis"] == "style" for r in best),
        "leads_resting_on_style_carried": sum(
            r["name_basis"] == "style" and r["attributed_via"] != "wallet_style" for r in best
        ),
    }


def test_cli_no_style_names(small_world: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chainsleuth.cases.cli import register
    from chainsleuth.core.console import CliState

    w, store = small_world
    app = stage_app(register)

    seeds = str(w / "seeds" / "deposits.csv")
    runs = {}
    for name, flag in (("on", []), ("off", ["--no-style-names"])):
        out = tmp_path / name
        args = ["investigate", "--seeds", seeds, "-o", str(out), "--no-report", *flag]
        result = CliRunner().invoke(app, args, obj=CliState(store))
        assert result.exit_code == 0, result.output
        runs[name] = (json.loads((out / "case.json").read_text())["closed_world"], result.output)
    on, off = runs["on"][0], runs["off"][0]
    assert on["style_names"] is True and off["style_names"] is False
    assert on == {"style_names": True, **_closed_world_from_leads(tmp_path / "on")}
    assert off == {"style_names": False, **_closed_world_from_leads(tmp_path / "off")}
    assert off["leads_resting_on_style"] == 0 < off["deciding_leads"]
    with open(tmp_path / "off" / "leads.csv", newline="") as f:
        assert all(r["attributed_via"] != "wallet_style" for r in csv.DictReader(f))
    for cw, output in runs.values():
        said = "rest on wallet style" in " ".join(output.split())
        assert said == (cw["leads_resting_on_style"] > 0)
