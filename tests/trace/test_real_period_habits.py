"""Wallet habits read per period on the real shared blocks (issue 11; `trace.services`
`PeriodStyles`, docs/design/trace.md "Habits per period"): Binance's tagged batches (GraphSense
packs) sort their outputs and sign v1 with locktime 0 in block 481,829 (Aug 2017), leave them
unsorted and sign v2 with the locktime set in 514,485 and 514,492 (Mar 2018), and sign v1
locktime 0 final in 866,342 (2024). Read by `bench.real_habits` (the parser's txs laid out
and counted as `wallet_styles` counts them)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from bench.real_habits import BLOCKS, batch_rows, entity_styles, exchange_tags
from chainsleuth.trace import services

FP, ORDER = services.STYLE_HABITS.index("fingerprint"), services.STYLE_HABITS.index("output_order")


@cache
def rows() -> tuple[dict, ...]:
    if not (BLOCKS / "raw").is_dir():  # the shared data is part of the test suite
        pytest.fail(f"{BLOCKS} missing: ../shared/data is incomplete")
    return tuple(batch_rows(exchange_tags()))


def _binance() -> list[dict]:
    return [dict(r) for r in rows() if r["entity"] == "binance"]


def test_binance_changed_software_and_each_half_year_reads_one_fingerprint() -> None:
    names, s = entity_styles(list(rows()), services.STYLE_PERIOD_MONTHS)
    b = names.index("binance")
    assert s.periods is not None
    # over every block its batches' fingerprint is mixed: no habit to compare
    assert services.style_habits(s, np.array([b]))[FP][0] == services.STYLE_MIXED
    active = s.periods.active(np.array([b]))[0]
    windows = s.periods.first + np.flatnonzero(active)
    assert windows.tolist() == [95, 96, 109]  # 2017 H2, 2018 H1, 2024 H2
    per_window = services.style_habits(
        s.periods.styles, b * s.periods.n_periods + (windows - s.periods.first)
    )
    assert (per_window[FP] >= 0).all() and len(set(per_window[FP].tolist())) == 3
    # 2018 H1: three unsorted batches, the named threshold met: unsorted
    assert per_window[ORDER].tolist()[1] == 0
    _habits, changed = services._period_habits(s, np.arange(len(names)), False)
    assert bool(changed[b])
    # bitfinex (two batches, one half-year) shows no change: its pooled read stands
    assert not bool(changed[names.index("bitfinex")])


def test_the_pooled_read_rules_binance_out_of_its_own_2017_batches() -> None:
    # Binance's two 2017 batches taken as an untagged fragment, its tags' other batches (2018,
    # 2024) as the named wallet: pooled, its 4 unsorted batches read "unsorted" and the
    # fragment's 2 sorted ones read "sorted": ruled out. They share no half-year, and Binance
    # changed: per period nothing rules it out (nor in)
    named, fragment = np.array([0]), np.array([1])
    moved = [dict(r, entity="fragment" if r["height"] == 481829 else "binance") for r in _binance()]
    names, pooled = entity_styles(moved, 0)
    assert names == ["binance", "fragment"]
    assert services.style_habits(pooled, named)[ORDER].tolist() == [0]
    assert services.style_habits(pooled, fragment, seen=True)[ORDER].tolist() == [1]
    assert not services.style_compatible(pooled, named, fragment)[0][0, 0]
    _names, period = entity_styles(moved, services.STYLE_PERIOD_MONTHS)
    compatible, evidence = services.style_compatible(period, named, fragment)
    assert compatible[0, 0] and not evidence[0, 0]
