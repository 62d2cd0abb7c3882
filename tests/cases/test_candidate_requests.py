"""requests.csv's rows (`cases.candidate_requests`) from a hand-made leads table: which
deposits are asked about, of whom, in what order, and what case.json says of them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from chainsleuth.cases.candidate_requests import (
    REQUEST_COLUMNS,
    REQUEST_KIND,
    REQUEST_KIND_STYLE_ONLY,
    request_summary,
    request_table,
)
from chainsleuth.cases.rows import LEAD_COLUMNS, schema_of

CUT = 0.5


def _lead(deposit: str, category: str, amount: int, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {c: None for c in LEAD_COLUMNS}
    row.update(
        deposit_address=deposit,
        source_category=category,
        source_entity=kw.get("entity", "cluster:7" if category == "unidentified_service" else ""),
        source_cluster=kw.get("cluster", 7),
        source_address=f"src-{deposit}-{amount}",
        funding_txid=f"tx-{deposit}-{amount}",
        block_height=100,
        block_time="2019-01-01T00:00:00Z",
        amount_sat=amount,
        confidence=kw.get("confidence", 0.0),
        candidate_exchanges=kw.get("candidates", ""),
    )
    return row


LEADS = [
    # d1: its only lead is a wallet arcadia and borealis fit alike -> both asked
    _lead("d1", "unidentified_service", 500, candidates="arcadia;borealis", cluster=11),
    # d2: the twin wallet is its largest lead, but an exchange lead names it at the cut: it is
    # in the subpoenas, so nobody is asked
    _lead("d2", "unidentified_service", 900, candidates="arcadia;borealis;cobalt"),
    _lead("d2", "exchange", 100, entity="dunmore", confidence=0.8),
    # d3: a larger lead that is not the twin wallet (unattributed): its best lead is not a set
    _lead("d3", "unattributed", 800),
    _lead("d3", "unidentified_service", 300, candidates="arcadia;borealis"),
    # d4: a CoinJoin's row is larger, but it never says who funded the rest: the set is asked
    _lead("d4", "coinjoin", 2_000, entity="wasabi"),
    _lead("d4", "unidentified_service", 400, candidates="arcadia;borealis;cobalt", cluster=12),
    # d5: an exchange lead below the cut does not name it: the set is asked
    _lead("d5", "unidentified_service", 700, candidates="borealis;cobalt", cluster=13),
    _lead("d5", "exchange", 50, entity="dunmore", confidence=0.3),
    # d7: an unidentified wallet no exchange fits: not asked
    _lead("d7", "unidentified_service", 650),
]


def _table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema_of(LEAD_COLUMNS))


def test_the_deposits_asked_about_and_of_whom() -> None:
    t = request_table(_table(LEADS), CUT)
    assert t.column_names == REQUEST_COLUMNS
    pairs = sorted(
        zip(t.column("deposit_address").to_pylist(), t.column("exchange").to_pylist(), strict=True)
    )
    assert pairs == [
        ("d1", "arcadia"), ("d1", "borealis"),
        ("d4", "arcadia"), ("d4", "borealis"), ("d4", "cobalt"),
        ("d5", "borealis"), ("d5", "cobalt"),
    ]  # fmt: skip
    rows = t.to_pylist()
    # never an attribution: every row says what it is, and nothing in it is a confidence
    assert {r["request"] for r in rows} == {REQUEST_KIND}
    assert not any("confidence" in c for c in t.column_names)
    for r in rows:
        lead = next(
            x
            for x in LEADS
            if x["deposit_address"] == r["deposit_address"]
            and x["source_category"] == "unidentified_service"
        )
        # the evidence: the twin wallet's amount, withdrawal, address and cluster
        assert r["amount_sat"] == lead["amount_sat"]
        assert r["funding_txid"] == lead["funding_txid"]
        assert r["source_address"] == lead["source_address"]
        assert r["wallet_cluster"] == lead["source_cluster"]
        others = r["other_candidates"].split(";")
        assert sorted([r["exchange"], *others]) == str(lead["candidate_exchanges"]).split(";")
        assert r["set_size"] == len(others) + 1


def test_exchanges_that_answer_for_most_deposits_come_first() -> None:
    t = request_table(_table(LEADS), CUT).to_pylist()
    # borealis could answer for d1, d4 and d5; cobalt (d4, d5: 1,100 sat) and arcadia (d1, d4:
    # 900 sat) for two each: the count first, then the satoshis
    ranks = {r["exchange"]: (r["exchange_rank"], r["exchange_deposits"]) for r in t}
    assert ranks == {"borealis": (1, 3), "cobalt": (2, 2), "arcadia": (3, 2)}
    assert [r["exchange_rank"] for r in t] == sorted(r["exchange_rank"] for r in t)
    # within an exchange, the largest amount first
    for rank in (1, 2, 3):
        amounts = [r["amount_sat"] for r in t if r["exchange_rank"] == rank]
        assert amounts == sorted(amounts, reverse=True)
    # ask_order: the exchange's place among the deposit's candidates, in that order
    order = {(r["deposit_address"], r["exchange"]): r["ask_order"] for r in t}
    assert order[("d1", "borealis")] == 1 and order[("d1", "arcadia")] == 2
    assert [order[("d4", e)] for e in ("borealis", "cobalt", "arcadia")] == [1, 2, 3]
    totals = {r["exchange"]: r["exchange_total_sat"] for r in t}
    assert totals == {"borealis": 1_600, "cobalt": 1_100, "arcadia": 900}


def test_the_rows_do_not_depend_on_the_leads_order_and_the_cut_matters() -> None:
    want = request_table(_table(LEADS), CUT)
    shuffled = [LEADS[i] for i in np.random.default_rng(3).permutation(len(LEADS))]
    assert request_table(_table(shuffled), CUT).equals(want)
    # at a cut of 0.9, d2's exchange lead no longer names it: its set is asked too
    higher = request_table(_table(LEADS), 0.9)
    assert "d2" in set(higher.column("deposit_address").to_pylist())
    assert higher.num_rows == want.num_rows + 3


def test_the_case_json_summary_counts_the_file() -> None:
    t = request_table(_table(LEADS), CUT)
    s = request_summary(t)
    assert s["file"] == "requests.csv" and "not an attribution" in s["what"]
    assert s["rows"] == 7 and s["deposits"] == 3
    assert s["sat"] == 500 + 400 + 700  # each deposit's amount once
    assert s["requests_per_deposit"] == round(7 / 3, 4)
    assert [e["exchange"] for e in s["exchanges"]] == ["borealis", "cobalt", "arcadia"]
    assert [e["deposits"] for e in s["exchanges"]] == [3, 2, 2]


def test_no_twin_lead_gives_a_file_with_its_header_only() -> None:
    plain = [r for r in LEADS if not r["candidate_exchanges"]]
    t = request_table(_table(plain), CUT)
    assert t.num_rows == 0 and t.column_names == REQUEST_COLUMNS
    assert request_table(_table([]), CUT).num_rows == 0
    s = request_summary(t)
    assert s["rows"] == s["deposits"] == s["sat"] == 0 and s["exchanges"] == []


#: d6: a wallet that fits arcadia alone, left unnamed because style names are off (with them on
#: the style rule names it, or leaves it with no set for want of evidence): a set of one
STYLE_ONLY = _lead("d6", "unidentified_service", 600, candidates="arcadia", cluster=14)


def test_a_set_of_one_exchange_is_asked_and_marked_style_only() -> None:
    t = request_table(_table([*LEADS, STYLE_ONLY]), CUT)
    before = request_table(_table(LEADS), CUT)
    rows = [r for r in t.to_pylist() if r["deposit_address"] == "d6"]
    assert len(rows) == 1
    (r,) = rows
    assert r["exchange"] == "arcadia" and r["set_size"] == 1 and r["ask_order"] == 1
    assert r["other_candidates"] == "" and r["wallet_cluster"] == 14
    assert r["request"] == REQUEST_KIND_STYLE_ONLY
    # the sets of two or more keep their kind; one row more in all
    assert {x["request"] for x in t.to_pylist() if x["deposit_address"] != "d6"} == {REQUEST_KIND}
    assert t.num_rows == before.num_rows + 1
    s = request_summary(t)
    assert s["deposits"] == 4 and s["style_only_deposits"] == 1
    assert REQUEST_KIND_STYLE_ONLY in s["style_only_what"]
    # without a set of one the summary has no such key (case.json as before)
    assert "style_only_deposits" not in request_summary(before)


def test_a_set_of_one_named_at_the_cut_is_not_asked() -> None:
    named = _lead("d6", "exchange", 50, entity="dunmore", confidence=0.8)
    t = request_table(_table([*LEADS, STYLE_ONLY, named]), CUT)
    assert "d6" not in set(t.column("deposit_address").to_pylist())
