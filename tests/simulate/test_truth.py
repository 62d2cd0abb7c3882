"""The ground truth agrees with the chain: owners, payments and their trails, cash-outs, tags."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import yaml

from chainsleuth.core.address import decode_address, script_pubkey
from chainsleuth.parse.serialize import Tx
from tests.simulate.conftest import Chain


def _spk(address: str) -> bytes:
    kind, payload, networks = decode_address(address)
    assert "regtest" in networks
    return script_pubkey(kind, payload)


def _txs_by_id(chain: Chain) -> dict[str, Tx]:
    return {tx.txid_hex(): tx for _, tx in chain.main_txs()}


def test_every_address_paid_on_chain_has_exactly_one_owner(chain: Chain, truth: dict) -> None:
    owners = Counter(_spk(row["address"]) for row in truth["addresses"])
    assert max(owners.values()) == 1
    for h, tx in chain.main_txs():
        for o in tx.outputs:
            if h > 0 and not o.script_pubkey.startswith(b"\x6a"):
                assert o.script_pubkey in owners


def test_owners_use_the_documented_vocabulary(truth: dict) -> None:
    kinds = {row["wallet_kind"] for row in truth["addresses"]}
    assert kinds == {
        "exchange", "pool", "miner", "customer", "user", "merchant", "multisig", "privacy",
        "maker", "coordinator", "service", "admin",
    }  # fmt: skip
    types = {row["script_type"] for row in truth["addresses"]}
    assert types == {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"}


def test_exchange_deposit_addresses_are_never_reused(truth: dict) -> None:
    deposits = {row["address"] for row in truth["addresses"] if row["role"] == "deposit"}
    assert deposits
    assert all(int(r["n_outputs"]) == 1 for r in truth["balances"] if r["address"] in deposits)
    assert all(row["account"] for row in truth["addresses"] if row["role"] == "deposit")


def test_txs_csv_lists_every_main_chain_transaction_once(chain: Chain, truth: dict) -> None:
    assert [row["txid"] for row in truth["txs"]] == [tx.txid_hex() for _, tx in chain.main_txs()]


def test_change_outputs_pay_the_spending_wallet(chain: Chain, truth: dict) -> None:
    owner = {_spk(r["address"]): r["wallet_id"] for r in truth["addresses"]}
    txs = _txs_by_id(chain)
    checked = 0
    for row in truth["txs"]:
        if not row["change_vouts"] or row["kind"].endswith("_mix"):
            continue
        tx = txs[row["txid"]]
        for v in row["change_vouts"].split(";"):
            assert owner[tx.outputs[int(v)].script_pubkey] == row["wallet_id"]
            checked += 1
    assert checked > 5000


def test_seed_list_holds_every_service_deposit_address_paid_or_not(
    world_dir: Path, truth: dict
) -> None:
    with (world_dir / "seeds" / "deposits.csv").open() as fh:
        seeds = [row["address"] for row in csv.DictReader(fh)]
    assert seeds == [row["deposit_address"] for row in truth["deposits"]]
    service = {r["address"] for r in truth["addresses"] if r["role"] == "service_deposit"}
    assert set(seeds) == service


def test_most_service_deposit_addresses_are_never_paid(truth: dict) -> None:
    paid = [row for row in truth["deposits"] if row["paid"] == "true"]
    assert 100 <= len(paid) < len(truth["deposits"]) / 2


def test_every_payment_is_on_chain_to_its_deposit_address(chain: Chain, truth: dict) -> None:
    txs = _txs_by_id(chain)
    for p in truth["payments"]:
        out = txs[p["txid"]].outputs[int(p["vout"])]
        assert out.script_pubkey == _spk(p["deposit_address"])
        assert out.value == int(p["amount_sat"])


def test_payment_trails_run_from_the_exchange_withdrawal_to_the_deposit(
    chain: Chain, truth: dict, tx_kinds: dict
) -> None:
    txs = _txs_by_id(chain)
    for p in truth["payments"]:
        path = p["path_txids"].split(";")
        assert len(path) == int(p["hops"])
        assert path[0] == p["funding_txid"] and path[-1] == p["txid"]
        funding = tx_kinds[path[0]]
        assert funding["kind"] == "exchange_withdrawal"
        assert funding["wallet_id"] == f"exchange-{p['funding_exchange']}"
        for parent, child in zip(path, path[1:], strict=False):
            assert any(i.prev_txid[::-1].hex() == parent for i in txs[child].inputs)


def test_path_kinds_match_their_hops_and_coinjoins(truth: dict, tx_kinds: dict) -> None:
    for p in truth["payments"]:
        path = p["path_txids"].split(";")
        kinds = [tx_kinds[t]["kind"] for t in path]
        has_cj = any(k.endswith("_mix") for k in kinds)
        assert has_cj == (p["path_kind"] == "coinjoin")
        if p["path_kind"] == "direct":
            assert p["hops"] == "1"
        if p["coinjoin_kind"]:
            assert f"{p['coinjoin_kind']}_mix" in kinds
        if p["coinjoin_broke_trail"] == "true":
            assert has_cj


def test_every_path_kind_and_coinjoin_kind_occurs(truth: dict) -> None:
    paths = Counter(p["path_kind"] for p in truth["payments"])
    assert set(paths) == {"direct", "own_wallet", "peel_chain", "coinjoin"}
    cj = Counter(p["coinjoin_kind"] for p in truth["payments"] if p["coinjoin_kind"])
    assert set(cj) == {"whirlpool", "wasabi", "joinmarket"}
    trails = Counter(p["coinjoin_broke_trail"] for p in truth["payments"] if p["coinjoin_kind"])
    assert trails["true"] > 0 and trails["false"] > 0  # some pay from toxic change
    assert max(int(p["hops"]) for p in truth["payments"]) >= 4


def test_deposits_csv_summarises_the_payments(truth: dict) -> None:
    by_address = Counter(p["deposit_address"] for p in truth["payments"])
    for row in truth["deposits"]:
        assert int(row["n_payments"]) == by_address.get(row["deposit_address"], 0)
        assert (row["paid"] == "true") == (row["deposit_address"] in by_address)
    assert any(v > 1 for v in by_address.values())  # some users pay twice


def test_cashouts_pay_exchange_deposits_credited_to_the_administrator(
    chain: Chain, truth: dict
) -> None:
    owners = {r["address"]: r for r in truth["addresses"]}
    txs = _txs_by_id(chain)
    assert truth["cashouts"]
    for c in truth["cashouts"]:
        o = owners[c["destination_address"]]
        assert (o["role"], o["account"]) == ("deposit", "service-admin")
        assert o["entity"] == c["destination_exchange"]
        out = txs[c["txid"]].outputs[int(c["vout"])]
        assert out.script_pubkey == _spk(c["destination_address"])
        assert out.value == int(c["amount_sat"])
    assert {c["hops"] for c in truth["cashouts"]} == {"1", "2"}


def test_tagpack_tags_a_handful_of_addresses_per_exchange(world_dir: Path, truth: dict) -> None:
    pack = yaml.safe_load((world_dir / "tags" / "exchanges.yaml").read_text())
    for field in ("title", "creator", "description", "currency", "lastmod", "tags"):
        assert field in pack
    owners = {r["address"]: r for r in truth["addresses"]}
    per_exchange = Counter(t["actor"] for t in pack["tags"])
    assert set(per_exchange) == {
        r["entity"] for r in truth["addresses"] if r["wallet_kind"] == "exchange"
    }
    assert all(3 <= n <= 5 for n in per_exchange.values())
    for t in pack["tags"]:
        assert t["category"] == "exchange"
        assert owners[t["address"]]["entity"] == t["actor"]
        assert owners[t["address"]]["account"] not in ("service-admin",)


def test_tag_confidences_and_categories_are_graphsense_taxonomy_ids(world_dir: Path) -> None:
    # the taxonomy chainsleuth embeds (equal to the shared GraphSense files: tests/tags), so
    # neither check depends on ../shared/data being there
    from chainsleuth.tags.taxonomy import Taxonomy

    tax = Taxonomy.default()
    for name in ("exchanges.yaml", "coinjoin.yaml"):
        pack = yaml.safe_load((world_dir / "tags" / name).read_text())
        assert pack["tags"]
        for t in pack["tags"]:
            assert t["confidence"] in tax.confidence
            assert t["category"] in tax.concepts


def test_coinjoin_pack_tags_the_coordinator_fee_addresses(world_dir: Path, truth: dict) -> None:
    pack = yaml.safe_load((world_dir / "tags" / "coinjoin.yaml").read_text())
    roles = {r["address"]: r["role"] for r in truth["addresses"]}
    assert {roles[t["address"]] for t in pack["tags"]} == {"coordinator_fee"}
    assert len(pack["tags"]) == 5
