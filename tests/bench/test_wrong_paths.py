"""bench/wrong_paths.py: a wrong row's path classed against the truth, and forward features."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import wrong_paths
from tests.bench.truth_files import payment, write_rows


def _lead(d: str, ent: str, conf: str, path: str, via: str = "tag") -> dict[str, str]:
    return {"deposit_address": d, "source_entity": ent, "source_category": "exchange",
            "confidence": conf, "amount_sat": "1000", "funding_txid": path.split(";")[0],
            "path": path, "attributed_via": via}  # fmt: skip


def test_classify_names_the_wallet_the_walk_went_through(tmp_path: Path) -> None:
    w = tmp_path / "w"
    write_rows(w / "world" / "truth" / "txs.csv", [
        {"txid": "tb", "wallet_id": "exchange-b", "kind": "exchange_withdrawal"},
        {"txid": "fa", "wallet_id": "exchange-a", "kind": "exchange_forward"},
        {"txid": "wa", "wallet_id": "exchange-a", "kind": "exchange_withdrawal"},
        {"txid": "pu", "wallet_id": "user-1", "kind": "payment"},
    ])  # fmt: skip
    write_rows(w / "world" / "truth" / "payments.csv",
               [payment("d1", "a"), payment("d2", "a"), payment("d3", "a"), payment("d4", "a")])  # fmt: skip
    write_rows(w / "case" / "leads.csv", [
        _lead("d1", "b", "0.99", "tb;fa;pu"),  # through A's forward, decides: at the cut
        _lead("d2", "b", "0.45", "tb;fa;pu"),  # the same, capped below it
        _lead("d3", "b", "0.99", "wa;pu", via="wallet_style"),  # A's own tx named B
        _lead("d4", "a", "0.99", "wa;pu"),  # right: not listed
    ])  # fmt: skip
    got = wrong_paths.classify("w", tmp_path)["classes"]
    assert got == {
        "at_cut through_a:exchange_forward": 1,
        "below_cut through_a:exchange_forward": 1,
        "at_cut funding_not_b:a:wallet_style": 1,
    }


def test_path_features_read_a_forward_and_its_unspent_other_output() -> None:
    # txs: 0 a batch (funding), 1 one-in two-out spending it, 2 the payment; outputs 2 per tx
    n_in, n_out = np.array([1, 1, 1]), np.array([2, 2, 2])
    first_out = np.array([0, 2, 4])
    spent = np.array([1, -1, 2, -1, -1, -1])  # tx 1's output 2 goes on to tx 2, 3 unspent
    size, batch = np.array([5, 1, 1]), np.array([True, False, False])
    got = wrong_paths.path_features([0, 1, 2], n_in, n_out, first_out, spent, size, batch)
    assert got[0] == {"1in2out", "single", "spends_funding", "prev_batch", "other_unspent"}
    assert got[1] == {"1in2out", "single"}  # the last hop: no output off the path to read
    spent[3] = 2  # the other output spent too: no longer unspent
    got = wrong_paths.path_features([0, 1, 2], n_in, n_out, first_out, spent, size, batch)
    assert "other_unspent" not in got[0]


def test_path_features_read_the_funding_fingerprint() -> None:
    n_in, n_out = np.array([1, 1]), np.array([2, 2])
    first_out, spent = np.array([0, 2]), np.array([1, -1, -1, -1])
    size, batch = np.array([5, 1]), np.array([True, False])
    fp = np.array([9, 9], np.uint8)
    got = wrong_paths.path_features([0, 1], n_in, n_out, first_out, spent, size, batch, fp)
    assert got[0] == {"1in2out", "single", "spends_funding", "prev_batch", "funding_fp"}
    fp[1] = 3
    got = wrong_paths.path_features([0, 1], n_in, n_out, first_out, spent, size, batch, fp)
    assert "funding_fp" not in got[0]
