"""The simulator's embedded BTC/USD closes are the shared price file's, day for day."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from chainsleuth.simulate.prices import CLOSE_USD, FIRST_DAY, close_usd

PRICES = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "btc-usd-prices"
    / "btc_usd_daily.csv"
)


def test_embedded_closes_equal_the_shared_price_file_for_2018_and_2019() -> None:
    if not PRICES.exists():
        pytest.skip("shared price data not present")
    with PRICES.open() as fh:
        shared = {row["date"]: float(row["close_usd"]) for row in csv.DictReader(fh)}
    for i, close in enumerate(CLOSE_USD):
        day = FIRST_DAY + dt.timedelta(days=i)
        assert shared[day.isoformat()] == close
    assert (FIRST_DAY + dt.timedelta(days=len(CLOSE_USD) - 1)).isoformat() == "2019-12-31"


def test_close_usd_clamps_to_the_table() -> None:
    assert close_usd(dt.date(2017, 6, 1)) == CLOSE_USD[0]
    assert close_usd(dt.date(2024, 1, 1)) == CLOSE_USD[-1]
    assert close_usd(dt.date(2018, 12, 15)) < 4000  # the 2018 bear-market bottom
