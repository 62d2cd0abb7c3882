"""bench.seed_diagnosis on the small simulated world: what it reads agrees with the truth."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from bench import seed_diagnosis as sd


def _truth_txs(world: Path) -> list[dict[str, str]]:
    with open(world / "truth" / "txs.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_own_counts_every_output_once_and_every_sweep(small_world: tuple[Path, Path]) -> None:
    world, store = small_world
    assert store.parent == world.parent  # World(name, root) reads root/name/{world,store}
    res = sd.own(world.parent.name, world.parent.parent)
    sweeps = Counter(
        r["wallet_id"].removeprefix(sd.EXCHANGE_PREFIX)
        for r in _truth_txs(world)
        if r["kind"] == "exchange_sweep"
    )
    assert set(res) == {
        r["wallet_id"].removeprefix(sd.EXCHANGE_PREFIX)
        for r in _truth_txs(world)
        if r["wallet_id"].startswith(sd.EXCHANGE_PREFIX)
    }
    for ex, v in res.items():
        assert v["own_outputs"] > 0
        assert sum(v["spent_by"].values()) == v["own_outputs"]
        assert sum(v["unspent_made_by"].values()) == v["spent_by"].get("unspent", 0)
        assert sum(v["sweep_height_mod_4"].values()) == sweeps[ex]
        assert set(v["sweep_height_mod_4"]) <= {0, 1, 2, 3}


def test_tags_carry_their_truth_role(small_world: tuple[Path, Path]) -> None:
    world, _store = small_world
    res = sd.tags(world.parent.name, world.parent.parent)
    with open(world / "truth" / "addresses.csv", newline="") as f:
        roles = Counter(
            (r["entity"], r["role"]) for r in csv.DictReader(f) if r["wallet_kind"] == "exchange"
        )
    assert res, "the world's TagPack tags every exchange"
    for ex, entries in res.items():
        assert entries
        for e in entries:
            assert roles[(ex, e["role"])] > 0
            assert e["paid_by"], "a tagged address was paid"
            assert len(e["spent_by"]) == len(e["paid_by"])  # one verdict per output
