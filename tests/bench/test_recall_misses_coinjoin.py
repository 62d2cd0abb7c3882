"""bench/recall_misses.py: a missed deposit's CoinJoin or unidentified-service row classed by
whose tx it stopped at and whether the walk went through the funding exchange's own tx."""

from __future__ import annotations

from pathlib import Path

from bench import recall_misses
from tests.bench.truth_files import write_rows as _write


def _pay(d: str, kind: str = "own_wallet") -> dict[str, str]:
    return {"deposit_address": d, "funding_exchange": "a", "path_kind": kind,
            "coinjoin_kind": "wasabi" if kind == "coinjoin" else "",
            "coinjoin_broke_trail": "false"}  # fmt: skip


def _lead(d: str, entity: str, category: str, path: str) -> dict[str, str]:
    return {"deposit_address": d, "source_entity": entity, "source_category": category,
            "confidence": "0.25" if category == "coinjoin" else "0", "amount_sat": "1000",
            "funding_txid": path.split(";")[0], "path": path, "caution": ""}  # fmt: skip


def test_classify_tells_batches_taken_for_mixes_from_walks_past_the_exchange(
    tmp_path: Path,
) -> None:
    w = tmp_path / "w"
    _write(w / "world" / "truth" / "txs.csv", [
        {"txid": "wa", "wallet_id": "exchange-a", "kind": "exchange_withdrawal"},
        {"txid": "fa", "wallet_id": "exchange-a", "kind": "exchange_forward"},
        {"txid": "mix", "wallet_id": "coordinator-wasabi", "kind": "wasabi_mix"},
        {"txid": "du", "wallet_id": "user-1", "kind": "deposit"},
        {"txid": "pu", "wallet_id": "payer-1", "kind": "payment"},
    ])  # fmt: skip
    _write(w / "world" / "truth" / "payments.csv",
           [_pay(f"d{k}") for k in range(1, 6)] + [_pay("d6", "coinjoin")])  # fmt: skip
    _write(w / "case" / "leads.csv", [
        _lead("d1", "wabisabi", "coinjoin", "wa;pu"),  # A's batch flagged as a mix
        _lead("d2", "wasabi1", "coinjoin", "mix;du;fa;pu"),  # past A's forward to a mix
        _lead("d3", "wasabi1", "coinjoin", "mix;pu"),  # a mix, A's tx not on the path
        _lead("d4", "cluster:7", "unidentified_service", "du;fa;pu"),  # past A's forward
        _lead("d5", "cluster:8", "unidentified_service", "du;pu"),  # another owner's
        _lead("d6", "wasabi1", "coinjoin", "mix;pu"),  # the truth path mixed, unbroken
    ])  # fmt: skip
    got = recall_misses.classify("w", tmp_path)["per_exchange"]["a"]
    classes = {k: v for k, v in got.items() if k not in ("eligible",) and ":" in k}
    classes = {k: v for k, v in classes.items() if not k.startswith("path:")}
    assert classes == {
        "coinjoin:stopped_on_other_payment:flagged_own_exchange_withdrawal": 1,
        "coinjoin:stopped_on_other_payment:through_own": 1,
        "coinjoin:stopped_on_other_payment:elsewhere": 1,
        "unident_other:user:deposit:through_own": 1,
        "unident_other:user:deposit": 1,
        "coinjoin:wasabi_unbroken": 1,
    }
    assert got["eligible"] == 6 and "hit" not in got
