"""Clustering on hand-built chains: each rule fires where it should, and only there."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from chainsleuth.cluster.engine import Clusters, cluster_store
from chainsleuth.store.ingest import ingest_blocks_dir
from chainsleuth.store.store import Store
from tests.chainbuilder import ChainBuilder, p2pkh, p2sh, p2tr, p2wpkh, spend

BTC = 10**8


def _address(store: Store, script: bytes) -> int:
    rows = store.sql(
        "SELECT address_id FROM outputs WHERE script_pubkey = ? LIMIT 1", [script]
    ).to_pylist()
    return int(rows[0]["address_id"])


# A hand-built chain, not the session's simulated world: the tests need these exact shapes.
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Coins for alice/bob/carol, a multi-input payment with change, and a Whirlpool round."""
    chain = ChainBuilder()
    funding = [chain.add_block(miner=p2wpkh(f"user{k}")) for k in range(8)]
    coins = [(block.txs[0], 0) for block in funding]
    # 1. A shop's address is used once before (so paying it is paying a reused address).
    shop_prior = spend([coins[7]], [(49 * BTC, p2wpkh("shop"))])
    chain.add_block([shop_prior])
    # 2. user0 + user1 (one wallet) pay the shop 60 BTC, change to a fresh address of their type.
    payment = spend(
        [coins[0], coins[1]], [(60 * BTC, p2wpkh("shop")), (39_9990_0000, p2wpkh("change01"))]
    )
    # 3. A Whirlpool-shaped round: 5 strangers, 5 equal outputs at the 0.05 BTC pool.
    whirl = spend(
        [coins[k] for k in range(2, 7)],
        [(5_000_000, p2wpkh(f"mix{k}")) for k in range(5)],
    )
    chain.add_block([payment, whirl])
    data = tmp_path_factory.mktemp("cluster-rules")
    ingest_blocks_dir(chain.write(data / "blocks"), data / "store")
    return {"dir": data / "store", "chain": chain, "payment": payment, "whirl": whirl}


def test_multi_input_merges_the_inputs_of_a_payment(world: dict) -> None:
    cluster_store(world["dir"], "multi_input", from_scratch=True)
    store, clusters = Store.open(world["dir"]), Clusters(world["dir"])
    a, b = _address(store, p2wpkh("user0")), _address(store, p2wpkh("user1"))
    assert clusters.cluster_of[a] == clusters.cluster_of[b]
    steps = clusters.explain(a, b)
    assert steps is not None and len(steps) == 1
    assert steps[0]["txid"] == world["payment"].txid_hex()
    assert steps[0]["rule"] == "multi_input"


def test_whirlpool_round_is_flagged_and_not_merged(world: dict) -> None:
    cluster_store(world["dir"], "multi_input", from_scratch=True)
    store, clusters = Store.open(world["dir"]), Clusters(world["dir"])
    ids = [_address(store, p2wpkh(f"user{k}")) for k in range(2, 7)]
    assert len({int(clusters.cluster_of[i]) for i in ids}) == 5
    flagged = store.sql("SELECT txid, rule FROM cluster_coinjoins").to_pylist()
    assert {"txid": world["whirl"].txid_hex(), "rule": "whirlpool"} in flagged


def test_conservative_policy_merges_fresh_same_type_change(world: dict) -> None:
    cluster_store(world["dir"], "conservative", from_scratch=True)
    store, clusters = Store.open(world["dir"]), Clusters(world["dir"])
    payer, change = _address(store, p2wpkh("user0")), _address(store, p2wpkh("change01"))
    shop = _address(store, p2wpkh("shop"))
    assert clusters.cluster_of[payer] == clusters.cluster_of[change]
    assert clusters.cluster_of[shop] != clusters.cluster_of[payer]
    steps = clusters.explain(payer, change)
    assert steps is not None and steps[-1]["rule"] == "change"
    assert "fresh_address" in steps[-1]["change_rules"]


def test_multi_input_policy_does_not_merge_change(world: dict) -> None:
    cluster_store(world["dir"], "multi_input", from_scratch=True)
    store, clusters = Store.open(world["dir"]), Clusters(world["dir"])
    payer, change = _address(store, p2wpkh("user0")), _address(store, p2wpkh("change01"))
    assert clusters.explain(payer, change) is None


def test_unrelated_addresses_are_not_linked(world: dict) -> None:
    cluster_store(world["dir"], "conservative", from_scratch=True)
    store, clusters = Store.open(world["dir"]), Clusters(world["dir"])
    a, b = _address(store, p2wpkh("user0")), _address(store, p2wpkh("user5"))
    assert clusters.explain(a, b) is None


def test_every_merge_has_a_transaction_and_a_rule(world: dict) -> None:
    cluster_store(world["dir"], "aggressive", from_scratch=True)
    merges = Store.open(world["dir"]).sql("SELECT * FROM cluster_merges").to_pylist()
    assert merges
    for m in merges:
        assert len(m["txid"]) == 64 and m["rule"] in ("multi_input", "change")
        assert 0 < m["confidence"] <= 1


def test_legacy_script_type_is_not_change_for_segwit_inputs(tmp_path: Path) -> None:
    chain = ChainBuilder()
    funding = [chain.add_block(miner=p2wpkh(f"w{k}")) for k in range(2)]
    chain.add_block([spend([(funding[1].txs[0], 0)], [(1 * BTC, p2pkh("legacy-shop"))])])
    pay = spend(
        [(funding[0].txs[0], 0)],
        [(10 * BTC, p2pkh("legacy-shop")), (39 * BTC + 123, p2pkh("fresh-legacy"))],
    )
    chain.add_block([pay])
    ingest_blocks_dir(chain.write(tmp_path / "blocks"), tmp_path / "store")
    cluster_store(tmp_path / "store", "script_type", from_scratch=True)
    store, clusters = Store.open(tmp_path / "store"), Clusters(tmp_path / "store")
    payer = _address(store, p2wpkh("w0"))
    assert clusters.explain(payer, _address(store, p2pkh("fresh-legacy"))) is None


def test_address_rules_alone_do_not_merge_next_to_a_hot_address(tmp_path: Path) -> None:
    """fresh_address + script_type pick the buyer when a service forwards a deposit and sends
    its change to its reused hot address (another script type): not merged by the default.
    The same shape paying a reused address that never spent in a batch is merged."""
    chain = ChainBuilder()
    hot = chain.add_block(miner=p2wpkh("hot"))
    deposit = chain.add_block(miner=p2pkh("deposit"))
    user = chain.add_block(miner=p2pkh("user"))
    shop_coin = chain.add_block(miner=p2pkh("someone"))
    # The hot address pays a batch (three outputs), change back to itself.
    batch = spend(
        [(hot.txs[0], 0)],
        [(5 * BTC, p2wpkh("c1")), (5 * BTC, p2wpkh("c2")), (39 * BTC, p2wpkh("hot"))],
    )
    shop_prior = spend([(shop_coin.txs[0], 0)], [(49 * BTC, p2wpkh("shop"))])
    chain.add_block([batch, shop_prior])
    forward = spend(
        [(deposit.txs[0], 0)],
        [(10_1234_5678, p2pkh("buyer")), (38_8765_4321, p2wpkh("hot"))],
    )
    payment = spend(
        [(user.txs[0], 0)],
        [(10_1234_5678, p2wpkh("shop")), (38_8765_4321, p2pkh("user-change"))],
    )
    chain.add_block([forward, payment])
    ingest_blocks_dir(chain.write(tmp_path / "blocks"), tmp_path / "store")
    store = Store.open(tmp_path / "store")
    dep, buyer = _address(store, p2pkh("deposit")), _address(store, p2pkh("buyer"))
    usr, change = _address(store, p2pkh("user")), _address(store, p2pkh("user-change"))
    cluster_store(tmp_path / "store", "conservative", from_scratch=True)
    clusters = Clusters(tmp_path / "store")
    assert clusters.explain(dep, buyer) is None
    steps = clusters.explain(usr, change)
    assert steps is not None and steps[-1]["change_rules"] == "fresh_address+script_type"
    cluster_store(tmp_path / "store", "conservative_fresh", from_scratch=True)
    assert Clusters(tmp_path / "store").explain(dep, buyer) is not None


def _flags_and_clusters(tmp_path: Path, chain: ChainBuilder) -> tuple[Store, Clusters, dict]:
    ingest_blocks_dir(chain.write(tmp_path / "blocks"), tmp_path / "store")
    cluster_store(tmp_path / "store", "multi_input", from_scratch=True)
    store, clusters = Store.open(tmp_path / "store"), Clusters(tmp_path / "store")
    flagged = {
        r["txid"]: r["rule"]
        for r in store.sql("SELECT txid, rule FROM cluster_coinjoins").to_pylist()
    }
    return store, clusters, flagged


def test_exchange_batch_paying_a_few_equal_amounts_is_not_a_coinjoin(tmp_path: Path) -> None:
    """Issue 11: an exchange batch of 3 hot coins paying 14 customers, 3 of them the same round
    amount, is one wallet's spend (its inputs merge); a small multi-denomination round of 10
    strangers with 14 outputs is still flagged `equal_output` and nothing in it merges."""
    chain = ChainBuilder()
    hot = [chain.add_block(miner=p2wpkh(f"hot{k}")) for k in range(3)]
    mixers = [chain.add_block(miner=p2wpkh(f"mixer{k}")) for k in range(10)]
    payees = [(1_000_000, p2wpkh(f"customer{k}")) for k in range(3)]
    payees += [(1_234_567 + 7_919 * k, p2wpkh(f"customer{k + 3}")) for k in range(10)]
    payees.append((100 * BTC, p2wpkh("hot-change")))
    batch = spend([(b.txs[0], 0) for b in hot], payees)
    # 14 outputs in denominations 3+3+2+2 and four changes: not JoinMarket-shaped (more
    # than 2n + 1 outputs for its 3 equal ones), but about one input per output
    values = [10**6] * 3 + [2 * 10**6] * 3 + [5 * 10**6] * 2 + [10**7] * 2
    values += [49 * BTC - 7_777 * k for k in range(4)]
    round_ = spend(
        [(b.txs[0], 0) for b in mixers], [(v, p2wpkh(f"out{k}")) for k, v in enumerate(values)]
    )
    chain.add_block([batch, round_])
    store, clusters, flagged = _flags_and_clusters(tmp_path, chain)
    assert batch.txid_hex() not in flagged
    assert flagged.get(round_.txid_hex()) == "equal_output"
    hot_ids = {int(clusters.cluster_of[_address(store, p2wpkh(f"hot{k}"))]) for k in range(3)}
    assert len(hot_ids) == 1
    mixer_ids = {int(clusters.cluster_of[_address(store, p2wpkh(f"mixer{k}"))]) for k in range(10)}
    assert len(mixer_ids) == 10


@pytest.mark.parametrize(
    ("n_pay", "mode_c", "repeated", "distinct_in", "flagged"),
    [
        (28, 3, 9, 8, False),  # an exchange batch: 8 coins, 28 payees, 3 of one amount
        (24, 3, 6, 226, False),  # a batch consolidating 226 hot coins into distinct amounts
        (24, 3, 12, 226, False),  # 226 coins into 24 payees, half of them round amounts
        (30, 4, 20, 40, True),  # 40 strangers' coins into 30 denominated outputs
        (12, 3, 6, 6, True),  # 6 strangers, 3 equal outputs and their changes
        (40, 6, 30, 30, True),  # a small multi-denomination round
        (40, 4, 14, 30, False),  # the same size with few shared values: a consolidating batch
    ],
)
def test_coinjoin_shape(
    n_pay: int, mode_c: int, repeated: int, distinct_in: int, flagged: bool
) -> None:
    from chainsleuth.cluster.kernels import coinjoin_shaped

    assert coinjoin_shaped(n_pay, mode_c, repeated, distinct_in) is flagged


CUSTOMER_TYPES = (p2pkh, p2sh, p2wpkh)  # customers withdraw to whatever address they have


@pytest.mark.parametrize(
    ("hot_type", "n_hot", "round_amounts"),
    [
        # 20 legacy hot coins into 24 payees, 12 of them four each of 0.01, 0.02, 0.05 BTC: the
        # multi-denomination shape by its counts (half the payees share a value)
        (p2pkh, 20, [1_000_000] * 4 + [2_000_000] * 4 + [5_000_000] * 4),
        (p2sh, 20, [1_000_000] * 4 + [2_000_000] * 4 + [5_000_000] * 4),
        # the same from P2WPKH coins: the customers' types tell it apart
        (p2wpkh, 20, [1_000_000] * 4 + [2_000_000] * 4 + [5_000_000] * 4),
        # 9 P2WPKH coins, 3 of 14 payees withdraw 0.01 BTC: the single-denomination shape
        (p2wpkh, 9, [1_000_000] * 3),
    ],
    ids=["p2pkh-multi", "p2sh-multi", "p2wpkh-multi", "p2wpkh-single"],
)
def test_exchange_batch_paying_round_amounts_is_merged(
    tmp_path: Path, hot_type, n_hot: int, round_amounts: list[int]
) -> None:
    """Issue 11: a batch of one exchange's hot coins paying customers of every address type
    round amounts is one wallet's spend: not flagged, and its inputs merge. Its counts alone
    pass the shape test (so the counts-only rule flagged it): only the script types decide."""
    from chainsleuth.cluster.kernels import coinjoin_shaped

    chain = ChainBuilder()
    hot = [chain.add_block(miner=hot_type(f"hot{k}")) for k in range(n_hot)]
    payees = [(v, CUSTOMER_TYPES[k % 3](f"customer{k}")) for k, v in enumerate(round_amounts)]
    n_other = (24 if n_hot == 20 else 14) - len(payees) - 1
    payees += [(1_234_567 + 7_919 * k, p2wpkh(f"buyer{k}")) for k in range(n_other)]
    payees.append((n_hot * BTC, hot_type("hot-change")))
    batch = spend([(b.txs[0], 0) for b in hot], payees)
    mixers = [(chain.add_block(miner=p2wpkh(f"mixer{k}")).txs[0], 0) for k in range(5)]
    whirl = spend(mixers, [(1_000_000, p2wpkh(f"postmix{k}")) for k in range(5)])
    chain.add_block([batch, whirl])
    counts = Counter(v for v, _ in payees)
    repeated = sum(c for c in counts.values() if c >= 2)
    assert coinjoin_shaped(len(payees), max(counts.values()), repeated, n_hot)
    store, clusters, flagged = _flags_and_clusters(tmp_path, chain)
    assert batch.txid_hex() not in flagged
    assert flagged.get(whirl.txid_hex()) == "whirlpool"  # the same chain's mix still is
    ids = {int(clusters.cluster_of[_address(store, hot_type(f"hot{k}"))]) for k in range(n_hot)}
    assert len(ids) == 1


def test_coinjoins_of_each_kind_are_flagged_and_not_merged(tmp_path: Path) -> None:
    """Whirlpool, Wasabi 1, JoinMarket and a small WabiSabi-like round (20 P2WPKH and P2TR
    strangers into standard denominations paid to both types, under the `wabisabi` rule's 50
    inputs): each flagged, no two of its inputs in one cluster."""
    chain = ChainBuilder()

    def coins(name: str, n: int, kind=p2wpkh) -> list[tuple]:
        return [(chain.add_block(miner=kind(f"{name}{k}")).txs[0], 0) for k in range(n)]

    rounds: dict[str, tuple[list[bytes], object]] = {}
    ins = coins("whirl", 5)
    rounds["whirlpool"] = (
        [p2wpkh(f"whirl{k}") for k in range(5)],
        spend(ins, [(1_000_000, p2wpkh(f"postmix{k}")) for k in range(5)]),
    )
    ins = coins("wasabi", 12)
    outs = [(10_000_000, p2wpkh(f"wmix{k}")) for k in range(12)]
    outs += [(39 * BTC - 1_000 * k, p2wpkh(f"wchange{k}")) for k in range(12)]
    outs.append((360_000, p2wpkh("wasabi-coordinator")))
    rounds["wasabi1"] = ([p2wpkh(f"wasabi{k}") for k in range(12)], spend(ins, outs))
    ins = coins("maker", 4, p2sh)
    outs = [(3_000_000, p2sh(f"jm{k}")) for k in range(4)]
    outs += [(46 * BTC + 3_000 * k, p2sh(f"jmchange{k}")) for k in range(4)]
    rounds["joinmarket"] = ([p2sh(f"maker{k}") for k in range(4)], spend(ins, outs))
    kinds = [p2wpkh if k % 3 else p2tr for k in range(20)]
    ins = [(chain.add_block(miner=kinds[k](f"ws{k}")).txs[0], 0) for k in range(20)]
    denominations = (100_000, 200_000, 500_000, 1_048_576, 1_594_323, 2_000_000)
    outs = [
        (d, (p2tr if k % 2 else p2wpkh)(f"wsout{d}-{k}")) for d in denominations for k in range(4)
    ]
    rounds["equal_output"] = ([kinds[k](f"ws{k}") for k in range(20)], spend(ins, outs))
    chain.add_block([tx for _, tx in rounds.values()])
    store, clusters, flagged = _flags_and_clusters(tmp_path, chain)
    for rule, (inputs, tx) in rounds.items():
        assert flagged.get(tx.txid_hex()) == rule
        ids = {int(clusters.cluster_of[_address(store, s)]) for s in inputs}
        assert len(ids) == len(inputs), rule


WASABI_TYPES = (p2wpkh, p2tr)  # the payees a Wasabi round's denominations go to
WABISABI_VALUES = [100_000, 200_000, 500_000, 1_000_000] * 15
WASABI1_VALUES = [10_000_000] * 12 + [1_234_567 + 7_919 * k for k in range(18)]


@pytest.mark.parametrize(
    ("coin_type", "n_in", "values", "payee_types", "rule"),
    [
        # 60 coins into 60 payees of 0.001/0.002/0.005/0.01 BTC: WabiSabi-sized and -shaped
        (p2pkh, 60, WABISABI_VALUES, CUSTOMER_TYPES, None),
        (p2sh, 60, WABISABI_VALUES, CUSTOMER_TYPES, None),
        # segwit hot coins paying customers of every type: the payees' types tell the batch
        (p2wpkh, 60, WABISABI_VALUES, CUSTOMER_TYPES, None),
        (p2wpkh, 60, WABISABI_VALUES, WASABI_TYPES, "wabisabi"),
        # 12 coins into 30 payees, 12 of them 0.1 BTC: Wasabi 1.x-shaped
        (p2sh, 12, WASABI1_VALUES, CUSTOMER_TYPES, None),
        (p2wpkh, 12, WASABI1_VALUES, CUSTOMER_TYPES, None),
        (p2wpkh, 12, WASABI1_VALUES, (p2wpkh,), "wasabi1"),
    ],
    ids=[
        "p2pkh-wabisabi",
        "p2sh-wabisabi",
        "p2wpkh-batch-wabisabi",
        "p2wpkh-wabisabi",
        "p2sh-wasabi1",
        "p2wpkh-batch-wasabi1",
        "p2wpkh-wasabi1",
    ],
)
def test_wasabi_rules_take_only_the_coins_wasabi_takes(
    tmp_path: Path, coin_type, n_in: int, values: list[int], payee_types, rule: str | None
) -> None:
    """Wasabi's coordinators register P2WPKH (and WabiSabi's P2TR) coins only, and pay their
    denominations to such addresses: the same shape spent from legacy or P2SH coins, or paid
    to customers of every type, is a service's batch, not flagged, its inputs merged."""
    chain = ChainBuilder()
    ins = [(chain.add_block(miner=coin_type(f"c{k}")).txs[0], 0) for k in range(n_in)]
    n_types = len(payee_types)
    tx = spend(ins, [(v, payee_types[k % n_types](f"o{k}")) for k, v in enumerate(values)])
    mixers = [(chain.add_block(miner=p2wpkh(f"mixer{k}")).txs[0], 0) for k in range(5)]
    whirl = spend(mixers, [(1_000_000, p2wpkh(f"postmix{k}")) for k in range(5)])
    chain.add_block([tx, whirl])
    store, clusters, flagged = _flags_and_clusters(tmp_path, chain)
    assert flagged.get(tx.txid_hex()) == rule
    ids = {int(clusters.cluster_of[_address(store, coin_type(f"c{k}"))]) for k in range(n_in)}
    assert len(ids) == (n_in if rule else 1)


def test_a_wabisabi_round_paying_a_few_other_types_stays_flagged(tmp_path: Path) -> None:
    """A round may carry a client's payment to an address of another type whose amount
    equals a denomination: up to a quarter of the value-sharing outputs of other types keep
    the round a WabiSabi round (its 60 strangers never merged); more is a batch."""
    for n_foreign, rule in ((15, "wabisabi"), (16, None)):
        chain = ChainBuilder()
        ins = [(chain.add_block(miner=p2wpkh(f"c{k}")).txs[0], 0) for k in range(60)]
        outs = [
            (v, (p2pkh if k < n_foreign else WASABI_TYPES[k % 2])(f"o{k}"))
            for k, v in enumerate(WABISABI_VALUES)
        ]
        tx = spend(ins, outs)
        mixers = [(chain.add_block(miner=p2wpkh(f"mixer{k}")).txs[0], 0) for k in range(5)]
        whirl = spend(mixers, [(1_000_000, p2wpkh(f"postmix{k}")) for k in range(5)])
        chain.add_block([tx, whirl])
        root = tmp_path / str(n_foreign)
        root.mkdir()
        _, _, flagged = _flags_and_clusters(root, chain)
        assert flagged.get(tx.txid_hex()) == rule
