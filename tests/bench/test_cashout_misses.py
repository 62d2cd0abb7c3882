"""bench/cashout_misses.py's per-world line against issue 11's cash-out target, on synthetic
results (never bench-output): which condition a world fails, recall, precision or the total."""

from __future__ import annotations

from typing import Any

from bench.cashout_misses import target_line


def _result(found: int, missed: int, wrong: int, reported_sat: int) -> dict[str, Any]:
    return {
        "world": "w",
        "true": found + missed,
        "found": [{}] * found,
        "wrong": [{}] * wrong,
        "misses": [{"cause": "forward_remainder_unspent"}] * missed,
        "true_sat": 1_000,
        "reported_sat": reported_sat,
    }


def test_a_world_that_meets_the_target_names_no_condition() -> None:
    assert target_line(_result(23, 2, 0, 930)).endswith("| meets | forward_remainder_unspent 2")


def test_recall_and_total_fail_apart() -> None:
    # 22 of 25 found (0.88) at a total of 0.95: recall alone; 23 of 25 (0.92) at 0.89: total alone
    assert "| recall | " in target_line(_result(22, 3, 0, 950))
    assert "| total | " in target_line(_result(23, 2, 0, 890))
    assert "| recall + total | " in target_line(_result(22, 3, 0, 880))


def test_wrong_rows_fail_precision_and_an_overcount_fails_the_total() -> None:
    line = target_line(_result(25, 0, 3, 1_120))
    assert "| precision + total | -" in line
