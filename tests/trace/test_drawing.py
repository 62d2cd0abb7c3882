"""Nodes and edges to draw (trace/drawing.py) on the hand-built chain of
tests/trace/test_paths_exposure.py, where every hop is known:
t1: [S 50] -> A 10, B 40; t2: [A 10] -> T 10; t3: [B 40] -> C 40; t4: [C 40] -> T 30, D 10;
t5: [T 10] -> E 6, F 4; t6: [E 6, F 4] -> G 10."""

from __future__ import annotations

from typing import Any

import pytest

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.trace.drawing import path_graph, trace_graph, tx_chain_graph
from chainsleuth.trace.graph import FlowGraph
from chainsleuth.trace.paths import find_path
from chainsleuth.trace.rows import trace_rows
from tests.trace.test_paths_exposure import BTC, _build


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    w = _build(tmp_path_factory.mktemp("drawing"))
    w["g"] = FlowGraph(w["dir"])
    return w


def _flows(drawing: dict[str, Any], w: dict[str, Any]) -> set[tuple[str, str, int]]:
    """Edges as (from, to, BTC) with names for addresses and t1..t6 for txs."""
    names = {f"address:{w[k]}": k for k in "SABCDTEFG"}
    names |= {f"tx:{w[t].txid_hex()}": t for t in ("t1", "t2", "t3", "t4", "t5", "t6")}
    return {(names[e["source"]], names[e["target"]], e["value"] // BTC) for e in drawing["edges"]}


def test_a_chain_of_txs_joined_by_the_outputs_each_next_one_spends(world: dict[str, Any]) -> None:
    w = world
    txids = [w[t].txid_hex() for t in ("t1", "t3", "t4")]
    d = tx_chain_graph(w["g"], txids, source_address=w["S"], end_address=w["T"])
    assert _flows(d, w) == {
        ("S", "t1", 50), ("t1", "B", 40), ("B", "t3", 40), ("t3", "C", 40), ("C", "t4", 40),
        ("t4", "T", 30),
    }  # fmt: skip
    assert {n["id"] for n in d["nodes"]} == {e["source"] for e in d["edges"]} | {
        e["target"] for e in d["edges"]
    }
    edge = d["edges"][0]
    assert edge["id"] == f"{edge['source']}->{edge['target']}@{edge['txid']}"
    assert edge["n_txs"] == 1 and edge["first_height"] == edge["last_height"]
    # a source that is not among the first tx's inputs (the exchange's payee): every input
    d = tx_chain_graph(w["g"], [w["t4"].txid_hex()], source_address=w["D"], end_address=w["T"])
    assert _flows(d, w) == {("C", "t4", 40), ("t4", "T", 30)}
    # two inputs of one address into one tx are one edge, values summed
    d = tx_chain_graph(w["g"], [w["t5"].txid_hex(), w["t6"].txid_hex()], end_address=w["G"])
    assert _flows(d, w) == {
        ("T", "t5", 10), ("t5", "E", 6), ("t5", "F", 4), ("E", "t6", 6), ("F", "t6", 4),
        ("t6", "G", 10),
    }  # fmt: skip
    with pytest.raises(ChainsleuthError):
        tx_chain_graph(w["g"], [])


def test_a_path_drawn_hop_by_hop(world: dict[str, Any]) -> None:
    w = world
    result = find_path(w["dir"], w["S"], w["T"], "largest_flow")
    d = path_graph(w["g"], result)
    assert _flows(d, w) == {("S", "B", 40), ("B", "C", 40), ("C", "T", 30)}
    assert [h["to_node"] for h in result["hops"]] == [f"address:{w[k]}" for k in "BCT"]
    assert [e["txid"] for e in d["edges"]] == [h["txid"] for h in result["hops"]]


def test_trace_rows_drawn_from_the_seed(world: dict[str, Any]) -> None:
    w = world
    rows = trace_rows(w["dir"], w["T"], "back", "haircut", max_hops=2, stops=False)
    d = trace_graph(w["g"], rows, w["T"], "back")
    seed = f"address:{w['T']}"
    # backward: edges point the way the money went, so into the seed; together they carry
    # every row's amount
    into_seed = [e for e in d["edges"] if e["target"] == seed]
    assert sum(e["value"] for e in into_seed) == sum(r["amount"] for r in rows) == 40 * BTC
    assert sum(e["n_rows"] for e in into_seed) == len(rows)
    ends = {f"address:{r['address']}" for r in rows}
    assert ends <= {n["id"] for n in d["nodes"]}
    assert not [e for e in d["edges"] if e["source"] == seed]
