"""The investigation step of `make demo`, and the summary of a case a person reads first.

`run_case_demo(world, store_dir, out_dir, console)` investigates the demo world's service from
its seized deposit list (`world/seeds/deposits.csv`) and prints what the case found;
`print_summary` is that printout (the exchanges to subpoena, the cash-outs, the largest ones,
the report's path), which `chainsleuth investigate` prints too.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chainsleuth.cases.investigate import InvestigationSummary, investigate
from chainsleuth.cases.lookalikes import closed_world_line, lookalike_line
from chainsleuth.cases.report import write_report
from chainsleuth.core.errors import ChainsleuthError

__all__ = ["print_summary", "run_case_demo"]


def print_summary(summary: InvestigationSummary, console: Console) -> None:
    """What a case found, for a person: counts, subpoenas, cash-outs, the report's path."""
    console.print(
        f"{summary.n_seeds:,} seed addresses ({summary.n_seeds_in_store:,} on chain, "
        f"{summary.service_clusters:,} service clusters), {summary.n_deposit_outputs:,} "
        f"deposits; {summary.n_deposits_with_exchange_lead:,} deposit addresses traced to an "
        f"exchange; {summary.n_cashouts_at_cut:,} cash-outs at confidence ≥ "
        f"{summary.cashout_cut:g}"
        + (
            f" ({below:,} below it, listed in cashouts.csv)"
            if (below := summary.n_cashouts - summary.n_cashouts_at_cut)
            else ""
        )
        + f". Files in {summary.out_dir}"
    )
    warning = lookalike_line(summary.lookalike_exchanges, summary.unreadable_exchanges)
    if warning:  # Text: a name is never read as rich markup; one line, never wrapped
        console.print(Text(warning, style="yellow"), soft_wrap=True)
    resting = closed_world_line(
        summary.n_leads_resting_on_style,
        summary.n_deciding_leads,
        summary.n_leads_resting_on_style_carried,
    )
    if resting:
        console.print(Text(resting, style="yellow"), soft_wrap=True)
    if summary.n_request_deposits:
        console.print(
            f"{summary.n_request_deposits:,} deposit addresses with no subpoena lead have a "
            "best lead several exchanges fit alike: "
            f"{summary.n_request_rows:,} requests to rule each exchange in or out, in "
            "requests.csv (not attributions)",
            soft_wrap=True,
        )
    table = Table("exchange", "customers to request", title="Subpoenas", title_justify="left")
    for name, n in summary.exchanges.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    cash = Table("destination", "BTC", title="Cash-outs", title_justify="left")
    for name, sat in sorted(summary.cashouts_by_entity.items(), key=lambda kv: -kv[1]):
        cash.add_row(name, f"{sat / 1e8:.8f}")
    console.print(cash)
    _print_cashouts(summary.out_dir / "cashouts.csv", console, summary.cashout_cut)
    if summary.report_html is not None:
        console.print(f"Report: {summary.report_html}")
    if summary.report_pdf is not None:
        console.print(f"        {summary.report_pdf}")


def run_case_demo(world: Path, store_dir: Path, out_dir: Path, console: Console) -> None:
    """Investigate the demo world's service from its seized deposit list (world/seeds)."""
    summary = investigate(
        Path(store_dir), Path(world) / "seeds" / "deposits.csv", Path(out_dir), report=False
    )
    try:
        paths = write_report(Path(out_dir))
    except ChainsleuthError as e:  # no Pango here: the demo still gives the HTML report
        console.print(f"[yellow]report.pdf skipped: {e}[/]")
        paths = write_report(Path(out_dir), pdf=False)
    print_summary(replace(summary, report_html=paths.html, report_pdf=paths.pdf), console)


def _print_cashouts(path: Path, console: Console, cut: float, limit: int = 10) -> None:
    """The largest cash-outs at confidence >= `cut`: the leads to the administrator (the rest,
    and those below the cut, are in cashouts.csv)."""
    with open(path, newline="") as f:
        rows = sorted(
            (r for r in csv.DictReader(f) if float(r["confidence"] or 1.0) >= cut),
            key=lambda r: -int(r["amount_sat"]),
        )
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
