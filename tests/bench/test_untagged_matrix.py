"""The accuracy matrix's view of worlds with an untagged exchange (profiles *_untagged): the
column of the main table and the worst-first table with the same chain's all-tagged figures."""

from __future__ import annotations

from typing import Any

from bench.accuracy_matrix import _row, render_untagged


def _score(precision: float, wrong: int, deposits: int) -> dict[str, Any]:
    return {
        "lead_precision": precision, "lead_recall": 0.9, "cashout_precision": 1.0,
        "cashout_recall": 0.95, "cashout_total_ratio": 0.97, "coinjoin_attributed_above_cap": 0,
        "unpaid_attributed": 0, "untagged_named_wrong": wrong, "untagged_deposits": deposits,
        "cashouts_found": 20, "cashout_exchange_wrong": 3,
        "per_exchange": {"a": {"eligible": 10, "correct": 9, "recall": 0.9}},
    }  # fmt: skip


def _lead(d: str, exchange: str, correct: bool, style: bool, untagged: bool) -> dict[str, Any]:
    row = {"deposit_address": d, "exchange": exchange, "amount_sat": 5, "confidence": 0.9,
           "correct": correct, "via_style": style}  # fmt: skip
    return {**row, "untagged": True} if untagged else row


def _run(profile: str, seed: int, score: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"profile": profile, "scale": "small", "seed": seed, "n_txs": 1, "score": score,
            "leads": [], "twin_exchanges": [], "style_twins": [], **extra}  # fmt: skip


def test_untagged_table_worst_first_with_the_all_tagged_world() -> None:
    leads = [
        _lead("d1", "a", False, True, True),  # named wrong by a style match
        _lead("d2", "a", False, False, True),  # named wrong by a chain link
        _lead("d3", "a", True, True, False),  # a tagged exchange's deposit
    ]
    bad = _run("hard_untagged", 3, _score(0.75, 2, 4), leads=leads, untagged_exchanges=["b"])
    good = _run("hard_untagged", 1, _score(1.0, 0, 5), untagged_exchanges=["c"])
    base = _run("hard", 3, {**_score(0.99, 0, 0), "lead_recall": 0.5})
    table = render_untagged([good, bad, base]).splitlines()
    assert len(table) == 4  # header, rule, the two untagged worlds (worst first)
    assert table[2].startswith("| hard_untagged small 3 | b | 2 / 4 | 1 | 0.750 | 0.900 |")
    assert "| 0.990, 0.500 |" in table[2]  # hard small 3, every exchange tagged
    assert "| 0.97 | 3 / 20 |" in table[2]
    assert table[3].startswith("| hard_untagged small 1 | c | 0 / 5 | 0 | 1.000 |")
    assert "| — |" in table[3]  # hard small 1 not among the results
    # the main table's last column
    assert _row(bad)[-1] == "b: 2 / 4" and _row(base)[-1] == "—"
