"""The learned change classifier (rule 25): self-labels, accuracy against truth, determinism."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cluster import learned as lc
from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.cluster.evaluate import score
from chainsleuth.cluster.ranges import analyze_range
from chainsleuth.cluster.rules import POLICIES
from chainsleuth.store.graph import ChainGraph
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.chainbuilder import ChainBuilder, p2wpkh, spend

BTC = 10**8


def _tx_index(store: Store, txid_hex: str) -> int:
    i = store.tx_id_of(txid_hex)
    assert i is not None
    return i


def test_self_labels_on_a_hand_built_chain(tmp_path: Path) -> None:
    chain = ChainBuilder()
    alice = [chain.add_block(miner=p2wpkh("alice")) for _ in range(2)]  # one address, 2 coins
    carol = chain.add_block(miner=p2wpkh("carol"))
    dave = chain.add_block(miner=p2wpkh("dave"))
    # T: alice pays the shop, change to a fresh address...
    t_alice = spend([(alice[0].txs[0], 0)], [(20 * BTC, p2wpkh("shop")), (29 * BTC, p2wpkh("c1"))])
    # U: carol pays the shop and sends the change back to her own address (self-change).
    t_carol = spend([(carol.txs[0], 0)], [(10 * BTC, p2wpkh("shop2")), (39 * BTC, p2wpkh("carol"))])
    # V: dave pays two fresh addresses, neither ever spent with dave's coins.
    t_dave = spend([(dave.txs[0], 0)], [(10 * BTC, p2wpkh("x1")), (39 * BTC, p2wpkh("x2"))])
    chain.add_block([t_alice, t_carol, t_dave])
    # ... later spent together with alice's other coin: T's change is revealed.
    reveal = spend([(t_alice, 1), (alice[1].txs[0], 0)], [(78 * BTC, p2wpkh("elsewhere"))])
    chain.add_block([reveal])
    ingest_blocks_dir(chain.write(tmp_path / "blocks"), tmp_path / "store")
    store = Store.open(tmp_path / "store")
    arrays = store.graph
    root = lc.multi_input_roots(arrays, POLICIES["learned"], store.counts["addresses"])
    analysis, _ = analyze_range(arrays, 0, arrays.n_txs, -1, want_votes=False)
    label, how = lc.self_labels(arrays, root, 0, arrays.n_txs, analysis)
    first_out = arrays.tx_first_output
    ta, tc, td = (_tx_index(store, t.txid_hex()) for t in (t_alice, t_carol, t_dave))
    assert label[ta] == first_out[ta] + 1 and how[ta] == 3  # fresh change, revealed later
    assert label[tc] == first_out[tc] + 1 and how[tc] == 1  # self-change
    assert label[td] == -1  # nothing revealed
    assert label[_tx_index(store, reveal.txid_hex())] == -3  # one output: not eligible
    assert (label[: _tx_index(store, t_alice.txid_hex())] == -3).all()  # coinbases


def test_fit_logistic_separates_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    X = np.c_[np.ones(400), x]
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.2 * rng.normal(size=400)) > 0
    w = lc.fit_logistic(X, y)
    assert np.array_equal(w, lc.fit_logistic(X, y))
    assert w[1] > 2 and w[2] < -1
    assert ((lc.sigmoid(X @ w) > 0.5) == y).mean() > 0.88


def test_threshold_keeps_held_out_precision() -> None:
    best = np.linspace(0.99, 0.5, 1000)
    correct = np.ones(1000, np.bool_)
    correct[600:] = np.arange(400) % 2 == 0  # below 0.696 half are wrong
    thr, precision, fires = lc.choose_threshold(best, np.zeros(1000), correct, 0.5)
    assert precision >= lc.TARGET_PRECISION
    assert 600 <= fires < 700 and thr == best[fires - 1]
    # too few decisions: the rule stays off
    assert lc.choose_threshold(best[:50], np.zeros(50), correct[:50], 0.5)[0] > 1.0


# ------------------------------------------------------------------ a small simulated world
@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Its own world, not the session's small one (seed 1): the figures asserted below were
    # measured on seed 2, and the tests re-cluster this store from scratch.
    from bench.world import simulate_world

    root = tmp_path_factory.mktemp("learned")
    simulate_world(root / "world", seed=2, scale="small")
    ingest_blocks_dir(root / "world" / "blocks", root / "store")
    store = Store.open(root / "store")
    txids = np.asarray(store.array("tx_txid"))
    index = {bytes(t[::-1]).hex(): i for i, t in enumerate(txids)}
    kind: dict[int, str] = {}
    change: dict[int, set[int]] = {}
    with open(root / "world" / "truth" / "txs.csv", newline="") as f:
        for row in csv.DictReader(f):
            i = index.get(row["txid"])
            if i is not None:
                kind[i] = row["kind"]
                change[i] = {int(v) for v in row["change_vouts"].split(";") if v}
    ids = {
        r["address"]: r["address_id"]
        for r in store.sql(
            "SELECT DISTINCT address, address_id FROM outputs WHERE address IS NOT NULL"
        ).to_pylist()
    }
    with open(root / "world" / "truth" / "addresses.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["address"] in ids]
    return {
        "root": root,
        "store": root / "store",
        "kind": kind,
        "change": change,
        "address_ids": np.array([ids[r["address"]] for r in rows]),
        "owners": np.unique([r["wallet_id"] for r in rows], return_inverse=True)[1],
        "exchange_owner": np.array(
            [r["wallet_id"] if r["wallet_kind"] == "exchange" else "" for r in rows]
        ),
    }


def _model_and_decisions(store_dir: Path) -> tuple[lc.ChangeModel, lc.Decisions, ChainGraph]:
    store = Store.open(store_dir)
    arrays = store.graph
    fingerprint = lc.read_fingerprints(store, 0, arrays.n_txs)
    spent_by = np.asarray(store.array("output_spent_by_tx"))
    height = np.asarray(store.array("tx_height"))
    policy = POLICIES["learned"]
    model = lc.train_model(
        arrays, policy, store.counts["addresses"], spent_by, height, fingerprint, 6
    )
    d = lc.decide(arrays, model, policy, spent_by, height, fingerprint, 0, -1)
    return model, d, arrays


def test_classifier_precision_and_exchange_withdrawals(sim: dict) -> None:
    model, d, arrays = _model_and_decisions(sim["store"])
    assert model.enabled and model.stats["labelled"] > 1000
    first = arrays.tx_first_output
    right = np.array(
        [int(o - first[t]) in sim["change"].get(t, ()) for t, o in zip(d.tx, d.out, strict=True)]
    )
    assert right.shape[0] > 3000
    assert right.mean() >= 0.98  # measured 0.9957 (seed 2)
    analysis, _ = analyze_range(arrays, 0, arrays.n_txs, -1, want_votes=False)
    fresh_withdrawals = [
        t
        for t, k in sim["kind"].items()
        if k == "exchange_withdrawal"
        and sim["change"][t]
        and all(analysis.fresh[int(first[t]) + v] for v in sim["change"][t])
    ]
    fired_right = dict(zip(d.tx.tolist(), right.tolist(), strict=True))
    share = sum(1 for t in fresh_withdrawals if fired_right.get(t)) / len(fresh_withdrawals)
    # measured 80 of 159 = 0.50 (seed 2, habits drawn per exchange: dunmore alone takes fresh
    # change, batching every 2 blocks; 76 it does not fire on, 3 wrong); 233 of 315 = 0.74 on
    # the world of index-walked habits (cobalt). A figure of this world's one fresh-change
    # exchange, not an issue target: the precision above is the classifier's guard.
    assert share >= 0.45


def test_default_policy_precision_and_learned_policy_guard(sim: dict) -> None:
    for name in ("conservative", "conservative_learned"):
        cluster_store(sim["store"], name, from_scratch=True)
        predicted = np.asarray(Clusters(sim["store"]).cluster_of)[sim["address_ids"]]
        s = score(predicted, sim["owners"])
        assert s.pairwise_precision >= 0.99, name
        # no cluster holds addresses of two exchanges
        ex = sim["exchange_owner"] != ""
        pairs = {(int(c), w) for c, w in zip(predicted[ex], sim["exchange_owner"][ex], strict=True)}
        clusters = [c for c, _ in pairs]
        assert len(clusters) == len(set(clusters)), name
    manifest = Clusters(sim["store"]).manifest
    assert manifest["learned"]["model"]["threshold"] <= 1.0
    merges = Clusters(sim["store"]).merges().to_pydict()
    learned = [i for i, r in enumerate(merges["change_rules"]) if r == "learned_change"]
    assert learned and all(merges["rule"][i] == "change" for i in learned)


def test_explain_names_the_learned_rule(sim: dict) -> None:
    cluster_store(sim["store"], "learned", from_scratch=True)
    clusters = Clusters(sim["store"])
    m = clusters.merges().to_pydict()
    row = next(i for i, r in enumerate(m["change_rules"]) if r == "learned_change")
    a, b = int(m["address_a_id"][row]), int(m["address_b_id"][row])
    steps = clusters.explain(a, b)
    assert steps is not None and any(s["change_rules"] == "learned_change" for s in steps)


def test_same_chain_same_model_and_incremental_equals_one_pass(sim: dict, tmp_path: Path) -> None:
    m1, d1, _ = _model_and_decisions(sim["store"])
    m2, d2, _ = _model_and_decisions(sim["store"])
    assert m1.to_json() == m2.to_json()
    assert np.array_equal(d1.tx, d2.tx) and np.array_equal(d1.out, d2.out)
    # Incremental: a store of the first blk files, clustered (trains the model), then the rest.
    blocks = sim["root"] / "world" / "blocks"
    part = tmp_path / "part"
    part.mkdir()
    files = sorted(blocks.glob("blk*.dat"))
    for f in files[:3]:
        shutil.copy(f, part / f.name)
    store_dir = tmp_path / "store"
    ingest_blocks_dir(part, store_dir)
    first_txs = Store.open(store_dir).counts["txs"]
    cluster_store(store_dir, "conservative_learned")
    model = lc.ChangeModel.from_json(Clusters(store_dir).manifest["learned"]["model"])
    assert model.enabled
    for f in files[3:]:
        shutil.copy(f, part / f.name)
    ingest_blocks_dir(part, store_dir)
    assert Store.open(store_dir).counts["txs"] > first_txs
    report = cluster_store(store_dir, "conservative_learned")
    assert not report.from_scratch
    incremental = np.array(Clusters(store_dir).cluster_of)
    pending = Clusters(store_dir).manifest["learned"]
    report = cluster_store(store_dir, "conservative_learned", from_scratch=True, change_model=model)
    assert report.from_scratch
    assert np.array_equal(incremental, np.asarray(Clusters(store_dir).cluster_of))
    assert Clusters(store_dir).manifest["learned"] == pending
