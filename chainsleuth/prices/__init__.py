"""Daily BTC/USD closes for USD values in investigations: shipped, imported, or a file given.

Three series, in the order `investigate` picks them:

- "file": a CSV given with `--prices FILE`;
- "imported": the series `chainsleuth prices import FILE.csv` stored in the data directory
  (`DATA/prices/btc_usd_daily.csv`, with `DATA/prices/import.json` naming where it came from);
- "shipped": the history that comes with the package (`chainsleuth/data/prices/`, its source
  and licence in PROVENANCE.md there), read with `importlib.resources`.

Every series has the columns `date,close_usd[,source]`: a UTC day (YYYY-MM-DD) and the close in
USD at 24:00 UTC. A day without a row has no price; the case files leave its USD value empty
with the note `missing_price` rather than guess. Nothing here reads outside the package and the
data directory.

    >>> source = resolve_prices(Path("chainsleuth-data"))  # doctest: +SKIP
    >>> source.series, source.path.name  # doctest: +SKIP
    ('shipped', 'btc_usd_daily.csv')
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from chainsleuth.core.errors import ChainsleuthError, InputError
from chainsleuth.core.files import atomic_write_bytes, sha256_file

__all__ = [
    "PriceSeries",
    "PriceSource",
    "describe",
    "import_prices",
    "imported_prices_path",
    "read_prices",
    "resolve_prices",
    "shipped_prices_path",
]

FILE_NAME = "btc_usd_daily.csv"
COLUMNS = ("date", "close_usd", "source")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def shipped_prices_path() -> Path:
    """The daily close history that comes with the package (a file inside the installed package)."""
    return Path(str(resources.files("chainsleuth").joinpath("data", "prices", FILE_NAME)))


def imported_prices_path(data_dir: Path) -> Path:
    """Where `chainsleuth prices import` keeps its series in a data directory."""
    return Path(data_dir) / "prices" / FILE_NAME


@dataclass(frozen=True)
class PriceSeries:
    """A validated series: close per day, and each day's source (rows in date order)."""

    path: Path
    close: dict[str, float]  # "YYYY-MM-DD" -> USD
    close_text: dict[str, str]  # the close as written in the file (kept on import)
    source: dict[str, str]

    @property
    def first_date(self) -> str:
        return min(self.close)

    @property
    def last_date(self) -> str:
        return max(self.close)


def read_prices(path: Path) -> PriceSeries:
    """Read and check a `date,close_usd[,source]` CSV.

    Every problem is an `InputError` naming the file, the line and the field: an unreadable or
    non-UTF-8 file, a missing column, a row with too many or too few fields, a date that is not
    a calendar day (YYYY-MM-DD), a close that is not a positive number, a day given twice.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ChainsleuthError(f"no price file at {path}") from None
    except OSError as e:
        raise ChainsleuthError(f"cannot read the price file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        line = text_line_of(path, e.start)
        raise InputError(
            "not a UTF-8 text file (expected CSV with columns date,close_usd[,source])",
            path=str(path),
            line=line,
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise InputError(f"not a readable CSV header ({e})", path=str(path), line=1) from None
    names = [h.strip().lower() for h in header or []]
    for needed in ("date", "close_usd"):
        if needed not in names:
            raise InputError(
                f"no column `{needed}` (expected date,close_usd[,source]; found "
                f"{','.join(names) or 'nothing'})",
                path=str(path),
                line=1,
                field=needed,
            )
    at = {name: names.index(name) for name in COLUMNS if name in names}
    close: dict[str, float] = {}
    close_text: dict[str, str] = {}
    source: dict[str, str] = {}
    first_line: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise InputError(
                f"not readable as CSV ({e})", path=str(path), line=reader.line_num
            ) from None
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise InputError(
                f"{len(row)} fields, the header has {len(names)}",
                path=str(path),
                line=line,
                field="row",
            )
        day = row[at["date"]].strip()
        if not _DATE.match(day):
            raise InputError(
                f"date {day!r} is not YYYY-MM-DD", path=str(path), line=line, field="date"
            )
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise InputError(
                f"date {day!r} is not a calendar day", path=str(path), line=line, field="date"
            ) from None
        if day in first_line:
            raise InputError(
                f"date {day} is given twice (first on line {first_line[day]})",
                path=str(path),
                line=line,
                field="date",
            )
        raw_close = row[at["close_usd"]].strip()
        try:
            value = float(raw_close)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise InputError(
                f"close {raw_close!r} is not a positive number of US dollars "
                "(leave a day without a price out)",
                path=str(path),
                line=line,
                field="close_usd",
            )
        first_line[day] = line
        close[day] = value
        close_text[day] = raw_close
        source[day] = row[at["source"]].strip() if "source" in at else ""
    if not close:
        raise InputError("holds no prices", path=str(path), line=reader.line_num or 1)
    order = sorted(close)
    return PriceSeries(
        path,
        {d: close[d] for d in order},
        {d: close_text[d] for d in order},
        {d: source[d] for d in order},
    )


def text_line_of(path: Path, byte_offset: int) -> int:
    """1-based line number of a byte offset in a file."""
    with open(path, "rb") as f:
        return f.read(byte_offset).count(b"\n") + 1


def import_prices(data_dir: Path, csv_path: Path) -> dict[str, Any]:
    """Check `csv_path` and store it as the data directory's price series (replacing any).

    Writes `DATA/prices/btc_usd_daily.csv` (date order, columns date,close_usd,source; the
    source column is the file's, or `import:<file name>` where it has none) and
    `DATA/prices/import.json`, each atomically. Returns what import.json holds.
    """
    csv_path = Path(csv_path)
    series = read_prices(csv_path)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    fallback = f"import:{csv_path.name}"
    for day, text in series.close_text.items():
        writer.writerow((day, text, series.source[day] or fallback))
    target = imported_prices_path(data_dir)
    atomic_write_bytes(target, out.getvalue().encode())
    info = {
        "imported_from": str(csv_path.resolve()),
        "imported_from_sha256": sha256_file(csv_path),
        "imported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "path": str(target.resolve()),
        "sha256": sha256_file(target),
        "days": len(series.close),
        "first_date": series.first_date,
        "last_date": series.last_date,
        "missing_days": _missing_days(series),
    }
    atomic_write_bytes(target.parent / "import.json", (json.dumps(info, indent=2) + "\n").encode())
    return info


def _missing_days(series: PriceSeries) -> int:
    first = dt.date.fromisoformat(series.first_date)
    last = dt.date.fromisoformat(series.last_date)
    return (last - first).days + 1 - len(series.close)


@dataclass(frozen=True)
class PriceSource:
    """The series a case uses: its file and which of the three it is."""

    path: Path
    series: str  # "file" | "imported" | "shipped"

    def load(self) -> PriceSeries:
        return read_prices(self.path)


def resolve_prices(data_dir: Path, prices_csv: Path | None = None) -> PriceSource:
    """`prices_csv` when given, else the data directory's imported series, else the shipped one."""
    if prices_csv is not None:
        return PriceSource(Path(prices_csv), "file")
    imported = imported_prices_path(data_dir)
    if imported.exists():
        return PriceSource(imported, "imported")
    return PriceSource(shipped_prices_path(), "shipped")


def describe(source: PriceSource, series: PriceSeries) -> dict[str, Any]:
    """What a case records of its prices (case.json `inputs.prices`)."""
    return {
        "path": str(source.path.resolve()),
        "sha256": sha256_file(source.path),
        "series": source.series,
        "first_date": series.first_date,
        "last_date": series.last_date,
        "days": len(series.close),
        "missing_days": _missing_days(series),
    }
