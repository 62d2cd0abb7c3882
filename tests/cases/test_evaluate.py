"""`cases.evaluate.score_case` on a hand-built truth and case: an untagged exchange's deposits
(truth/untagged_exchanges.csv) are out of recall, and a lead naming another exchange for them
is wrong in precision and counted in `untagged_named_wrong`; without the file the same case
scores as before."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from chainsleuth.cases.evaluate import lead_outcomes, score_case, untagged_exchanges


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


#: (deposit, funding exchange, path kind, CoinJoin broke the trail) per payment, in order
PAYMENTS = [
    ("d1", "a", "direct", "false"),  # tagged a: named a, right
    ("d2", "b", "direct", "false"),  # tagged b: not named, a miss
    ("d3", "u", "direct", "false"),  # untagged u: named a, wrong
    ("d4", "u", "direct", "false"),  # untagged u: named below the cut only
    ("d5", "u", "peel_chain", "false"),  # u and b co-funded: named b, right
    ("d5", "b", "direct", "false"),
    ("d6", "u", "coinjoin", "true"),  # only through a trail-breaking CoinJoin: not u's deposit
]
#: (deposit, exchange, amount, confidence) lead rows
LEADS = [
    ("d1", "a", 100, 0.9),
    ("d3", "a", 100, 0.8),
    ("d4", "a", 100, 0.3),
    ("d5", "b", 100, 0.7),
    ("d6", "a", 100, 0.2),
]


@pytest.fixture
def world_and_case(tmp_path: Path) -> tuple[Path, Path]:
    world, case = tmp_path / "world", tmp_path / "case"
    _write(world / "truth" / "payments.csv",
           ["deposit_address", "funding_exchange", "path_kind", "coinjoin_broke_trail"],
           [list(p) for p in PAYMENTS])  # fmt: skip
    _write(world / "truth" / "deposits.csv", ["deposit_address"],
           [[f"d{i}"] for i in range(1, 8)])  # d7 never paid  # fmt: skip
    _write(world / "truth" / "cashouts.csv",
           ["txid", "destination_address", "destination_exchange", "amount_sat"],
           [["t1", "x1", "u", 500], ["t2", "x2", "u", 300], ["t3", "x3", "a", 200]])  # fmt: skip
    _write(case / "leads.csv",
           ["deposit_address", "source_category", "source_entity", "amount_sat", "confidence",
            "hops"],
           [[d, "exchange", e, amt, c, 1] for d, e, amt, c in LEADS])  # fmt: skip
    _write(case / "cashouts.csv",
           ["txid", "destination_address", "destination_entity", "amount_sat", "confidence"],
           [["t1", "x1", "cluster:7", 500, 0.9], ["t2", "x2", "a", 300, 0.9],
            ["t3", "x3", "a", 200, 0.9]])  # fmt: skip
    return world, case


def test_untagged_exchange_deposits_are_out_of_recall_and_wrong_leads_count(
    world_and_case: tuple[Path, Path],
) -> None:
    world, case = world_and_case
    # every exchange tagged: the world as score_case read it before the knob
    before = score_case(world, case)
    assert untagged_exchanges(world) == frozenset()
    assert (before.named, before.correct, before.eligible) == (3, 2, 5)
    assert before.per_exchange["u"] == {"eligible": 3, "correct": 1, "recall": 1 / 3}
    assert (before.untagged_deposits, before.untagged_named_wrong) == (0, 0)
    _write(world / "truth" / "untagged_exchanges.csv", ["exchange"], [["u"]])
    s = score_case(world, case)
    assert untagged_exchanges(world) == frozenset({"u"})
    # precision as before: d3 named a is wrong, d5 named b (a co-funder) is right
    assert (s.named, s.correct, s.lead_precision) == (3, 2, pytest.approx(2 / 3))
    # d3, d4 and d5 are u's deposits (d6's only payment broke its trail): out of recall
    assert (s.untagged_deposits, s.untagged_named_wrong) == (3, 1)
    assert s.eligible == 2 and s.lead_recall == 0.5
    assert s.per_exchange == {
        "a": {"eligible": 1, "correct": 1, "recall": 1.0},
        "b": {"eligible": 1, "correct": 0, "recall": 0.0},
    }
    # the rest as before
    assert (s.coinjoin_only_deposits, s.coinjoin_attributed_above_cap) == (1, 0)
    assert s.unpaid_attributed == 0 and s.cashout_recall == s.cashout_precision == 1.0
    # cash-outs: to u named as an unnamed cluster (not right, not wrong), to u named a (a
    # subpoena to the wrong exchange), to a named a (right); the same with or without the file
    assert (s.cashout_exchange_right, s.cashout_exchange_wrong) == (1, 1)
    assert (before.cashout_exchange_right, before.cashout_exchange_wrong) == (1, 1)


def test_lead_outcomes_mark_untagged_rows_and_calibrate_rescores_like_score_case(
    world_and_case: tuple[Path, Path],
) -> None:
    from bench.calibrate import lead_scores

    world, case = world_and_case
    assert all("untagged" not in o for o in lead_outcomes(world, case))
    _write(world / "truth" / "untagged_exchanges.csv", ["exchange"], [["u"]])
    rows = lead_outcomes(world, case)
    assert {o["deposit_address"] for o in rows if o.get("untagged")} == {"d3", "d4", "d5"}
    s = score_case(world, case)
    run = {"score": s.as_dict(), "leads": rows}
    conf = np.array([o["confidence"] for o in rows if not o["through_coinjoin"]])
    assert lead_scores(run, conf) == (s.lead_precision, s.lead_recall, s.named, s.correct)
