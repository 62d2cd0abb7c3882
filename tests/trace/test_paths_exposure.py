"""Path search and exposure on a hand-built chain (docs/design/trace.md, worked examples).

No fees anywhere; BTC amounts. S is the block-1 miner (50).
t1: [S 50] -> A 10, B 40      t2: [A 10] -> T 10      t3: [B 40] -> C 40
t4: [C 40] -> T 30, D 10      t5: [T 10 (from t2)] -> E 6, F 4
t6: [E 6, F 4] -> G 10        (a multi-input spend: E and F form one cluster)

Paths S -> T: fewest hops S-A-T (t1, t2; bottleneck 10); largest flow S-B-C-T (t1, t3, t4;
bottleneck 30).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import outputs_of_tx
from chainsleuth.trace.exposure import exposure
from chainsleuth.trace.paths import find_path
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8


def _build(root: Path) -> dict[str, Any]:
    # A hand-built chain, not the session's simulated world: paths and exposure are checked on
    # a graph whose every hop is known.
    chain = ChainBuilder()
    cb = chain.add_block(miner=p2wpkh("S")).txs[0]
    t1 = spend([(cb, 0)], [(10 * BTC, p2wpkh("A")), (40 * BTC, p2wpkh("B"))])
    chain.add_block([t1])
    t2 = spend([(t1, 0)], [(10 * BTC, p2wpkh("T"))])
    t3 = spend([(t1, 1)], [(40 * BTC, p2wpkh("C"))])
    chain.add_block([t2, t3])
    t4 = spend([(t3, 0)], [(30 * BTC, p2wpkh("T")), (10 * BTC, p2wpkh("D"))])
    t5 = spend([(t2, 0)], [(6 * BTC, p2wpkh("E")), (4 * BTC, p2wpkh("F"))])
    chain.add_block([t4, t5])
    t6 = spend([(t5, 0), (t5, 1)], [(10 * BTC, p2wpkh("G"))])
    chain.add_block([t6])
    store_dir = root / "store"
    ingest_blocks_dir(chain.write(root / "blocks"), store_dir)
    store = Store.open(store_dir)
    out_address = np.asarray(store.array("output_address"))

    def address_of(tx: Any, vout: int) -> str:
        tx_id = store.tx_id_of(tx.txid_hex())
        assert tx_id is not None
        (name,) = store.addresses(
            out_address[outputs_of_tx(store, tx_id)[vout : vout + 1]]
        ).to_pylist()
        assert name is not None
        return name

    names = {
        "S": (cb, 0), "A": (t1, 0), "B": (t1, 1), "T": (t2, 0), "C": (t3, 0), "D": (t4, 1),
        "E": (t5, 0), "F": (t5, 1), "G": (t6, 0),
    }  # fmt: skip
    world: dict[str, Any] = {k: address_of(*v) for k, v in names.items()}
    world["ids"] = {k: store.address_id_of(v) for k, v in world.items()}
    world.update(dir=store_dir, t1=t1, t2=t2, t3=t3, t4=t4, t5=t5, t6=t6)
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    w = _build(tmp_path_factory.mktemp("paths"))
    from chainsleuth.cluster.engine import cluster_store

    cluster_store(w["dir"])
    return w


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same chain, unclustered, with C tagged "exchange" and E tagged "gambling"."""
    from chainsleuth.tags import add_tag

    w = _build(tmp_path_factory.mktemp("exposure"))
    add_tag(w["dir"], w["C"], label="Exch", category="exchange", actor="exch", source="test")
    add_tag(w["dir"], w["E"], label="Dice", category="gambling", actor="dice", source="test")
    return w


def _txids(result: dict[str, Any]) -> list[str]:
    return [h["txid"] for h in result["hops"]]


def test_fewest_hops_takes_the_two_hop_path(world: dict[str, Any]) -> None:
    r = find_path(world["dir"], world["S"], world["T"])
    assert r["found"] and r["n_hops"] == 2
    assert _txids(r) == [world["t1"].txid_hex(), world["t2"].txid_hex()]
    assert [(h["amount_in"], h["amount"]) for h in r["hops"]] == [
        (50 * BTC, 10 * BTC),
        (10 * BTC, 10 * BTC),
    ]
    assert [h["to"] for h in r["hops"]] == [world["ids"]["A"], world["ids"]["T"]]
    assert r["bottleneck"] == 10 * BTC


def test_largest_flow_takes_the_wider_three_hop_path(world: dict[str, Any]) -> None:
    r = find_path(world["dir"], world["S"], world["T"], mode="largest_flow")
    assert _txids(r) == [world[t].txid_hex() for t in ("t1", "t3", "t4")]
    assert [h["amount"] for h in r["hops"]] == [40 * BTC, 40 * BTC, 30 * BTC]
    assert r["bottleneck"] == 30 * BTC


def test_largest_flow_respects_max_hops(world: dict[str, Any]) -> None:
    r = find_path(world["dir"], world["S"], world["T"], mode="largest_flow", max_hops=2)
    assert _txids(r) == [world["t1"].txid_hex(), world["t2"].txid_hex()]
    assert r["bottleneck"] == 10 * BTC


def test_no_path_within_max_hops(world: dict[str, Any]) -> None:
    r = find_path(world["dir"], world["S"], world["T"], max_hops=1)
    assert not r["found"] and r["status"] == "no_path" and r["hops"] == []


def test_no_path_backwards_in_time(world: dict[str, Any]) -> None:
    assert not find_path(world["dir"], world["T"], world["S"])["found"]


def test_cluster_level_sums_what_a_tx_pays_the_whole_cluster(world: dict[str, Any]) -> None:
    address = find_path(world["dir"], world["S"], world["F"])
    assert _txids(address) == [world[t].txid_hex() for t in ("t1", "t2", "t5")]
    assert address["hops"][-1]["amount"] == 4 * BTC  # F alone
    cluster = find_path(world["dir"], world["S"], world["F"], level="cluster")
    assert _txids(cluster) == _txids(address)
    assert cluster["hops"][-1]["amount"] == 10 * BTC  # E and F are one cluster
    assert (
        cluster["target"]
        == find_path(world["dir"], world["E"], world["E"], level="cluster")["source"]
    )


def _amounts(side: dict[str, Any], which: str) -> dict[str, int]:
    return {k: v["amount"] for k, v in side[which].items()}


def test_exposure_without_tags_is_unattributed_or_coinbase(world: dict[str, Any]) -> None:
    r = exposure(world["dir"], world["T"], max_hops=3)
    assert r["received"]["total"] == 40 * BTC
    assert _amounts(r["received"], "direct") == {"unattributed": 40 * BTC}
    # back 3 hops: A's 10 reach S's coinbase at hop 2, C's 30 at hop 3 (through B)
    assert _amounts(r["received"], "indirect") == {"coinbase": 40 * BTC}
    r2 = exposure(world["dir"], world["T"], max_hops=2)
    assert _amounts(r2["received"], "indirect") == {
        "unattributed": 30 * BTC,
        "coinbase": 10 * BTC,
    }


def test_exposure_direct_received_by_category(tagged: dict[str, Any]) -> None:
    r = exposure(tagged["dir"], tagged["T"], max_hops=3)["received"]
    assert r["direct"] == {
        "exchange": {"amount": 30 * BTC, "share": 0.75},
        "unattributed": {"amount": 10 * BTC, "share": 0.25},
    }
    assert r["direct_actors"] == {"exch": 30 * BTC}


def test_exposure_indirect_stops_at_the_attributed_cluster(tagged: dict[str, Any]) -> None:
    r = exposure(tagged["dir"], tagged["T"], max_hops=3)["received"]
    assert r["indirect"] == {
        "exchange": {"amount": 30 * BTC, "share": 0.75},
        "coinbase": {"amount": 10 * BTC, "share": 0.25},
    }
    assert r["untraced_indirect"] == 0


def test_exposure_sent_forward_by_category(tagged: dict[str, Any]) -> None:
    r = exposure(tagged["dir"], tagged["T"], max_hops=3)["sent"]
    assert r["total"] == 10 * BTC  # T's 30 from t4 is unspent
    assert _amounts(r, "direct") == {"gambling": 6 * BTC, "unattributed": 4 * BTC}
    assert r["direct"]["gambling"]["share"] == 0.6
    assert _amounts(r, "indirect") == {"gambling": 6 * BTC, "unattributed": 4 * BTC}


def test_exposure_of_a_cluster_id(tagged: dict[str, Any]) -> None:
    cluster = tagged["ids"]["T"]  # unclustered: every address is its own cluster
    r = exposure(tagged["dir"], cluster, max_hops=1)
    assert r["level"] == "cluster" and r["received"]["total"] == 40 * BTC
    assert _amounts(r["received"], "direct") == {"exchange": 30 * BTC, "unattributed": 10 * BTC}


def test_exposure_in_a_time_window(world: dict[str, Any], tagged: dict[str, Any]) -> None:
    # Heights (the builder's genesis is 0): S's coinbase 1, t1 2, t2 and t3 3, t4 and t5 4,
    # t6 5.
    store = Store.open(world["dir"])
    tx_ids = {k: store.tx_id_of(world[k].txid_hex()) for k in ("t2", "t4", "t5", "t6")}
    heights = {k: int(store.graph.tx_height[t]) for k, t in tx_ids.items()}
    assert heights == {"t2": 3, "t4": 4, "t5": 4, "t6": 5}
    # until height 3: T received only t2's 10, which goes back to S's coinbase
    r = exposure(world["dir"], world["T"], max_hops=3, max_height=3)
    assert (r["min_height"], r["max_height"]) == (None, 3)
    assert r["received"]["total"] == 10 * BTC
    assert _amounts(r["received"], "indirect") == {"coinbase": 10 * BTC}
    assert r["sent"]["total"] == 0  # T spends in t5, at height 4
    # from height 4: t4's 30 came from C, whose coins arrived at height 3, before the window
    r = exposure(world["dir"], world["T"], max_hops=3, min_height=4)
    assert r["received"]["total"] == 30 * BTC
    assert _amounts(r["received"], "indirect") == {"outside_window": 30 * BTC}
    # sent inside [4, 4]: t5 pays E and F, who spend in t6 at height 5, after the window
    r = exposure(world["dir"], world["T"], max_hops=3, min_height=4, max_height=4)
    assert r["sent"]["total"] == 10 * BTC
    assert _amounts(r["sent"], "indirect") == {"outside_window": 10 * BTC}
    # an attributed counterparty stops the walk before the window's edge does
    r = exposure(tagged["dir"], tagged["T"], max_hops=3, min_height=4)
    assert r["received"]["direct"] == {"exchange": {"amount": 30 * BTC, "share": 1.0}}
    # a window covering the whole chain is no window
    whole = exposure(world["dir"], world["T"], max_hops=3, min_height=0, max_height=5)
    plain = exposure(world["dir"], world["T"], max_hops=3)
    assert whole["received"] == plain["received"] and whole["sent"] == plain["sent"]
