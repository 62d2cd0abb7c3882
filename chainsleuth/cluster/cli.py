"""CLI commands of the cluster stage: cluster, cluster-of, explain, export clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from chainsleuth.core.console import console, data_dir, print_json
from chainsleuth.core.errors import ChainsleuthError


def _attribution(data: Path, address: str, quiet: bool) -> dict[str, Any] | None:
    """Tags of an address and its cluster (printed unless `quiet`); None without tags."""
    if not (data / "tags" / "manifest.json").exists():
        return None
    from chainsleuth.tags.cli import show_attribution
    from chainsleuth.tags.query import address_attribution

    if not quiet:
        show_attribution(console, data, address)
    return address_attribution(data, address)


def register(app: typer.Typer) -> None:
    """Add the cluster stage's commands to the root CLI."""

    @app.command("cluster")
    def cluster_cmd(
        ctx: typer.Context,
        policy: str = typer.Option("conservative", "--policy", help="Merge policy (see docs)."),
        from_scratch: bool = typer.Option(False, "--from-scratch"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Cluster addresses into wallets (incremental: only new transactions)."""
        from chainsleuth.cluster.engine import cluster_store

        data = data_dir(ctx)
        attribution = None
        tags_present = (data / "tags" / "manifest.json").exists()
        if tags_present:
            # The super-cluster guard refuses to join large clusters of different actors.
            from chainsleuth.tags.attribution import address_actor_codes

            attribution, _names = address_actor_codes(data)
        report = cluster_store(data, policy, attribution=attribution, from_scratch=from_scratch)
        if tags_present:
            from chainsleuth.tags.attribution import recompute_cluster_tags

            recompute_cluster_tags(data)
        if json_out:
            print_json(report.__dict__)
            return
        console.print(
            f"policy {report.policy}: {report.txs_processed:,} txs "
            f"({'from scratch' if report.from_scratch else 'incremental'}) in "
            f"{report.seconds:.2f} s; {report.addresses:,} addresses in {report.clusters:,} "
            f"clusters (largest {report.largest_cluster:,}); {report.merges:,} merges "
            f"{report.rules}; {report.coinjoins:,} CoinJoins excluded; "
            f"{report.quarantined:,} merges quarantined"
        )

    @app.command("cluster-of")
    def cluster_of_cmd(
        ctx: typer.Context, address: str, json_out: bool = typer.Option(False, "--json")
    ) -> None:
        """The cluster of an address: size, first/last seen, balance, the rules that built it."""
        from chainsleuth.cluster.summary import cluster_summary

        data = data_dir(ctx)
        info = cluster_summary(data, address)
        if json_out:
            info["attribution"] = _attribution(data, address, quiet=True)
            print_json(info)
            return
        table = Table(show_header=False, title=f"Cluster of {address}", title_justify="left")
        for key, value in info.items():
            table.add_row(key.replace("_", " "), str(value))
        console.print(table)
        _attribution(data, address, quiet=False)

    @app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        address_a: str,
        address_b: str,
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """The shortest chain of merges linking two addresses (each a tx and a rule)."""
        from chainsleuth.cluster.summary import explain_link
        from chainsleuth.store.store import Store

        data = data_dir(ctx)
        store = Store.open(data)
        a, b = store.address_id(address_a), store.address_id(address_b)
        steps = explain_link(data, a, b)
        if json_out:
            tags = {x: _attribution(data, x, quiet=True) for x in (address_a, address_b)}
            print_json({"linked": steps is not None, "steps": steps or [], "attribution": tags})
            return
        if steps is None:
            console.print(f"not linked: {address_a} and {address_b} are in different clusters")
        else:
            table = Table("step", "from", "to", "txid", "rule", "confidence")
            for k, s in enumerate(steps, 1):
                rule = s["rule"] if not s["change_rules"] else f"change ({s['change_rules']})"
                table.add_row(str(k), s["from"], s["to"], s["txid"], rule, f"{s['confidence']:.2f}")
            console.print(table)
        for shown in (address_a, address_b):
            _attribution(data, shown, quiet=False)

    export_app = typer.Typer(help="Export results.", no_args_is_help=True)

    @export_app.command("clusters")
    def export_clusters(
        ctx: typer.Context,
        out: Path = typer.Option(..., "-o", "--out", help="FILE.csv or FILE.parquet"),
    ) -> None:
        """Write address, cluster_id for every address."""
        from chainsleuth.store.store import Store

        table = Store.open(data_dir(ctx)).sql(
            "SELECT address, cluster_id FROM clusters ORDER BY address_id"
        )
        if out.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, out, compression="zstd")
        elif out.suffix == ".csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, out)
        else:
            raise ChainsleuthError("give -o FILE.csv or -o FILE.parquet")
        console.print(f"wrote {table.num_rows:,} rows to {out}")

    app.add_typer(export_app, name="export")
