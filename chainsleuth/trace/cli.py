"""CLI commands of the trace stage: `trace ADDR|TXID`, `path A B` and `exposure ADDR|CLUSTER`,
thin layers over `trace.engine`, `trace.paths` and `trace.exposure`."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from chainsleuth.core.console import make_console
from chainsleuth.core.errors import ChainsleuthError

console = make_console()
_TXID = re.compile(r"^[0-9a-fA-F]{64}$")


def _data_dir() -> Path:
    from chainsleuth.cli import State

    return State.data_dir


def _addresses(store: Any, address_ids: np.ndarray) -> list[str | None]:
    """Address strings of address ids (None where an output has no address)."""
    from chainsleuth.parse.address_kernels import encode_address_keys

    ids = np.asarray(address_ids, np.int64)
    names: list[str | None] = [None] * ids.shape[0]
    known = np.flatnonzero(ids != 0xFFFFFFFF)
    if known.shape[0]:
        rows = np.asarray(store.array("address_key"))[ids[known]]
        encoded = encode_address_keys(
            np.ascontiguousarray(rows[:, 0]),
            np.ascontiguousarray(rows[:, 2:]),
            np.ascontiguousarray(rows[:, 1]),
            store.network.code,
        ).to_pylist()
        for k, name in zip(known.tolist(), encoded, strict=True):
            names[k] = name
    return names


def trace_rows(
    data_dir: Path,
    target: str,
    direction: str = "back",
    policy: str = "haircut",
    max_hops: int = 6,
    min_value: int = 0,
    stops: bool = True,
    walk_coinjoins: bool = False,
    since: str | None = None,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """Trace from `target` and return one dict per row. The target is an address (its receiving
    outputs), a TXID (its outputs), TXID:VOUT (one output) or a cluster id (digits: the
    receiving outputs of every address in that cluster).

    With `stops` (and a clustering), the walk ends at attributed clusters other than the
    seeds' own (kind "cluster", with the entity and category) and at the txs the cluster stage
    flagged as CoinJoins (kind "coinjoin", with the mixer), unless `walk_coinjoins`: then it
    walks through them and marks the rows beyond as low confidence. `since` / `until` (a block
    height or a UTC date YYYY-MM-DD, both included) bound the time window of the walk.
    """
    from chainsleuth.cluster.engine import Clusters, read_manifest
    from chainsleuth.core.address import AddressError
    from chainsleuth.store.store import Store
    from chainsleuth.trace.engine import (
        KINDS,
        outputs_of_addresses,
        outputs_of_tx,
        path_txids,
        trace_back,
        trace_forward,
        txid_hex,
    )
    from chainsleuth.trace.exposure import cluster_attribution, coinjoin_flags

    if direction not in ("back", "forward"):
        raise ChainsleuthError("--direction is back or forward")
    store = Store.open(data_dir)
    txid, _, vout = target.partition(":")
    if _TXID.match(txid):
        tx_id = store.tx_id_of(txid.lower())
        if tx_id is None:
            raise ChainsleuthError(f"tx {txid} is not in the store")
        seeds = outputs_of_tx(store, tx_id)
        if vout:
            if not vout.isdigit() or int(vout) >= seeds.shape[0]:
                raise ChainsleuthError(
                    f"tx {txid} has no output {vout!r} ({seeds.shape[0]} outputs)"
                )
            seeds = seeds[int(vout) : int(vout) + 1]
    elif target.isdigit():
        if read_manifest(data_dir) is None:
            raise ChainsleuthError("a cluster id needs a clustering: run `chainsleuth cluster`")
        members = np.flatnonzero(np.asarray(Clusters(data_dir).cluster_of) == int(target))
        if members.shape[0] == 0:
            raise ChainsleuthError(f"no cluster {target}")
        seeds = outputs_of_addresses(store, members)
    else:
        try:
            address_id = store.address_id_of(target)
        except AddressError as e:
            raise ChainsleuthError(
                f"not an address, TXID[:VOUT] or cluster id: {target!r} ({e})"
            ) from None
        if address_id is None:
            raise ChainsleuthError(f"address {target} has never been seen in the store")
        seeds = outputs_of_addresses(store, [address_id])
    run = trace_back if direction == "back" else trace_forward
    options: dict[str, Any] = {}
    attribution: dict[int, tuple[str | None, str]] = {}
    mixer: dict[int, str] = {}
    cluster_of = None
    if stops and read_manifest(data_dir) is not None:
        cluster_of = np.asarray(Clusters(data_dir).cluster_of, np.int64)
        seed_addresses = np.asarray(store.array("output_address"))[seeds].astype(np.int64)
        own = set(cluster_of[seed_addresses[seed_addresses != 0xFFFFFFFF]].tolist())
        attribution = {c: v for c, v in cluster_attribution(data_dir).items() if c not in own}
        is_coinjoin, mixer = coinjoin_flags(data_dir, store.counts["txs"])
        options = {
            "stop_clusters": np.array(sorted(attribution), np.int64),
            "cluster_of": cluster_of,
            "is_coinjoin": is_coinjoin,
            "walk_coinjoins": walk_coinjoins,
        }
    if since is not None:
        options["min_height"] = window_height(store, since, "since")
    if until is not None:
        options["max_height"] = window_height(store, until, "until")
    result = run(data_dir, seeds, policy=policy, max_hops=max_hops, min_value=min_value, **options)
    address_ids = np.asarray(store.array("output_address"))[result.output].astype(np.int64)
    addresses = _addresses(store, address_ids)
    txids = txid_hex(store, result.tx)

    def entity(k: int) -> tuple[str | None, str | None]:
        kind = KINDS[int(result.kind[k])]
        if kind == "coinjoin":
            return mixer.get(int(result.tx[k]), "coinjoin"), "coinjoin"
        if kind == "cluster" and cluster_of is not None and address_ids[k] != 0xFFFFFFFF:
            name, category = attribution.get(int(cluster_of[address_ids[k]]), (None, None))
            return name, category
        return None, None

    names = [entity(k) for k in range(len(result))]
    return [
        {
            "seed_output_id": int(result.seeds[result.seed[k]]),
            "output_id": int(result.output[k]),
            "address": addresses[k],
            "txid": txids[k],
            "amount": int(result.amount[k]),
            "hops": int(result.hops[k]),
            "kind": KINDS[int(result.kind[k])],
            "entity": names[k][0],
            "category": names[k][1],
            "poison": bool(result.flags[k] & 1),
            "low_confidence": bool(result.flags[k] & 2),
            "path": path_txids(store, result, k),
        }
        for k in range(len(result))
    ]


def window_height(store: Any, value: str, edge: str) -> int:
    """A time window edge as a block height: digits are a height; YYYY-MM-DD a UTC date (since:
    the first block of that day; until: the last block of that day)."""
    import datetime as dt

    if value.isdigit():
        return int(value)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ChainsleuthError(
            f"--{edge} takes a block height or a date YYYY-MM-DD, not {value!r}"
        ) from None
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    if edge == "since":
        row = store.sql(f"SELECT min(height) FROM blocks WHERE time >= '{start:%Y-%m-%d}'")
        found = row.column(0)[0].as_py()
        return int(found) if found is not None else 1 << 31
    row = store.sql(
        f"SELECT max(height) FROM blocks WHERE time < '{start + dt.timedelta(days=1):%Y-%m-%d}'"
    )
    found = row.column(0)[0].as_py()
    return int(found) if found is not None else -1


def _node_names(nodes: list[int], level: str) -> dict[int, str]:
    """Display names of path nodes: the address string, or "cluster N"."""
    if level != "address":
        return {n: f"cluster {n}" for n in nodes}
    from chainsleuth.parse.address_kernels import encode_address_keys
    from chainsleuth.store.store import Store

    store = Store.open(_data_dir())
    ids = np.array(sorted(set(nodes)), np.int64)
    rows = np.asarray(store.array("address_key"))[ids]
    strings = encode_address_keys(
        np.ascontiguousarray(rows[:, 0]),
        np.ascontiguousarray(rows[:, 2:]),
        np.ascontiguousarray(rows[:, 1]),
        store.network.code,
    ).to_pylist()
    return {int(i): str(a) for i, a in zip(ids.tolist(), strings, strict=True)}


def register(app: typer.Typer) -> None:
    @app.command("trace")
    def trace(
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
        since: str | None = typer.Option(
            None, "--since", help="time window start: block height or date YYYY-MM-DD"
        ),
        until: str | None = typer.Option(
            None, "--until", help="time window end: block height or date YYYY-MM-DD"
        ),
        limit: int = typer.Option(50, "--limit", help="rows shown in the table (largest first)"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Trace value backward to its sources or forward to its destinations."""
        rows = trace_rows(
            _data_dir(),
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
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
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
        source: str = typer.Argument(..., help="source address (with --cluster: its cluster)"),
        target: str = typer.Argument(..., help="target address (with --cluster: its cluster)"),
        mode: str = typer.Option("fewest_hops", "--mode", help="fewest_hops | largest_flow"),
        cluster: bool = typer.Option(False, "--cluster", help="search between clusters"),
        max_hops: int = typer.Option(8, "--max-hops"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Find a path of transactions from one address (or cluster) to another."""
        from chainsleuth.trace.paths import find_path

        level = "cluster" if cluster else "address"
        result = find_path(_data_dir(), source, target, mode, level, max_hops)
        if json_out:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            return
        if not result["found"]:
            why = " (search limit reached)" if result["status"] == "limit" else ""
            console.print(f"no path within {max_hops} hops{why}")
            return
        title = f"{result['n_hops']} hops ({mode}, {level} level)"
        if result["bottleneck"] is not None:
            title += f", bottleneck {result['bottleneck'] / 1e8:.8f} BTC"
        names = _node_names(
            [h["from"] for h in result["hops"]] + [h["to"] for h in result["hops"]], level
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
        subject: str = typer.Argument(..., help="ADDR, or CLUSTER_ID (digits)"),
        max_hops: int = typer.Option(3, "--max-hops"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """Direct and indirect exposure of received and sent value, by category."""
        from chainsleuth.trace.exposure import exposure

        result = exposure(_data_dir(), subject, max_hops=max_hops)
        if json_out:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
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
