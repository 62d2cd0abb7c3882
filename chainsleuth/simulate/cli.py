"""`chainsleuth simulate`: the thin command over `chainsleuth.simulate.simulate()`.

The root CLI (`chainsleuth.cli`) calls `register(app)`; everything the command does is in the
library function, which notebook users can call directly.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsleuth.simulate.profiles import profile_names

__all__ = ["register"]


# the choices come from profiles.yaml, so a profile added there is a choice here too
ProfileName = StrEnum("ProfileName", [(n, n) for n in profile_names()])  # type: ignore[misc]


class ScaleName(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"


def register(app: typer.Typer) -> None:
    """Add the `simulate` command to `app`."""

    @app.command("simulate")
    def simulate_command(
        out: Path = typer.Option(
            ..., "--out", help="Directory to write blocks/, truth/, seeds/, tags/ into."
        ),
        seed: int = typer.Option(
            1, "--seed", min=0, help="The same seed gives byte-identical files."
        ),
        scale: ScaleName = typer.Option(
            ScaleName.small, "--scale", help="small ~20k txs, medium ~200k, large >= 2M."
        ),
        xor: bool = typer.Option(
            False, "--xor/--no-xor", help="Obfuscate blk files with an xor.dat key (Core 28+)."
        ),
        profile: ProfileName = typer.Option(
            ProfileName("easy"),
            "--profile",
            help="How adversarial the world is: easy (the original), realistic, hard; the _sw "
            "profiles draw each exchange's signing software (docs/simulator.md).",
        ),
    ) -> None:
        """Simulate a world with ground truth and write its chain as Bitcoin Core block files."""
        from chainsleuth.simulate.run import simulate

        console = Console(stderr=True)
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]simulate[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocks · {task.fields[txs]:,} txs · {task.fields[rate]:,.0f} tx/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(
                f"{scale.value} {profile.value} seed {seed}", total=None, txs=0, rate=0.0
            )

            def progress(done: int, total: int, txs: int) -> None:
                if done % 10 and done != total:
                    return
                rate = txs / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, total=total, txs=txs, rate=rate)

            summary = simulate(
                out, seed=seed, scale=scale.value, xor=xor, progress=progress,
                profile=profile.value,
            )  # fmt: skip
        table = Table(title=f"world written to {out}", show_header=False)
        table.add_row("tip", f"{summary.tip_height}  {summary.tip_hash}")
        table.add_row("blocks", f"{summary.n_blocks:,} main + {len(summary.stale_hashes)} stale")
        table.add_row("transactions", f"{summary.n_txs:,}")
        table.add_row("blk files", f"{summary.n_files}{'  (xor)' if xor else ''}")
        table.add_row(
            "time", f"{summary.seconds:.1f} s ({summary.n_txs / summary.seconds:,.0f} tx/s)"
        )
        table.add_row("truth", str(out / "truth"))
        Console().print(table)
