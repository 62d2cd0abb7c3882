"""`bench.lookalike_agreement`: the warning's groups against the truth's style twins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.lookalike_agreement import compare
from tests.bench.test_style_twins import BASE


def _world(
    root: Path, habits: dict[str, Any], groups: list[list[str]], unreadable: list[str]
) -> Path:
    (root / "world").mkdir(parents=True)
    (root / "case").mkdir()
    (root / "world" / "world.json").write_text(json.dumps({"exchange_habits": habits}))
    read = {n: {"hot_type": {"value": "p2sh", "read": True, "txs": 3}} for n in habits}
    section = {
        "groups": [{"exchanges": g, "alike_on": [], "not_read": {}} for g in groups],
        "unreadable": unreadable,
        "exchanges": read,
    }
    (root / "case" / "case.json").write_text(json.dumps({"lookalike_exchanges": section}))
    return root


def test_agreement_counts_false_alarms_misses_and_unreadable_pairs(tmp_path: Path) -> None:
    habits = {
        "arcadia": BASE,
        "borealis": BASE,
        "cobalt": BASE,
        "dunmore": {**BASE, "change_last": False},
    }
    # the truth: arcadia+borealis+cobalt; the warning groups arcadia+dunmore (a false alarm),
    # misses arcadia+borealis, and borealis showed nothing
    r = compare(_world(tmp_path / "w", habits, [["arcadia", "dunmore"]], ["borealis"]))
    assert r["truth_fires"] and r["fires"]
    assert r["pairs"] == {
        "truth": 3, "chain": 1, "both": 0, "false_alarm": 1, "missed": 3, "missed_unreadable": 2,
    }  # fmt: skip
    kinds = {tuple(d["pair"]): d["chain"] for d in r["disagreements"]}
    assert kinds == {
        ("arcadia", "borealis"): "one showed no habit",
        ("arcadia", "cobalt"): "told apart",
        ("arcadia", "dunmore"): "alike",
        ("borealis", "cobalt"): "one showed no habit",
    }
    same = compare(_world(tmp_path / "v", habits, [["arcadia", "borealis", "cobalt"]], []))
    assert same["pairs"]["false_alarm"] == same["pairs"]["missed"] == 0
    assert same["disagreements"] == []
