"""The console every CLI command prints through: full identifiers whatever the output is.

A txid is 64 characters and a bech32m address 62; rich cuts table cells that do not fit the
width with "…", and on a pipe or a file it assumes 80 columns. That loses the evidence
(`chainsleuth explain A B > evidence.txt`). So, in one place for every command:

- stdout is a terminal: tables fold long cells onto the next line instead of cutting them.
- stdout is not a terminal (a pipe, a file, a test's captured output): each table is written
  as plain TSV (a `# title` line when it has a title, a header line, one tab-separated line per
  row, markup removed, tabs and newlines in cells turned into spaces), and other text is not
  wrapped at all. `--json` stays the format for programs.

Use `make_console()` instead of `rich.console.Console()`; tables stay `rich.table.Table`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["OutputConsole", "make_console", "table_to_tsv"]


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
