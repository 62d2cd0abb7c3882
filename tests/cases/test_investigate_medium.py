"""The issue's accuracy target, on the medium simulated world (seed 7, about 200k txs):
lead precision >= 0.98 and recall >= 0.90 for every path kind that does not pass a CoinJoin.

Measured (docs/investigations.md): precision 1.000; recall direct 0.982, own_wallet 0.982,
peel_chain 0.970; cash-outs 134 of 134 and nothing else. About 30 s, most of it simulating.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.world import build_world
from chainsleuth.cases.investigate import investigate
from tests.cases.test_investigate import _rows, _scores

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Its own world, not the session's small one: the issue's target is stated on the medium
    scale (seed 7), and the measured figures above are of this world."""
    root = tmp_path_factory.mktemp("medium-case")
    built = build_world(root, seed=7, scale="medium")
    investigate(built.store, built.world / "seeds" / "deposits.csv", root / "case", report=False)
    return root / "world", root / "case"


def test_medium_world_meets_the_lead_targets(medium: tuple[Path, Path]) -> None:
    world, case = medium
    scores = _scores(world, case)
    for kind in ("direct", "own_wallet", "peel_chain"):
        s = scores[kind]
        assert s["n"] > 300, kind
        assert s["correct"] / s["named"] >= 0.98, (kind, s)  # measured 1.000
        assert s["correct"] / s["n"] >= 0.90, (kind, s)  # measured 0.970 .. 0.982


def test_medium_world_cashouts(medium: tuple[Path, Path]) -> None:
    world, case = medium
    truth = {(r["txid"], r["destination_address"]) for r in _rows(world / "truth" / "cashouts.csv")}
    with open(case / "cashouts.csv", newline="") as f:
        found = {(r["txid"], r["destination_address"]) for r in csv.DictReader(f)}
    assert len(truth) > 100 and truth == found  # measured 134 of 134, nothing else
