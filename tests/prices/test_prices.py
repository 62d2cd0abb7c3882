"""The shipped BTC/USD series, `chainsleuth prices import`, and bad price files (one line naming
the file, the line and the field)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import chainsleuth
from chainsleuth.cases.investigate import DEFAULT_PRICES
from chainsleuth.core.errors import ChainsleuthError, InputError
from chainsleuth.prices import (
    import_prices,
    imported_prices_path,
    read_prices,
    resolve_prices,
    shipped_prices_path,
)


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsleuth", "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_shipped_series_is_package_data_from_2010_to_this_year() -> None:
    path = shipped_prices_path()
    assert path == DEFAULT_PRICES
    assert path.is_relative_to(Path(chainsleuth.__file__).resolve().parent)
    assert (path.parent / "PROVENANCE.md").read_text().count("Licence") >= 2
    series = read_prices(path)
    assert (series.first_date, series.last_date, len(series.close)) == (
        "2010-07-18",
        "2026-06-15",
        5778,
    )
    assert series.close["2010-07-18"] == 0.08584 and "2016-10-01" not in series.close
    assert series.source["2015-01-26"] == "cryptowatch:coinbase:btcusd"


def test_no_module_of_the_package_reads_the_shared_folder() -> None:
    package = Path(chainsleuth.__file__).resolve().parent
    for source in package.rglob("*.py"):
        for n, line in enumerate(source.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if '"shared"' in code or "'shared'" in code or '/ "shared' in code:
                pytest.fail(f"{source}:{n} builds a path to the shared folder: {line.strip()}")


BAD = {
    "date": ("date,close_usd\n2020-01-01,7200\n2020-1-2,7300\n", 3, "date"),
    "not a day": ("date,close_usd\n2020-02-30,7200\n", 2, "date"),
    "twice": ("date,close_usd,source\n2020-01-01,1,a\n2020-01-02,2,a\n2020-01-01,3,a\n", 4, "date"),
    "negative": ("date,close_usd\n2020-01-01,-5\n", 2, "close_usd"),
    "empty close": ("date,close_usd\n2020-01-01,7200\n2020-01-02,\n", 3, "close_usd"),
    "text close": ("date,close_usd\n2020-01-01,about 7k\n", 2, "close_usd"),
    "nan": ("date,close_usd\n2020-01-01,nan\n", 2, "close_usd"),
    "fields": ("date,close_usd,source\n2020-01-01,7200,x,extra\n", 2, "row"),
    "no close column": ("date,price\n2020-01-01,7200\n", 1, "close_usd"),
    "no rows": ("date,close_usd\n", 1, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_price_file_names_the_line_and_the_field(tmp_path: Path, case: str) -> None:
    text, line, field = BAD[case]
    path = tmp_path / "prices.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_prices(path)
    assert (info.value.path, info.value.line, info.value.field) == (str(path), line, field)
    assert str(info.value).startswith(f"{path}, line {line}")


def test_binary_and_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "prices.csv"
    binary.write_bytes(b"date,close_usd\n2020-01-01,1\n\xff\xfe\x00garbage")
    with pytest.raises(InputError) as info:
        read_prices(binary)
    assert info.value.line == 3 and "UTF-8" in str(info.value)
    with pytest.raises(ChainsleuthError, match="no price file"):
        read_prices(tmp_path / "nowhere.csv")


def test_import_stores_the_series_atomically_and_replaces_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = tmp_path / "a.csv"
    first.write_text("date,close_usd\n2020-01-02,7300.5\n2020-01-01,7200\n\n")
    assert resolve_prices(data).series == "shipped"
    info = import_prices(data, first)
    stored = imported_prices_path(data)
    assert stored.read_text() == (
        "date,close_usd,source\n2020-01-01,7200,import:a.csv\n2020-01-02,7300.5,import:a.csv\n"
    )
    assert (info["days"], info["first_date"], info["last_date"]) == (2, "2020-01-01", "2020-01-02")
    assert json.loads((stored.parent / "import.json").read_text()) == info
    assert sorted(p.name for p in stored.parent.iterdir()) == ["btc_usd_daily.csv", "import.json"]
    source = resolve_prices(data)
    assert (source.series, source.path) == ("imported", stored)
    given = resolve_prices(data, first)
    assert (given.series, given.path) == ("file", first)

    bad = tmp_path / "bad.csv"
    bad.write_text("date,close_usd\n2021-01-01,x\n")
    before = stored.read_bytes()
    with pytest.raises(InputError):
        import_prices(data, bad)
    assert stored.read_bytes() == before  # a bad file changes nothing

    second = tmp_path / "b.csv"
    second.write_text("date,close_usd,source\n2021-05-01,57000,mine\n")
    import_prices(data, second)
    assert stored.read_text() == "date,close_usd,source\n2021-05-01,57000,mine\n"


def test_cli_prices_import_and_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shown = json.loads(run(data, "prices", "show", "--json").stdout)
    assert shown["series"] == "shipped" and shown["days"] == 5778
    good = tmp_path / "mine.csv"
    good.write_text("date,close_usd,source\n2020-01-01,7200,x\n2020-01-03,7400,x\n")
    done = run(data, "prices", "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "Imported 2 daily closes" in " ".join(done.stdout.split())
    shown = json.loads(run(data, "prices", "show", "--json").stdout)
    assert (shown["series"], shown["days"], shown["missing_days"]) == ("imported", 2, 1)

    bad = tmp_path / "bad.csv"
    bad.write_text("date,close_usd\n2020-01-01,7200\n2020-01-02,oops\n")
    done = run(data, "prices", "import", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"{bad}, line 3, field close_usd" in done.stderr
