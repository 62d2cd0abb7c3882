"""Hand-written truth and case CSVs for the bench scripts' tests."""

from __future__ import annotations

import csv
from pathlib import Path


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """`rows` as a CSV at `path` (header from the first row), folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def payment(d: str, ex: str, **more: str) -> dict[str, str]:
    """A truth payment row: deposit `d` paid from exchange `ex` through its own wallet."""
    return {"deposit_address": d, "funding_exchange": ex, "path_kind": "own_wallet",
            "coinjoin_broke_trail": "false"} | more  # fmt: skip
