"""CLI commands of the trace stage: `trace ADDR|TXID`, `path A B` and `exposure ADDR|CLUSTER`,
thin layers over `trace.rows`, `trace.paths` and `trace.exposure`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from chainsleuth.core.console import console, data_dir, print_json


def _node_names(data: Path, nodes: list[int], level: str) -> dict[int, str]:
    """Display names of path nodes: the address string, or "cluster N"."""
    if level != "address":
        return {n: f"cluster {n}" for n in nodes}
    from chainsleuth.store.store import Store

    ids = np.array(sorted(set(nodes)), np.int64)
    strings = Store.open(data).addresses(ids).to_pylist()
    return {int(i): str(a) for i, a in zip(ids.tolist(), strings, strict=True)}


def _window(data: Path, since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """--since/--until as block heights (the same parsing as `trace`'s)."""
    if since is None and until is None:
        return None, None
    from chainsleuth.store.store import Store
    from chainsleuth.trace.rows import window_heights

    return window_heights(Store.open(data), since, until)


_SINCE_HELP = "time window start: block height or date YYYY-MM-DD"
_UNTIL_HELP = "time window end: block height or date YYYY-MM-DD"


def register(app: typer.Typer) -> None:
    @app.command("trace")
    def trace(
        ctx: typer.Context,
        target: str = typer.Argument(
            ...,
            help="ADDR (its receiving outputs), TXID (its outputs), TXID:VOUT, or a cluster id",
        ),
        direction: str = typer.Option("back", "--direction", help="back | forward"),
        policy: str = typer.Option("haircut", "--policy", help="poison | haircut | fifo"),
        max_hops: int = typer.Option(6, "--max-hops"),
        min_value: int = typer.Option(0, "--min-value", help="drop amounts below (satoshis)"),
        stops: bool = typer.Option(
            True,
            "--stops/--no-stops",
            help="end at attributed clusters and CoinJoins (needs a clustering)",
        ),
        walk_coinjoins: bool = typer.Option(
            False, "--walk-coinjoins", help="walk through CoinJoins (rows marked low confidence)"
        ),
        since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
        until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
        limit: int = typer.Option(50, "--limit", help="rows shown in the table (largest first)"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Trace value backward to its sources or forward to its destinations."""
        from chainsleuth.trace.rows import trace_rows

        rows = trace_rows(
            data_dir(ctx),
            target,
            direction,
            policy,
            max_hops,
            min_value,
            stops,
            walk_coinjoins,
            since,
            until,
        )
        if json_out:
            print_json(rows)
            return
        title = f"{len(rows)} {'sources' if direction == 'back' else 'destinations'}"
        shown = sorted(rows, key=lambda r: -r["amount"])[:limit]
        if len(shown) < len(rows):
            title += f", the {len(shown)} largest (all with --json or --limit)"
        table = Table("address", "BTC", "hops", "kind", "path", title=title)
        for r in shown:
            kind = r["kind"] + (f": {r['entity']} ({r['category']})" if r["entity"] else "")
            kind += " (low confidence)" if r["low_confidence"] else ""
            path = " → ".join(t[:12] + "…" for t in r["path"]) or "(seed)"
            amount = f"{r['amount'] / 1e8:.8f}"
            table.add_row(r["address"] or "-", amount, str(r["hops"]), kind, path)
        console.print(table)

    @app.command("path")
    def path(
        ctx: typer.Context,
        source: str = typer.Argument(..., help="source address (with --cluster: its cluster)"),
        target: str = typer.Argument(..., help="target address (with --cluster: its cluster)"),
        mode: str = typer.Option("fewest_hops", "--mode", help="fewest_hops | largest_flow"),
        cluster: bool = typer.Option(False, "--cluster", help="search between clusters"),
        max_hops: int = typer.Option(8, "--max-hops"),
        since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
        until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Find a path of transactions from one address (or cluster) to another."""
        from chainsleuth.trace.paths import find_path

        level = "cluster" if cluster else "address"
        lo, hi = _window(data_dir(ctx), since, until)
        result = find_path(
            data_dir(ctx), source, target, mode, level, max_hops, min_height=lo, max_height=hi
        )
        if json_out:
            print_json(result)
            return
        if not result["found"]:
            why = " (search limit reached)" if result["status"] == "limit" else ""
            console.print(f"no path within {max_hops} hops{why}")
            return
        title = f"{result['n_hops']} hops ({mode}, {level} level)"
        if result["bottleneck"] is not None:
            title += f", bottleneck {result['bottleneck'] / 1e8:.8f} BTC"
        names = _node_names(
            data_dir(ctx),
            [h["from"] for h in result["hops"]] + [h["to"] for h in result["hops"]],
            level,
        )
        table = Table("hop", "txid", "from", "to", "BTC in", "BTC out", title=title)
        for k, h in enumerate(result["hops"], 1):
            table.add_row(
                str(k),
                h["txid"],
                names[h["from"]],
                names[h["to"]],
                f"{h['amount_in'] / 1e8:.8f}",
                f"{h['amount'] / 1e8:.8f}",
            )
        console.print(table)

    @app.command("exposure")
    def exposure_command(
        ctx: typer.Context,
        subject: str = typer.Argument(..., help="ADDR, or CLUSTER_ID (digits)"),
        max_hops: int = typer.Option(3, "--max-hops"),
        since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
        until: str | None = typer.Option(None, "--until", help=_UNTIL_HELP),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Direct and indirect exposure of received and sent value, by category."""
        from chainsleuth.trace.exposure import exposure

        lo, hi = _window(data_dir(ctx), since, until)
        result = exposure(data_dir(ctx), subject, max_hops=max_hops, min_height=lo, max_height=hi)
        if json_out:
            print_json(result)
            return
        for side in ("received", "sent"):
            data = result[side]
            table = Table(
                "category",
                "direct BTC",
                "direct %",
                f"≤{max_hops} hops BTC",
                f"≤{max_hops} hops %",
                title=f"{side}: {data['total'] / 1e8:.8f} BTC ({result['level']} "
                f"{result['subject']})",
            )
            for cat in sorted(set(data["direct"]) | set(data["indirect"])):
                d = data["direct"].get(cat, {"amount": 0, "share": 0.0})
                i = data["indirect"].get(cat, {"amount": 0, "share": 0.0})
                table.add_row(
                    cat,
                    f"{d['amount'] / 1e8:.8f}",
                    f"{100 * d['share']:.2f}",
                    f"{i['amount'] / 1e8:.8f}",
                    f"{100 * i['share']:.2f}",
                )
            console.print(table)
