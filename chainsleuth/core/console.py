"""The leaf module of the faces: the console every command prints through, JSON and key/value
tables, and the data directory each command reads from typer's context.

Every face (`chainsleuth/cli.py`, each stage's `cli.py`, the demo) imports this module and no
face imports another face for these; it imports nothing from chainsleuth, so it can never be
part of an import cycle (docs/design/map.md).

The console: full identifiers whatever the output is.

A txid is 64 characters and a bech32m address 62; rich cuts table cells that do not fit the
width with "…", and on a pipe or a file it assumes 80 columns. That loses the evidence
(`chainsleuth explain A B > evidence.txt`). So, in one place for every command:

- stdout is a terminal: tables fold long cells onto the next line instead of cutting them.
- stdout is not a terminal (a pipe, a file, a test's captured output): each table is written
  as plain TSV (a `# title` line when it has a title, a header line, one tab-separated line per
  row, markup removed, tabs and newlines in cells turned into spaces), and other text is not
  wrapped at all. `--json` stays the format for programs.

Use `console` (or `make_console()`) instead of `rich.console.Console()`; tables stay
`rich.table.Table`.

The data directory: the root callback (`--data`, else $CHAINSLEUTH_DATA, else
./chainsleuth-data) puts a `CliState` in `ctx.obj`; commands read it with `data_dir(ctx)`. A
stage's commands registered on a bare `typer.Typer()` (as tests do) get the same default, or the
state a caller passes: `CliRunner().invoke(app, args, obj=CliState(path))`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "CliState",
    "OutputConsole",
    "btc",
    "console",
    "data_dir",
    "default_data_dir",
    "err_console",
    "kv_table",
    "make_console",
    "print_json",
    "table_to_tsv",
]


def _cell_text(console: Console, cell: Any) -> str:
    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = console.render_str(cell).plain  # markup as rich would have rendered it
    else:
        text = str(cell)
    return " ".join(text.replace("\t", " ").splitlines())


def table_to_tsv(console: Console, table: Table) -> str:
    """A rich Table as TSV text: `# title`, a header line, one line per row (full cells)."""
    lines = []
    if table.title:
        lines.append("# " + _cell_text(console, table.title))
    headers = [_cell_text(console, c.header) for c in table.columns]
    if not table.show_header or not any(headers):
        headers = (
            ["field", "value"]
            if len(headers) == 2
            else [f"column_{i + 1}" for i in range(len(headers))]
        )
    lines.append("\t".join(headers))
    cells = [[_cell_text(console, c) for c in column.cells] for column in table.columns]
    for row in zip(*cells, strict=True):
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


class OutputConsole(Console):
    """A rich Console that never cuts a table cell (see the module docstring)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.is_terminal:
            for obj in objects:
                if isinstance(obj, Table):
                    for column in obj.columns:
                        if column.overflow == "ellipsis":
                            column.overflow = "fold"
            super().print(*objects, **kwargs)
            return
        kwargs.setdefault("soft_wrap", True)  # no wrapping of text lines either
        pending: list[Any] = []
        for obj in objects:
            if isinstance(obj, Table):
                if pending:
                    super().print(*pending, **kwargs)
                    pending = []
                self.file.write(table_to_tsv(self, obj))
                self.file.flush()
            else:
                pending.append(obj)
        if pending or not objects:
            super().print(*pending, **kwargs)


def make_console(*, stderr: bool = False) -> OutputConsole:
    """The console for a CLI command's output (`stderr=True` for messages and progress)."""
    return OutputConsole(stderr=stderr)


console = make_console()
err_console = make_console(stderr=True)


# ------------------------------------------------------------------------------ data directory
@dataclass(frozen=True)
class CliState:
    """What the root command hands every command through typer's context (`ctx.obj`)."""

    data_dir: Path


def default_data_dir() -> Path:
    """$CHAINSLEUTH_DATA, else ./chainsleuth-data: the data directory without `--data`."""
    return Path(os.environ.get("CHAINSLEUTH_DATA", "chainsleuth-data"))


def data_dir(ctx: typer.Context) -> Path:
    """The data directory of this invocation (`--data`, else the default). In a command:

    def status(ctx: typer.Context) -> None:
        store = Store.open_any(data_dir(ctx))
    """
    state = ctx.find_object(CliState)
    return state.data_dir if state is not None else default_data_dir()


# ------------------------------------------------------------------------------------- output
def print_json(value: Any) -> None:
    """`--json` output: indented, anything not JSON (paths, dates) as its string."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def kv_table(title: str, rows: list[tuple[str, Any]], *, none: str = "None") -> Table:
    """A two-column key/value table, keys in bold (`none`: how a None value is shown)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, none if value is None else str(value))
    return table


def btc(sats: int | None) -> str:
    """Satoshis as BTC with 8 decimals and thousands separators; "" for None.

    >>> btc(1_050_000_000)
    '10.50000000 BTC'
    """
    return "" if sats is None else f"{sats / 1e8:,.8f} BTC"
