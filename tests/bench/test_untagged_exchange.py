"""bench/untagged_exchange.py: an untagged exchange's deposits named after another exchange are
counted apart, with the deciding row's rule and whose tx it starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import untagged_exchange
from tests.bench.truth_files import payment, write_rows


def _lead(d: str, ent: str, conf: str, funding: str, via: str) -> dict[str, str]:
    return {"deposit_address": d, "source_entity": ent, "source_category": "exchange",
            "confidence": conf, "amount_sat": "1000", "funding_txid": funding,
            "attributed_via": via}  # fmt: skip


def _header(path: Path, fields: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fields + "\n")


def test_wrong_names_for_the_untagged_exchange(tmp_path: Path) -> None:
    world, case = tmp_path / "world", tmp_path / "case"
    truth = world / "truth"
    write_rows(truth / "payments.csv", [
        payment("d1", "a"), payment("d2", "a"), payment("d3", "a"), payment("d3", "b"),
        payment("d4", "b"),
    ])  # fmt: skip
    write_rows(truth / "deposits.csv", [{"deposit_address": d} for d in ("d1", "d2", "d3", "d4")])
    write_rows(truth / "txs.csv", [
        {"txid": "ta", "wallet_id": "exchange-a", "kind": "exchange_withdrawal"},
        {"txid": "tb", "wallet_id": "exchange-b", "kind": "exchange_withdrawal"},
    ])  # fmt: skip
    write_rows(truth / "wallets.csv", [
        {"wallet_id": "exchange-a", "wallet_kind": "exchange", "entity": "a"},
        {"wallet_id": "exchange-b", "wallet_kind": "exchange", "entity": "b"},
    ])  # fmt: skip
    _header(truth / "cashouts.csv", "txid,destination_address,amount_sat,destination_exchange")
    write_rows(case / "leads.csv", [
        # a's own wallet named b by its style: wrong because a is untagged
        _lead("d1", "b", "0.9", "ta", "wallet_style"),
        # below the cut: not named
        _lead("d2", "b", "0.3", "ta", "wallet_style"),
        # a co-funder named: right
        _lead("d3", "b", "0.9", "tb", "tag"),
        _lead("d4", "b", "0.9", "tb", "tag"),
    ])  # fmt: skip
    _header(case / "cashouts.csv", "txid,destination_address,amount_sat,confidence")
    r = untagged_exchange.score(world, case, "a")
    assert (r["untagged_funded"], r["untagged_named"], r["untagged_wrong"]) == (3, 2, 1)
    assert r["untagged_wrong_named"] == {"b": 1}
    assert r["untagged_wrong_via"] == {"wallet_style<-untagged_exchange": 1}
    assert r["wrong"] == 1 and abs(r["lead_precision"] - 2 / 3) < 1e-9
    # d3 counts under a (its first payment): b's own deposits alone are all named
    assert r["tagged_recall"] == 1.0


def test_two_exchanges_untagged_at_once_count_as_one_set(tmp_path: Path) -> None:
    """`a+b`: a deposit either funded, named after an exchange that funded none of it, is wrong;
    a deposit named after the other untagged exchange's co-funding is right; tagged recall is
    over the rest; the split per actor is reported for several actors only."""
    world, case = tmp_path / "world", tmp_path / "case"
    truth = world / "truth"
    write_rows(truth / "payments.csv", [
        payment("d1", "a"), payment("d2", "b"), payment("d3", "a"), payment("d3", "b"),
        payment("d4", "c"), payment("d5", "c"), payment("d6", "b"),
    ])  # fmt: skip
    write_rows(truth / "deposits.csv", [{"deposit_address": f"d{i}"} for i in range(1, 7)])
    write_rows(truth / "txs.csv", [
        {"txid": "ta", "wallet_id": "exchange-a", "kind": "exchange_withdrawal"},
        {"txid": "tb", "wallet_id": "exchange-b", "kind": "exchange_withdrawal"},
        {"txid": "tc", "wallet_id": "exchange-c", "kind": "exchange_withdrawal"},
    ])  # fmt: skip
    write_rows(truth / "wallets.csv", [
        {"wallet_id": f"exchange-{x}", "wallet_kind": "exchange", "entity": x} for x in "abc"
    ])  # fmt: skip
    _header(truth / "cashouts.csv", "txid,destination_address,amount_sat,destination_exchange")
    write_rows(case / "leads.csv", [
        _lead("d1", "c", "0.9", "ta", "wallet_style"),  # a's deposit named c: wrong
        _lead("d2", "c", "0.9", "tb", "tag"),  # b's deposit named c: wrong
        _lead("d3", "c", "0.9", "ta", "wallet_style"),  # funded by a and b, named c: wrong once
        _lead("d4", "c", "0.9", "tc", "tag"),  # c's own: right
        _lead("d6", "c", "0.3", "tb", "wallet_style"),  # below the cut: not named
    ])  # fmt: skip
    _header(case / "cashouts.csv", "txid,destination_address,amount_sat,confidence")
    r = untagged_exchange.score(world, case, "a+b")
    assert (r["untagged_funded"], r["untagged_named"], r["untagged_wrong"]) == (4, 3, 3)
    assert r["untagged_wrong_named"] == {"c": 3}
    # every wrong row's funding tx is sent by one of the two untagged exchanges
    assert r["untagged_wrong_via"] == {"wallet_style<-untagged_exchange": 2,
                                       "tag<-untagged_exchange": 1}  # fmt: skip
    assert r["untagged_by_exchange"] == {"a": {"funded": 2, "wrong": 2},
                                         "b": {"funded": 3, "wrong": 2}}  # fmt: skip
    # c alone is tagged: d4 named, d5 not
    assert r["tagged_recall"] == 0.5
    # b alone untagged: a's deposits d1 are tagged deposits named wrong, not untagged ones
    one = untagged_exchange.score(world, case, "b")
    assert (one["untagged_funded"], one["untagged_wrong"]) == (3, 2)
    assert "untagged_by_exchange" not in one
    assert untagged_exchange.untagged_set("a+b") == {"a", "b"}
    assert untagged_exchange.untagged_set("-") == frozenset()
    with pytest.raises(SystemExit, match="each once"):
        untagged_exchange.untagged_set("a+a")


def test_pairs_are_every_pair_of_the_worlds_exchanges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "w" / "world").mkdir(parents=True)
    (tmp_path / "w" / "world" / "world.json").write_text('{"exchanges": ["c", "a", "b"]}')
    monkeypatch.setattr(untagged_exchange, "CACHE", tmp_path)
    assert untagged_exchange.pairs("w") == ["a+b", "a+c", "b+c"]
