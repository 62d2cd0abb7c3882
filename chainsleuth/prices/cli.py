"""`chainsleuth prices import FILE.csv` and `chainsleuth prices show`: a thin typer layer over
`chainsleuth.prices` (the series investigations price their rows with)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from chainsleuth.core.console import console, data_dir, print_json

prices_app = typer.Typer(
    name="prices",
    help="Daily BTC/USD closes for USD values: import your own series, see which one is used.",
    no_args_is_help=True,
)


@prices_app.command("import")
def import_cmd(
    ctx: typer.Context,
    csv_file: Path = typer.Argument(..., help="CSV with columns date,close_usd[,source]"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Store a daily close series in the data directory; `investigate` uses it from now on."""
    from chainsleuth.prices import import_prices

    info = import_prices(data_dir(ctx), csv_file)
    if json_out:
        print_json(info)
        return
    console.print(
        Text(
            f"Imported {info['days']:,} daily closes, {info['first_date']} to "
            f"{info['last_date']} ({info['missing_days']:,} days without a price), into "
            f"{info['path']}. Investigations in {data_dir(ctx)} use them unless --prices is given."
        )
    )


@prices_app.command("show")
def show_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """The series `investigate` uses in this data directory (imported, else shipped)."""
    from chainsleuth.prices import describe, resolve_prices

    source = resolve_prices(data_dir(ctx))
    info = describe(source, source.load())
    if json_out:
        print_json(info)
        return
    table = Table(title="Price series", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in info.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else value)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(prices_app)
