"""The matrix's style-twin column: exchanges alike on every habit the style rules read."""

from __future__ import annotations

from bench.accuracy_matrix import style_twins

BASE = {
    "wallet_stype": "p2sh",
    "deposit_stype": "p2wpkh",
    "never_reuse": True,
    "fresh_change": True,
    "change_last": True,
    "deducts_fee": True,
    "batch_every": 2,
    "sweep_every": 5,
}


def test_cadences_and_reuse_do_not_split_twins_but_a_read_habit_does() -> None:
    habits = {
        "arcadia": BASE,
        "borealis": {**BASE, "batch_every": 1},
        "cobalt": {**BASE, "sweep_every": 6, "never_reuse": False},
        "dunmore": {**BASE, "change_last": False},
        "ember": {**BASE, "change_last": False, "deposit_stype": "p2sh"},
    }
    assert style_twins(habits) == [["arcadia", "borealis", "cobalt"]]
    assert style_twins({}) == []
    assert style_twins({"arcadia": BASE, "dunmore": habits["dunmore"]}) == []
