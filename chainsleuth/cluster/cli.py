"""CLI commands of the cluster stage: cluster, cluster-of, explain, export clusters."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from chainsleuth.core.console import make_console
from chainsleuth.core.errors import ChainsleuthError

console = make_console()


def _data_dir() -> Path:
    from chainsleuth.cli import State

    return State.data_dir


def _address_id(store: Any, address: str) -> int:
    from chainsleuth.core.address import AddressError

    try:
        found = store.address_id_of(address)
    except AddressError as e:
        raise ChainsleuthError(f"not a valid address: {address!r} ({e})") from None
    if found is None:
        raise ChainsleuthError(f"address {address} has never been seen in the store")
    return int(found)


def cluster_summary(data_dir: Path, address: str) -> dict[str, Any]:
    """Size, first/last seen, balance and the rules that built the cluster of an address."""
    from chainsleuth.cluster.engine import Clusters
    from chainsleuth.store.store import Store
    from chainsleuth.trace.engine import outputs_of_addresses

    store = Store.open(data_dir)
    clusters = Clusters(data_dir)
    address_id = _address_id(store, address)
    cluster_id = int(clusters.cluster_of[address_id])
    members = clusters.members(cluster_id)
    outs = outputs_of_addresses(store, members)  # the index for small clusters
    values = np.asarray(store.array("output_value"))[outs]
    spent = store.spent_by_tx()[outs] >= 0
    first_out = np.asarray(store.array("tx_first_output"))
    creating = np.searchsorted(first_out, outs, side="right") - 1
    heights = np.asarray(store.array("tx_height"))[creating]
    merges = clusters.merges()
    a_ids = merges.column("address_a_id").to_numpy()
    inside = np.asarray(clusters.cluster_of)[a_ids] == cluster_id if a_ids.shape[0] else a_ids
    rules: dict[str, int] = {}
    if a_ids.shape[0]:
        rule_col = np.asarray(merges.column("rule").to_pylist(), dtype=object)[inside]
        change_col = np.asarray(merges.column("change_rules").to_pylist(), dtype=object)[inside]
        for rule, change in zip(rule_col, change_col, strict=True):
            key = rule if change is None else f"change:{change}"
            rules[key] = rules.get(key, 0) + 1
    return {
        "address": address,
        "cluster_id": cluster_id,
        "size": int(members.shape[0]),
        "received": int(values.sum()),
        "balance": int(values[~spent].sum()),
        "n_outputs": int(outs.shape[0]),
        "first_seen_height": int(heights.min()) if heights.shape[0] else None,
        "last_seen_height": int(heights.max()) if heights.shape[0] else None,
        "rules": rules,
        "policy": clusters.manifest["policy"],
    }


def _attribution(address: str, quiet: bool) -> dict[str, Any] | None:
    """Tags of an address and its cluster (printed unless `quiet`); None without tags."""
    if not (_data_dir() / "tags" / "manifest.json").exists():
        return None
    from chainsleuth.tags.cli import attribution_json, show_attribution

    if not quiet:
        show_attribution(console, _data_dir(), address)
    return attribution_json(_data_dir(), address)


def register(app: typer.Typer) -> None:
    """Add the cluster stage's commands to the root CLI."""

    @app.command("cluster")
    def cluster_cmd(
        policy: str = typer.Option("conservative", "--policy", help="Merge policy (see docs)."),
        from_scratch: bool = typer.Option(False, "--from-scratch"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Cluster addresses into wallets (incremental: only new transactions)."""
        from chainsleuth.cluster.engine import cluster_store

        attribution = None
        tags_present = (_data_dir() / "tags" / "manifest.json").exists()
        if tags_present:
            # The super-cluster guard refuses to join large clusters of different actors.
            from chainsleuth.tags.attribution import address_actor_codes

            attribution, _names = address_actor_codes(_data_dir())
        report = cluster_store(
            _data_dir(), policy, attribution=attribution, from_scratch=from_scratch
        )
        if tags_present:
            from chainsleuth.tags.attribution import recompute_cluster_tags

            recompute_cluster_tags(_data_dir())
        if json_out:
            sys.stdout.write(json.dumps(report.__dict__, indent=2) + "\n")
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
    def cluster_of_cmd(address: str, json_out: bool = typer.Option(False, "--json")) -> None:
        """The cluster of an address: size, first/last seen, balance, the rules that built it."""
        info = cluster_summary(_data_dir(), address)
        if json_out:
            info["attribution"] = _attribution(address, quiet=True)
            sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
            return
        table = Table(show_header=False, title=f"Cluster of {address}", title_justify="left")
        for key, value in info.items():
            table.add_row(key.replace("_", " "), str(value))
        console.print(table)
        _attribution(address, quiet=False)

    @app.command("explain")
    def explain_cmd(
        address_a: str, address_b: str, json_out: bool = typer.Option(False, "--json")
    ) -> None:
        """The shortest chain of merges linking two addresses (each a tx and a rule)."""
        from chainsleuth.cluster.engine import Clusters
        from chainsleuth.store.store import Store

        store = Store.open(_data_dir())
        clusters = Clusters(_data_dir())
        a, b = _address_id(store, address_a), _address_id(store, address_b)
        steps = clusters.explain(a, b)
        keys = store.array("address_key")
        if steps is not None:
            from chainsleuth.parse.address_kernels import encode_address_keys

            ids = np.array([s["to_address_id"] for s in steps] + [a], np.int64)
            rows = np.asarray(keys)[ids]
            names = encode_address_keys(
                np.ascontiguousarray(rows[:, 0]),
                np.ascontiguousarray(rows[:, 2:]),
                np.ascontiguousarray(rows[:, 1]),
                store.network.code,
            ).to_pylist()
            by_id = dict(zip(ids.tolist(), names, strict=True))
            for s in steps:
                s["from"] = by_id[s["from_address_id"]]
                s["to"] = by_id[s["to_address_id"]]
        if json_out:
            tags = {x: _attribution(x, quiet=True) for x in (address_a, address_b)}
            payload = {"linked": steps is not None, "steps": steps or [], "attribution": tags}
            sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
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
            _attribution(shown, quiet=False)

    export_app = typer.Typer(help="Export results.", no_args_is_help=True)

    @export_app.command("clusters")
    def export_clusters(
        out: Path = typer.Option(..., "-o", "--out", help="FILE.csv or FILE.parquet"),
    ) -> None:
        """Write address, cluster_id for every address."""
        from chainsleuth.store.store import Store

        table = Store.open(_data_dir()).sql(
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
