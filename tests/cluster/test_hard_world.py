"""The default policy on a small `hard` world (issue 11): precise, and no two exchanges joined.

The hard profile has exchanges that forward deposits to buyers with the change back to a reused
hot address of another script type; there the fresh-address and script-type rules agree on the
buyer's output. The policy before issue 11 (`conservative_fresh`) merged those; the default must
not. Scores are against the simulator's truth.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.cluster.evaluate import score, two_exchange_clusters
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Its own world, not the session's small one: the forwarding exchanges under test exist only
    # in the hard profile, and the tests re-cluster this store with each policy.
    from bench.world import simulate_world

    root = tmp_path_factory.mktemp("cluster-hard")
    simulate_world(root / "world", seed=1, scale="small", profile="hard")
    ingest_blocks_dir(root / "world" / "blocks", root / "store")
    store = Store.open(root / "store")
    ids = {
        r["address"]: r["address_id"]
        for r in store.sql(
            "SELECT DISTINCT address, address_id FROM outputs WHERE address IS NOT NULL"
        ).to_pylist()
    }
    wallet = np.full(store.counts["addresses"], -1, np.int64)
    exchange = np.zeros(store.counts["addresses"], np.bool_)
    names: dict[str, int] = {}
    with open(root / "world" / "truth" / "addresses.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["address"] in ids:
                a = ids[r["address"]]
                wallet[a] = names.setdefault(r["wallet_id"], len(names))
                exchange[a] = r["wallet_kind"] == "exchange"
    return {"store": root / "store", "wallet": wallet, "exchange": exchange}


def _cluster(hard: dict, policy: str) -> tuple[float, int, int]:
    """(pairwise precision, clusters holding two exchanges, merges joining two wallets)."""
    cluster_store(hard["store"], policy, from_scratch=True)
    clusters = Clusters(hard["store"])
    known = hard["wallet"] >= 0
    predicted = np.asarray(clusters.cluster_of)[known]
    owners, exchange = hard["wallet"][known], hard["exchange"][known]
    merges = clusters.merges()
    a = merges.column("address_a_id").to_numpy()
    b = merges.column("address_b_id").to_numpy()
    wrong = int((hard["wallet"][a] != hard["wallet"][b]).sum())
    s = score(predicted, owners)
    return s.pairwise_precision, two_exchange_clusters(predicted, owners, exchange), wrong


def test_default_policy_is_precise_on_a_hard_world(hard: dict) -> None:
    precision, mixed, wrong = _cluster(hard, "conservative")
    assert precision >= 0.99
    assert mixed == 0
    assert wrong == 0


def test_the_old_default_merged_wrongly_there(hard: dict) -> None:
    # The world does exercise the failure: two address-reading rules alone join two wallets.
    _, mixed, wrong = _cluster(hard, "conservative_fresh")
    assert wrong > 0 and mixed > 0


def test_gated_learned_change_keeps_the_default_precision(hard: dict) -> None:
    precision, mixed, wrong = _cluster(hard, "conservative_learned")
    assert precision >= 0.99 and mixed == 0 and wrong == 0
    ungated_precision, ungated_mixed, _ = _cluster(hard, "learned")
    assert ungated_mixed > 0 or ungated_precision < precision
