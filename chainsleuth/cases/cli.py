"""CLI command of the cases stage: `investigate --seeds FILE -o OUTDIR`, a thin layer over
`cases.investigate.investigate` (the summary it prints is `cases.demo.print_summary`, which the
demo's investigation step prints too)."""

from __future__ import annotations

from pathlib import Path

import typer

from chainsleuth.core.console import console, data_dir


def register(app: typer.Typer) -> None:
    @app.command("investigate")
    def investigate_cmd(
        ctx: typer.Context,
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
        style_names: bool = typer.Option(
            True,
            "--style-names/--no-style-names",
            help="--no-style-names: name no wallet by its style alone: for TagPacks that do "
            "not tag every exchange active in the case",
        ),
        skip_invalid: bool = typer.Option(
            False,
            "--skip-invalid",
            help="go on without seed lines that are not addresses of the store's network "
            "(they are listed in case.json, inputs.seeds.invalid); without it they stop the case",
        ),
    ) -> None:
        """Trace a service's deposits to the exchanges that funded them, and its cash-outs."""
        from chainsleuth.cases.demo import print_summary
        from chainsleuth.cases.investigate import investigate
        from chainsleuth.cases.seeds import check_seeds, record_invalid_seeds
        from chainsleuth.core.errors import ChainsleuthError
        from chainsleuth.store.store import Store

        check = check_seeds(seeds, Store.open(data_dir(ctx)).network.name)
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
            data_dir(ctx),
            seeds,
            out,
            policy,
            max_hops,
            prices,
            report=report,
            pdf=pdf,
            walk_coinjoins=walk_coinjoins,
            min_confidence=min_confidence,
            style_names=style_names,
        )
        record_invalid_seeds(Path(out) / "case.json", check)  # [] when every line is valid
        print_summary(summary, console)
