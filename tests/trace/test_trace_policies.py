"""Tracing on a hand-built chain: each policy's worked example from docs/design/trace.md.

fund_a: coinbase(50) -> A 3, change 47        fund_b: coinbase(50) -> B 1, change 49
mix:    [A 3, B 1]   -> C 2, D 2  (no fee)
hop:    [C 2]        -> E 2
"""

from __future__ import annotations

import numpy as np
import pytest

from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.lookups import outputs_of_addresses
from chainsleuth.store.store import Store
from chainsleuth.trace.engine import (
    FLAG_LOW_CONFIDENCE,
    FLAG_POISON,
    TraceOptions,
    TraceResult,
    outputs_of_tx,
    trace_back,
    trace_forward,
)
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8


# A hand-built chain, not the session's simulated world: the tests need these exact shapes.
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    chain = ChainBuilder()
    cb_a = chain.add_block(miner=p2wpkh("fa")).txs[0]
    cb_b = chain.add_block(miner=p2wpkh("fb")).txs[0]
    fund_a = spend([(cb_a, 0)], [(3 * BTC, p2wpkh("A")), (47 * BTC, p2wpkh("fa-change"))])
    fund_b = spend([(cb_b, 0)], [(1 * BTC, p2wpkh("B")), (49 * BTC, p2wpkh("fb-change"))])
    chain.add_block([fund_a, fund_b])
    mix = spend([(fund_a, 0), (fund_b, 0)], [(2 * BTC, p2wpkh("C")), (2 * BTC, p2wpkh("D"))])
    chain.add_block([mix])
    hop = spend([(mix, 0)], [(2 * BTC, p2wpkh("E"))])
    chain.add_block([hop])
    data = tmp_path_factory.mktemp("trace-policies")
    ingest_blocks_dir(chain.write(data / "blocks"), data / "store")
    store = Store.open(data / "store")

    def outs(tx: object) -> np.ndarray:
        tx_id = store.tx_id_of(tx.txid_hex())  # type: ignore[attr-defined]
        assert tx_id is not None
        return outputs_of_tx(store, tx_id)

    def tx_id(tx: object) -> int:
        found = store.tx_id_of(tx.txid_hex())  # type: ignore[attr-defined]
        assert found is not None
        return found

    return {
        "dir": data / "store",
        "store": store,
        "a": int(outs(fund_a)[0]),
        "b": int(outs(fund_b)[0]),
        "c": int(outs(mix)[0]),
        "d": int(outs(mix)[1]),
        "e": int(outs(hop)[0]),
        "mix": tx_id(mix),
        "hop": tx_id(hop),
        "cb_a": tx_id(cb_a),
        "cb_b": tx_id(cb_b),
    }


def _by_output(result: TraceResult) -> dict[int, int]:
    totals: dict[int, int] = {}
    for o, a in zip(result.output.tolist(), result.amount.tolist(), strict=True):
        totals[o] = totals.get(o, 0) + a
    return totals


def test_haircut_splits_back_by_input_value_share(world: dict) -> None:
    r = trace_back(world["dir"], [world["c"]], policy="haircut", max_hops=1)
    assert _by_output(r) == {world["a"]: 150_000_000, world["b"]: 50_000_000}
    assert r.kind_names() == ["max_hops", "max_hops"]
    assert r.path(0).tolist() == [world["mix"]]


def test_poison_gives_every_input_the_full_amount(world: dict) -> None:
    r = trace_back(world["dir"], [world["c"]], policy="poison", max_hops=1)
    assert _by_output(r) == {world["a"]: 2 * BTC, world["b"]: 2 * BTC}
    assert (r.flags & FLAG_POISON).all()


def test_fifo_pays_the_first_output_from_the_first_input(world: dict) -> None:
    r = trace_back(world["dir"], [world["c"]], policy="fifo", max_hops=1)
    assert _by_output(r) == {world["a"]: 2 * BTC}
    r = trace_back(world["dir"], [world["d"]], policy="fifo", max_hops=1)
    assert _by_output(r) == {world["a"]: 1 * BTC, world["b"]: 1 * BTC}


def test_amounts_carry_through_hops_to_the_coinbases(world: dict) -> None:
    r = trace_back(world["dir"], [world["e"]], policy="haircut")
    assert r.kind_names() == ["coinbase", "coinbase"]
    assert dict(zip(r.tx.tolist(), r.amount.tolist(), strict=True)) == {
        world["cb_a"]: 150_000_000,
        world["cb_b"]: 50_000_000,
    }
    assert r.hops.tolist() == [3, 3]
    assert r.path(0).tolist()[:2] == [world["hop"], world["mix"]]


def test_max_hops_stops_the_walk(world: dict) -> None:
    r = trace_back(world["dir"], [world["e"]], max_hops=1)
    assert r.kind_names() == ["max_hops"] and r.output.tolist() == [world["c"]]


def test_min_value_drops_small_amounts(world: dict) -> None:
    r = trace_back(world["dir"], [world["c"]], max_hops=1, min_value=100_000_000)
    assert _by_output(r) == {world["a"]: 150_000_000}


def test_a_stop_cluster_ends_the_walk_as_the_source(world: dict) -> None:
    store = world["store"]
    cluster_of = np.arange(store.counts["addresses"], dtype=np.int64)
    address_a = int(np.asarray(store.array("output_address"))[world["a"]])
    r = trace_back(world["dir"], [world["c"]], stop_clusters=[address_a], cluster_of=cluster_of)
    kinds = dict(zip(r.output.tolist(), r.kind_names(), strict=True))
    assert kinds[world["a"]] == "cluster"
    assert _by_output(r)[world["a"]] == 150_000_000
    assert "coinbase" in r.kind_names()  # B's share goes on to its coinbase


def test_a_coinjoin_stops_the_walk_unless_walked(world: dict) -> None:
    is_coinjoin = np.zeros(world["store"].counts["txs"], np.bool_)
    is_coinjoin[world["mix"]] = True
    r = trace_back(world["dir"], [world["c"]], is_coinjoin=is_coinjoin)
    assert r.kind_names() == ["coinjoin"] and r.tx.tolist() == [world["mix"]]
    assert r.amount.tolist() == [2 * BTC]
    r = trace_back(world["dir"], [world["c"]], is_coinjoin=is_coinjoin, walk_coinjoins=True)
    assert r.kind_names() == ["coinbase", "coinbase"]
    assert (r.flags & FLAG_LOW_CONFIDENCE).all()


def test_forward_haircut_splits_by_output_share_to_unspent_outputs(world: dict) -> None:
    r = trace_forward(world["dir"], [world["a"]], policy="haircut")
    assert _by_output(r) == {world["e"]: 150_000_000, world["d"]: 150_000_000}
    assert set(r.kind_names()) == {"unspent"}


def test_forward_fifo_and_poison(world: dict) -> None:
    r = trace_forward(world["dir"], [world["a"]], policy="fifo")
    assert _by_output(r) == {world["e"]: 2 * BTC, world["d"]: 1 * BTC}
    r = trace_forward(world["dir"], [world["b"]], policy="fifo")
    assert _by_output(r) == {world["d"]: 1 * BTC}
    r = trace_forward(world["dir"], [world["a"]], policy="poison")
    assert _by_output(r) == {world["e"]: 2 * BTC, world["d"]: 2 * BTC}


def test_forward_coinjoin_is_a_destination(world: dict) -> None:
    is_coinjoin = np.zeros(world["store"].counts["txs"], np.bool_)
    is_coinjoin[world["mix"]] = True
    r = trace_forward(world["dir"], [world["a"]], is_coinjoin=is_coinjoin)
    assert r.kind_names() == ["coinjoin"] and r.tx.tolist() == [world["mix"]]


def test_outputs_of_addresses_finds_receiving_outputs(world: dict) -> None:
    store = world["store"]
    address_a = int(np.asarray(store.array("output_address"))[world["a"]])
    assert outputs_of_addresses(store, [address_a]).tolist() == [world["a"]]


def test_min_fraction_drops_small_shares_and_counts_them(world: dict) -> None:
    # C's 2 BTC come 3/4 from A and 1/4 from B: at min_fraction 0.3 B's share is not followed
    r = trace_back(world["dir"], [world["c"]], policy="haircut", max_hops=1, min_fraction=0.3)
    assert _by_output(r) == {world["a"]: 150_000_000}
    assert r.dropped.tolist() == [50_000_000]
    whole = trace_back(world["dir"], [world["c"]], policy="haircut", max_hops=1)
    assert whole.dropped.tolist() == [0]


def test_a_share_below_the_floor_still_stops_at_a_stop_cluster(world: dict) -> None:
    # C's 2 BTC come 1/4 from B: below min_fraction 0.3, dropped; but when B's address is a
    # stop (an exchange batch of 200 inputs splits a deposit into 200 such shares), the share
    # is kept and ends there, and nothing is counted as dropped
    store = world["store"]
    cluster_of = np.arange(store.counts["addresses"], dtype=np.int64)
    address_b = int(np.asarray(store.array("output_address"))[world["b"]])
    opts = {"policy": "haircut", "max_hops": 2, "min_fraction": 0.3, "cluster_of": cluster_of}
    r = trace_back(world["dir"], [world["c"]], stop_clusters=[address_b], **opts)
    kinds = dict(zip(r.output.tolist(), r.kind_names(), strict=True))
    assert kinds[world["b"]] == "cluster" and _by_output(r)[world["b"]] == 50_000_000
    assert r.dropped.tolist() == [0]
    # a stop elsewhere: B's share is dropped as before
    address_a = int(np.asarray(store.array("output_address"))[world["a"]])
    other = trace_back(world["dir"], [world["c"]], stop_clusters=[address_a], **opts)
    assert world["b"] not in _by_output(other) and other.dropped.tolist() == [50_000_000]
    # forward, a share below the floor is dropped whatever it pays (cash-outs read amounts)
    # (A's 3 BTC go half to C, half to D: both below 0.6, C's address a stop)
    address_c = int(np.asarray(store.array("output_address"))[world["c"]])
    fwd = trace_forward(world["dir"], [world["a"]], policy="haircut", max_hops=2,
                        min_fraction=0.6, cluster_of=cluster_of,
                        stop_clusters=[address_c])  # fmt: skip
    assert world["c"] not in _by_output(fwd) and fwd.dropped.tolist() == [3 * BTC]


def test_a_seed_over_its_entry_cap_stops_as_seed_limit(world: dict) -> None:
    # E <- hop <- C <- mix <- {A, B}: the mix's two inputs do not fit a cap of 2 entries
    r = trace_back(world["dir"], [world["e"], world["a"]], max_hops=5, max_entries_per_seed=2)
    rows = {(int(s), k) for s, k in zip(r.seed.tolist(), r.kind_names(), strict=True)}
    assert (0, "seed_limit") in rows
    assert (1, "coinbase") in rows  # the other seed's walk is not affected
    assert not r.hit_limit
    assert r.amount[r.seed == 0].sum() == 2 * BTC  # the capped amount is reported, not lost


def test_a_time_window_stops_the_walk_at_its_edges(world: dict) -> None:
    heights = np.asarray(world["store"].array("tx_height"))
    hop_height, mix_height = int(heights[world["hop"]]), int(heights[world["mix"]])
    assert mix_height < hop_height
    back = trace_back(world["dir"], [world["e"]], max_hops=5, min_height=hop_height)
    assert back.kind_names() == ["time_window"] and back.output.tolist() == [world["c"]]
    assert back.amount.tolist() == [2 * BTC]  # C's value was there before the window opened
    whole = trace_back(world["dir"], [world["e"]], max_hops=5)
    assert set(whole.kind_names()) == {"coinbase"}
    forward = trace_forward(world["dir"], [world["a"]], max_hops=5, max_height=mix_height - 1)
    assert forward.kind_names() == ["time_window"] and forward.output.tolist() == [world["a"]]


def test_trace_options_and_keyword_settings_are_one_thing(world: dict) -> None:
    # C <- mix <- {A, B}: fifo at one hop gives A 2 BTC; haircut splits 3:1
    fifo = TraceOptions(policy="fifo", max_hops=1)
    by_object = trace_back(world["dir"], [world["c"]], fifo)
    by_keywords = trace_back(world["dir"], [world["c"]], policy="fifo", max_hops=1)
    assert _by_output(by_object) == _by_output(by_keywords) == {world["a"]: 2 * BTC}
    # a keyword replaces that one field of the object, the object itself is left as it was
    haircut = trace_back(world["dir"], [world["c"]], fifo, policy="haircut")
    assert _by_output(haircut) == {world["a"]: 150_000_000, world["b"]: 50_000_000}
    assert fifo.policy == "fifo"
    with pytest.raises(TypeError):
        trace_forward(world["dir"], [world["a"]], fifo, max_hop=1)  # a misspelt setting


def test_one_wallet_txs_are_those_whose_inputs_share_a_cluster(world: dict) -> None:
    from chainsleuth.trace.exposure import one_wallet_txs

    store = world["store"]
    own = np.arange(store.counts["addresses"], dtype=np.int64)  # every address its own cluster
    assert not one_wallet_txs(store, own)[world["mix"]]  # A and B: two wallets
    assert one_wallet_txs(store, own)[world["hop"]]  # one input: one wallet
    assert not one_wallet_txs(store, own)[world["cb_a"]]  # a coinbase spends no one's coins
    address_of = np.asarray(store.array("output_address")).astype(np.int64)
    merged = own.copy()
    merged[address_of[world["b"]]] = merged[address_of[world["a"]]]
    assert one_wallet_txs(store, merged)[world["mix"]]
