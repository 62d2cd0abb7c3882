"""Seed files as careless users write them: every line that is not an address, named.

A seeds file is a CSV with a column `address`, one seized deposit address a row. What goes
wrong in practice: a binary file given by mistake (a spreadsheet, a PDF), words or notes where
an address should be (`notanaddress`), a quote opened and never closed, an address of another
network. `check_seeds` reads the file line by line (a quote left open stays on its own line, it
does not swallow the rest of the file), validates each value with the project's address
decoder (`chainsleuth.core.address.decode_address`) against the store's network, and lists
every line that fails as `{"line": n, "value": text}`; `investigate` stops on any unless told
to skip them (`--skip-invalid`), and then records them in case.json (`inputs.seeds.invalid`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainsleuth.core.address import AddressError, decode_address
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import atomic_write_text

__all__ = ["SeedCheck", "check_seeds", "record_invalid_seeds", "seed_lines"]


def _text(seeds_csv: Path) -> str:
    try:
        data = Path(seeds_csv).read_bytes()
    except OSError as e:
        raise ChainsleuthError(f"cannot read {seeds_csv}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ChainsleuthError(
            f"{seeds_csv}: not a text file (byte offset {e.start} is not UTF-8); expected a CSV "
            "with a column `address`"
        ) from None
    if "\x00" in text:
        raise ChainsleuthError(
            f"{seeds_csv}: not a text file (byte offset {text.index(chr(0))} is a NUL byte); "
            "expected a CSV with a column `address`"
        )
    return text


def _row(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # pragma: no cover - csv.reader on one line without NUL does not fail
        return [line]


def seed_lines(seeds_csv: Path) -> Iterator[tuple[int, str]]:
    """(line number, address cell) of every non-blank row of a seeds CSV (line 1 = header).

    Each physical line is parsed on its own: addresses hold no quotes, commas or newlines, so
    only broken rows are affected, and a quote left open stays on its line.
    """
    lines = _text(seeds_csv).splitlines()
    header = [h.strip() for h in _row(lines[0])] if lines else []
    if "address" not in header:
        raise ChainsleuthError(f"{seeds_csv} has no column `address`")
    column = header.index("address")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = _row(line)
        value = row[column].strip() if column < len(row) else ""
        if value:
            yield number, value


@dataclass(frozen=True)
class SeedCheck:
    """What `check_seeds` found: the rows with a value, and those that are not addresses."""

    path: Path
    network: str
    n_rows: int
    invalid: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "value": text}

    def describe(self, limit: int = 3) -> str:
        """'2 of 5 lines are not valid main addresses (line 3: 'x', line 4: 'y')'."""
        shown = ", ".join(f"line {b['line']}: {b['value'][:70]!r}" for b in self.invalid[:limit])
        more = f", and {len(self.invalid) - limit:,} more" if len(self.invalid) > limit else ""
        return (
            f"{len(self.invalid):,} of {self.n_rows:,} lines are not valid {self.network} "
            f"addresses ({shown}{more})"
        )


def check_seeds(seeds_csv: Path, network: str) -> SeedCheck:
    """Every row of `seeds_csv` whose address is not a valid address of `network`.

    Raises a one-line ChainsleuthError naming the file when it is not a readable text CSV with
    an `address` column (a binary file, say).
    """
    invalid: list[dict[str, Any]] = []
    n_rows = 0
    for number, value in seed_lines(seeds_csv):
        n_rows += 1
        try:
            _, _, networks = decode_address(value)
        except AddressError:
            invalid.append({"line": number, "value": value})
            continue
        if network not in networks:
            invalid.append({"line": number, "value": value})
    return SeedCheck(Path(seeds_csv), network, n_rows, invalid)


def record_invalid_seeds(case_json: Path, check: SeedCheck) -> None:
    """Add the skipped lines to a case's case.json (`inputs.seeds.invalid`), atomically."""
    case = json.loads(Path(case_json).read_text())
    seeds = case.setdefault("inputs", {}).setdefault("seeds", {})
    seeds["invalid"] = check.invalid
    seeds["rows"] = check.n_rows
    seeds["network"] = check.network
    atomic_write_text(case_json, json.dumps(case, indent=2, sort_keys=True) + "\n")
