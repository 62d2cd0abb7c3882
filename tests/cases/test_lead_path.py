"""A case lead's path as nodes and edges (cases/lead_path.py), on the hand-built chain of
tests/trace/test_paths_exposure.py (t1: [S 50] -> A 10, B 40; t3: [B 40] -> C 40;
t4: [C 40] -> T 30, D 10; t2: [A 10] -> T 10)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from chainsleuth.cases.lead_path import lead_graph, lead_txids, read_lead
from chainsleuth.cases.rows import LEAD_COLUMNS
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.trace.graph import FlowGraph
from tests.trace.test_paths_exposure import _build


def test_a_lead_is_drawn_along_its_largest_path(tmp_path: Path) -> None:
    w = _build(tmp_path / "chain")
    t1, t2, t3, t4 = (w[t].txid_hex() for t in ("t1", "t2", "t3", "t4"))
    # A lead funded by t1 (the "exchange" S paying B), to the deposit T; its largest path
    # runs t1, t3, t4 and a smaller one t1, t2.
    lead = dict.fromkeys(LEAD_COLUMNS, "")
    lead.update(
        deposit_address=w["T"], source_entity="exch", source_category="exchange",
        source_address=w["B"], funding_txid=t1, path=f"{t1};{t3};{t4}|{t1};{t2}",
    )  # fmt: skip
    files = tmp_path / "files"
    files.mkdir()
    with open(files / "leads.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, LEAD_COLUMNS)
        writer.writeheader()
        writer.writerow({**lead, "path": ""})  # no path: the funding tx alone
        writer.writerow(lead)
    row = read_lead(files, 1)
    assert lead_txids(row) == [t1, t3, t4]
    assert lead_txids(read_lead(files, 0)) == [t1]
    drawn = lead_graph(FlowGraph(w["dir"]), row)
    assert drawn["txids"] == [t1, t3, t4]
    flows = {(e["source"], e["target"], e["value"]) for e in drawn["edges"]}
    btc = 10**8
    assert flows == {
        (f"address:{w['S']}", f"tx:{t1}", 50 * btc),  # B is a payee of t1: its inputs go in
        (f"tx:{t1}", f"address:{w['B']}", 40 * btc),
        (f"address:{w['B']}", f"tx:{t3}", 40 * btc),
        (f"tx:{t3}", f"address:{w['C']}", 40 * btc),
        (f"address:{w['C']}", f"tx:{t4}", 40 * btc),
        (f"tx:{t4}", f"address:{w['T']}", 30 * btc),
    }
    source = next(n for n in drawn["nodes"] if n["id"] == f"address:{w['B']}")
    assert (source["entity"], source["category"]) == ("exch", "exchange")  # named by the lead
    with pytest.raises(ChainsleuthError, match="no lead 2 in this case"):
        read_lead(files, 2)
    with pytest.raises(ChainsleuthError, match="no leads file"):
        read_lead(tmp_path, 0)
