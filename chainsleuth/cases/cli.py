"""CLI command of the cases stage: `investigate --seeds FILE -o OUTDIR`, a thin layer over
`cases.investigate.investigate`; and `run_case_demo`, the investigation step of `make demo`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chainsleuth.core.console import make_console

console = make_console()


def _data_dir() -> Path:
    from chainsleuth.cli import State

    return State.data_dir


def register(app: typer.Typer) -> None:
    @app.command("investigate")
    def investigate_cmd(
        seeds: Path = typer.Option(
            ..., "--seeds", help="CSV with a column `address` (seized deposit addresses)"
        ),
        out: Path = typer.Option(..., "-o", "--out", help="directory for the case files"),
        policy: str = typer.Option("haircut", "--policy", help="poison | haircut | fifo"),
        max_hops: int = typer.Option(15, "--max-hops", help="hops to walk back and forward"),
        prices: Path | None = typer.Option(
            None,
            "--prices",
            help="daily closes CSV (date,close_usd[,source]); default: the series imported "
            "with `chainsleuth prices import`, else the one shipped with chainsleuth",
        ),
        report: bool = typer.Option(True, "--report/--no-report", help="write report.html"),
        pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="write report.pdf"),
        walk_coinjoins: bool = typer.Option(
            False,
            "--walk-coinjoins",
            help="trace through CoinJoins; sources beyond get through_coinjoin=true and "
            "confidence at most 0.25",
        ),
        min_confidence: float = typer.Option(
            0.0,
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="leave subpoena rows whose best lead is less sure than this out of "
            "subpoenas.csv (leads.csv keeps every lead)",
        ),
        skip_invalid: bool = typer.Option(
            False,
            "--skip-invalid",
            help="go on without seed lines that are not addresses of the store's network "
            "(they are listed in case.json, inputs.seeds.invalid); without it they stop the case",
        ),
    ) -> None:
        """Trace a service's deposits to the exchanges that funded them, and its cash-outs."""
        from chainsleuth.cases.investigate import investigate
        from chainsleuth.cases.seeds import check_seeds, record_invalid_seeds
        from chainsleuth.core.errors import ChainsleuthError
        from chainsleuth.store.store import Store

        check = check_seeds(seeds, Store.open(_data_dir()).network.name)
        if check.invalid and not skip_invalid:
            raise ChainsleuthError(
                f"{seeds}: {check.describe()}; fix them, or pass --skip-invalid to go on "
                "without them (they are then listed in case.json)"
            )
        if check.invalid:
            from rich.text import Text

            console.print(
                Text(f"skipping invalid seeds: {check.describe()}; all in case.json"),
                soft_wrap=True,
            )
        summary = investigate(
            _data_dir(),
            seeds,
            out,
            policy,
            max_hops,
            prices,
            report=report,
            pdf=pdf,
            walk_coinjoins=walk_coinjoins,
            min_confidence=min_confidence,
        )
        record_invalid_seeds(Path(out) / "case.json", check)  # [] when every line is valid
        _print_summary(summary, console)


def _print_summary(summary: object, console: Console) -> None:
    from chainsleuth.cases.investigate import InvestigationSummary

    assert isinstance(summary, InvestigationSummary)
    console.print(
        f"{summary.n_seeds:,} seed addresses ({summary.n_seeds_in_store:,} on chain, "
        f"{summary.service_clusters:,} service clusters), {summary.n_deposit_outputs:,} "
        f"deposits; {summary.n_deposits_with_exchange_lead:,} deposit addresses traced to an "
        f"exchange; {summary.n_cashouts:,} cash-outs. Files in {summary.out_dir}"
    )
    table = Table("exchange", "customers to request", title="Subpoenas", title_justify="left")
    for name, n in summary.exchanges.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    cash = Table("destination", "BTC", title="Cash-outs", title_justify="left")
    for name, sat in sorted(summary.cashouts_by_entity.items(), key=lambda kv: -kv[1]):
        cash.add_row(name, f"{sat / 1e8:.8f}")
    console.print(cash)
    _print_cashouts(summary.out_dir / "cashouts.csv", console)
    if summary.report_html is not None:
        console.print(f"Report: {summary.report_html}")
    if summary.report_pdf is not None:
        console.print(f"        {summary.report_pdf}")


def run_case_demo(world: Path, store_dir: Path, out_dir: Path, console: Console) -> None:
    """Investigate the demo world's service from its seized deposit list (world/seeds)."""
    from dataclasses import replace

    from chainsleuth.cases.investigate import investigate
    from chainsleuth.cases.report import write_report
    from chainsleuth.core.errors import ChainsleuthError

    summary = investigate(
        Path(store_dir), Path(world) / "seeds" / "deposits.csv", Path(out_dir), report=False
    )
    try:
        paths = write_report(Path(out_dir))
    except ChainsleuthError as e:  # no Pango here: the demo still gives the HTML report
        console.print(f"[yellow]report.pdf skipped: {e}[/]")
        paths = write_report(Path(out_dir), pdf=False)
    _print_summary(replace(summary, report_html=paths.html, report_pdf=paths.pdf), console)


def _print_cashouts(path: Path, console: Console, limit: int = 10) -> None:
    """The largest cash-outs: the leads to the administrator (the rest are in cashouts.csv)."""
    import csv

    with open(path, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: -int(r["amount_sat"]))
    if not rows:
        return
    table = Table(
        "date",
        "exchange",
        "BTC",
        "deposit address credited",
        title=f"Largest cash-outs ({min(limit, len(rows))} of {len(rows)}; all in {path.name})",
        title_justify="left",
    )
    for r in rows[:limit]:
        table.add_row(
            r["block_time"][:10],
            r["destination_entity"],
            f"{int(r['amount_sat']) / 1e8:.8f}",
            r["destination_address"],
        )
    console.print(table)
