"""The simulator's embedded BTC/USD closes are the shipped price file's, day for day; the
shipped file is the shared data's, byte for byte."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from chainsleuth.prices import shipped_prices_path
from chainsleuth.simulate.prices import CLOSE_USD, FIRST_DAY, close_usd

SHARED_PRICES = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "btc-usd-prices"
    / "btc_usd_daily.csv"
)


def test_embedded_closes_equal_the_shipped_price_file_for_2018_and_2019() -> None:
    with shipped_prices_path().open() as fh:
        shipped = {row["date"]: float(row["close_usd"]) for row in csv.DictReader(fh)}
    for i, close in enumerate(CLOSE_USD):
        day = FIRST_DAY + dt.timedelta(days=i)
        assert shipped[day.isoformat()] == close
    assert (FIRST_DAY + dt.timedelta(days=len(CLOSE_USD) - 1)).isoformat() == "2019-12-31"


def test_shipped_price_file_is_the_shared_one() -> None:
    assert SHARED_PRICES.is_file(), f"shared data missing: {SHARED_PRICES}"
    assert shipped_prices_path().read_bytes() == SHARED_PRICES.read_bytes()


def test_close_usd_clamps_to_the_table() -> None:
    assert close_usd(dt.date(2017, 6, 1)) == CLOSE_USD[0]
    assert close_usd(dt.date(2024, 1, 1)) == CLOSE_USD[-1]
    assert close_usd(dt.date(2018, 12, 15)) < 4000  # the 2018 bear-market bottom
