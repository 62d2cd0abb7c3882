"""bench/recall_misses.py: misses in a style-twin set counted apart from other causes, and
bench/twin_evidence.py: a fragment's counterparty outcome and the twin groups' cadences."""

from __future__ import annotations

import json
from pathlib import Path

from bench import recall_misses, twin_evidence
from tests.bench.truth_files import payment, write_rows


def _pay(d: str, ex: str) -> dict[str, str]:
    return payment(d, ex, coinjoin_kind="")


def _lead(d: str, ent: str, cat: str, conf: str, funding: str, cands: str = "") -> dict[str, str]:
    return {"deposit_address": d, "source_entity": ent, "source_category": cat,
            "confidence": conf, "amount_sat": "1000", "funding_txid": funding,
            "caution": "", "candidate_exchanges": cands}  # fmt: skip


def test_misses_in_a_twin_set_are_counted_apart(tmp_path: Path) -> None:
    w = tmp_path / "w"
    write_rows(w / "world" / "truth" / "txs.csv", [
        {"txid": "ta", "wallet_id": "exchange-a", "kind": "exchange_withdrawal"},
        {"txid": "tb", "wallet_id": "exchange-b", "kind": "exchange_withdrawal"},
    ])  # fmt: skip
    write_rows(w / "world" / "truth" / "payments.csv",
               [_pay("d1", "a"), _pay("d2", "a"), _pay("d3", "a"), _pay("d4", "b")])  # fmt: skip
    write_rows(w / "case" / "leads.csv", [
        # a's own wallet reached, a listed with b: a twin miss
        _lead("d1", "cluster:1", "unidentified_service", "0", "ta", "a;b"),
        # a's wallet reached, a set that leaves a out: a miss for another cause
        _lead("d2", "cluster:2", "unidentified_service", "0", "ta", "b;c"),
        # no set at all
        _lead("d3", "cluster:3", "unidentified_service", "0", "ta"),
        # named right: not a miss
        _lead("d4", "b", "exchange", "0.99", "tb"),
    ])  # fmt: skip
    got = recall_misses.classify("w", tmp_path)
    a = got["per_exchange"]["a"]
    assert a["twin_set:2"] == 1
    assert a["unident_own:exchange_withdrawal"] == 3  # the class itself is unchanged
    assert got["not_twin"] == {"unident_own:exchange_withdrawal": 2}
    assert got["not_twin_per_exchange"] == {"a": {"unident_own:exchange_withdrawal": 2}}
    worst = recall_misses.worst_table([got])
    # a: 0 of 3 named, 3 short of 0.90, 1 in a twin set, 2 its own wallet reached with no set
    assert "| w | a | 0 / 3 | 3 | 1 | 2 | 0 | 0 | 0 | 0 | 0 | 0 |" in worst
    table = recall_misses.twin_table([got])
    assert "| w | a | 0 / 3 | 3 | 1 (1 / 0) | 2 |" in table
    assert "| w | b | 1 / 1 | 0 | 0 (0 / 0) | 0 |" in table


def test_pick_names_one_candidate_only_when_the_others_share_nothing() -> None:
    assert twin_evidence.pick({"a": 0, "b": 0}, "a") == "none_shared"
    assert twin_evidence.pick({"a": 2, "b": 0}, "a") == "one_right"
    assert twin_evidence.pick({"a": 0, "b": 1}, "a") == "one_wrong"
    assert twin_evidence.pick({"a": 3, "b": 1}, "a") == "several_right"
    assert twin_evidence.pick({"a": 1, "b": 1}, "a") == "several_wrong_or_tie"
    assert twin_evidence.pick({"a": 1, "b": 3}, "a") == "several_wrong_or_tie"


def test_cadence_reads_each_twin_groups_schedules(tmp_path: Path) -> None:
    w = tmp_path / "w"
    (w / "world").mkdir(parents=True)
    (w / "case").mkdir(parents=True)
    habits = {"a": {"batch_every": 1, "sweep_every": 6}, "b": {"batch_every": 1, "sweep_every": 6},
              "c": {"batch_every": 2, "sweep_every": 5}}  # fmt: skip
    (w / "world" / "world.json").write_text(json.dumps({"exchange_habits": habits}))
    case = {"lookalike_exchanges": {"groups": [{"exchanges": ["a", "b"]}]}}
    (w / "case" / "case.json").write_text(json.dumps(case))
    assert twin_evidence.cadence("w", tmp_path) == [{"a": (1, 6), "b": (1, 6)}]


def test_same_block_rules_out_a_candidate_that_batched_with_the_fragment() -> None:
    mine = {10, 11}
    assert twin_evidence.same_block(mine, {"a": {1, 2}, "b": {11}}, "a") == "one_right"
    assert twin_evidence.same_block(mine, {"a": {10}, "b": {3}}, "a") == "one_wrong"
    assert twin_evidence.same_block(mine, {"a": {1}, "b": {2}}, "a") == "none_ruled_out"
    assert twin_evidence.same_block(mine, {"a": {1}, "b": {2}, "c": {10}}, "a") == "several_left"
    assert twin_evidence.same_block(mine, {"a": {10}, "b": {11}}, "a") == "all_ruled_out"
