"""The `chainsleuth` command line: a thin layer over the library (typer + rich).

Each command parses its options, calls one library function and prints the result as a table
or, with --json, as JSON. Errors meant for the user (`ChainsleuthError`) print one line and
exit 2; they never show a traceback. The root callback puts the data directory in typer's
context (`core.console.CliState`); every command, here and in each stage's `cli.py`, reads it
with `core.console.data_dir(ctx)`. Each stage's commands are registered below by name.
"""

from __future__ import annotations

import errno
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from chainsleuth import __version__
from chainsleuth.api import cli as api_cli
from chainsleuth.cases import cli as cases_cli
from chainsleuth.cluster import cli as cluster_cli
from chainsleuth.core.console import (
    CliState,
    btc,
    console,
    data_dir,
    default_data_dir,
    err_console,
    kv_table,
    print_json,
)
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.prices import cli as prices_cli
from chainsleuth.simulate import cli as simulate_cli
from chainsleuth.tags import cli as tags_cli
from chainsleuth.trace import cli as trace_cli

app = typer.Typer(
    name="chainsleuth",
    help="Open-source Bitcoin forensics: ingest the chain, then query, cluster and trace it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    data: Path = typer.Option(
        None,
        "--data",
        help="Store directory (default: $CHAINSLEUTH_DATA, else ./chainsleuth-data).",
    ),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        console.print(f"chainsleuth {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())
        raise typer.Exit()
    ctx.obj = CliState(data if data is not None else default_data_dir())


def _open_store(ctx: typer.Context) -> Any:
    from chainsleuth.store.store import Store

    return Store.open(data_dir(ctx))


# ---------------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    ctx: typer.Context,
    blocks_dir: Path = typer.Option(
        None, "--blocks-dir", help="Bitcoin Core's blocks/ directory (read directly)."
    ),
    network: str = typer.Option(
        "auto", "--network", help="auto|main|test|testnet4|signet|regtest (blocks-dir only)."
    ),
    rpc: str = typer.Option(
        None, "--rpc", help="Bitcoin Core JSON-RPC URL, e.g. http://127.0.0.1:8332"
    ),
    rpc_cookie: Path = typer.Option(None, "--rpc-cookie", help="Bitcoin Core's .cookie file."),
    rpc_user: str = typer.Option(None, "--rpc-user"),
    rpc_password: str = typer.Option(None, "--rpc-password"),
    follow: bool = typer.Option(
        False, "--follow", help="Stay at the tip: poll for new blocks (and reorgs) until Ctrl-C."
    ),
    interval: float = typer.Option(
        10.0, "--interval", help="With --follow: seconds between polls.", min=0.01
    ),
    keep_scripts: bool = typer.Option(
        None,
        "--keep-scripts/--no-keep-scripts",
        help="Also store scriptSigs and witnesses (the inputs' script_sig and witness columns; "
        "NULL otherwise, and `tx TXID --raw` reads them from the node), and write into the "
        "parquet files the txids, values and scripts the views otherwise compute from the "
        "arrays. Chosen by a store's "
        "first ingest; later ingests keep that choice.",
    ),
    trace_rows: bool = typer.Option(
        None,
        "--trace-rows/--no-trace-rows",
        help="Also keep the backward trace's rows (16 B per input and output, about 48 GB at "
        "mainnet): `investigate` and `trace` then walk back with about 1.5x less CPU. Off for "
        "a new store; later ingests keep the choice, --no-trace-rows deletes them.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Ingest the chain: the first run everything, later runs only what is new (reorg-safe)."""
    from chainsleuth.store.ingest import ingest_blocks_dir, ingest_rpc

    if (blocks_dir is None) == (rpc is None):
        raise ChainsleuthError("give exactly one source: --blocks-dir DIR or --rpc URL")
    data = data_dir(ctx)
    if follow:
        _ingest_follow(
            data,
            blocks_dir,
            network,
            rpc,
            rpc_cookie,
            rpc_user,
            rpc_password,
            interval,
            json_out,
            keep_scripts,
            trace_rows,
        )
        return
    started = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} blocks"),
        TextColumn("{task.fields[rates]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=json_out or not err_console.is_terminal,
    )
    task = progress.add_task("ingest", total=None, rates="")

    def on_batch(report: Any, total: int) -> None:
        secs = max(time.perf_counter() - started, 1e-9)
        rates = (
            f"{report.n_blocks / secs:,.0f} blk/s  {report.n_txs / secs:,.0f} tx/s  "
            f"{report.bytes_read / secs / 1e6:,.1f} MB/s"
        )
        progress.update(task, completed=report.n_blocks, total=total, rates=rates)

    with progress:
        if blocks_dir is not None:
            report = ingest_blocks_dir(
                blocks_dir,
                data,
                network,
                progress=on_batch,
                keep_scripts=keep_scripts,
                trace_rows=trace_rows,
            )
        else:
            from chainsleuth.sources.rpc import RpcSource

            with RpcSource(
                rpc, cookie_file=rpc_cookie, user=rpc_user, password=rpc_password
            ) as source:
                report = ingest_rpc(
                    source,
                    data,
                    progress=on_batch,
                    keep_scripts=keep_scripts,
                    trace_rows=trace_rows,
                )
    summary = {
        "network": report.network,
        "blocks": report.n_blocks,
        "txs": report.n_txs,
        "inputs": report.n_inputs,
        "outputs": report.n_outputs,
        "new_addresses": report.n_new_addresses,
        "bytes_read": report.bytes_read,
        "seconds": round(report.seconds, 3),
        "tx_per_s": round(report.n_txs / report.seconds) if report.seconds else None,
        "mb_per_s": round(report.bytes_read / report.seconds / 1e6, 2) if report.seconds else None,
        "rolled_back_blocks": report.rolled_back,
        "fork_height": report.fork_height,
        "stale_blocks_skipped": len(report.stale_blocks),
        "tip_height": report.tip_height,
        "tip_hash": report.tip_hash,
        "data_dir": str(data),
        "left_for_next_run": report.left_for_next_run,
    }
    if json_out:
        print_json(summary)
        return
    left = report.left_for_next_run
    if report.n_blocks == 0 and not report.rolled_back:
        console.print(f"Up to date at height {report.tip_height} ({report.tip_hash}).")
    else:
        rows = [(k.replace("_", " "), v) for k, v in summary.items() if k != "left_for_next_run"]
        console.print(kv_table("Ingest", rows))
    if left is not None:
        console.print(
            Text(
                f"Left {left['bytes']:,} bytes for the next run: a block the node is still "
                f"writing at {left['file']} byte offset {left['offset']}."
            )
        )


def _ingest_follow(
    data: Path,
    blocks_dir: Path | None,
    network: str,
    rpc: str | None,
    rpc_cookie: Path | None,
    rpc_user: str | None,
    rpc_password: str | None,
    interval: float,
    json_out: bool,
    keep_scripts: bool | None = None,
    trace_rows: bool | None = None,
) -> None:
    """`ingest --follow`: one line (or JSON object) per poll that changed something."""
    from contextlib import ExitStack

    from chainsleuth.store.follow import (
        BlocksDirFeed,
        Feed,
        Poll,
        RpcFeed,
        StopEvent,
        follow,
        stop_on_signals,
    )

    with ExitStack() as stack:
        feed: Feed
        if blocks_dir is not None:
            feed = BlocksDirFeed(blocks_dir, network)
        else:
            from chainsleuth.sources.rpc import RpcSource

            source = stack.enter_context(
                RpcSource(rpc or "", cookie_file=rpc_cookie, user=rpc_user, password=rpc_password)
            )
            feed = RpcFeed(source)
        stop = stack.enter_context(stop_on_signals(StopEvent()))
        last_left: list[Any] = [None]
        # a catch-up of many blocks shows the one-shot ingest's progress bar (terminal only)
        bar = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} blocks"),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=json_out or not err_console.is_terminal,
        )
        task = bar.add_task("ingest", total=None, rates="")

        def on_batch(report: Any, total: int) -> None:
            if not bar.live.is_started:
                bar.start()
            secs = max(report.seconds, 1e-9)  # this poll's time so far
            rates = (
                f"{report.n_blocks / secs:,.0f} blk/s  {report.n_txs / secs:,.0f} tx/s  "
                f"{report.bytes_read / secs / 1e6:,.1f} MB/s"
            )
            bar.update(task, completed=report.n_blocks, total=total, rates=rates)

        def on_poll(poll: Poll) -> None:
            if bar.live.is_started:
                bar.stop()
            r = poll.report
            left = None if r is None else r.left_for_next_run
            if not poll.changed and poll.error is None and left == last_left[0]:
                return  # nothing new: stay quiet
            last_left[0] = left
            if json_out:
                line = {"poll": poll.number, "time": poll.time, "seconds": round(poll.seconds, 3)}
                if r is None:
                    line["error"] = poll.error
                else:
                    line.update(
                        blocks=r.n_blocks,
                        txs=r.n_txs,
                        bytes_read=r.bytes_read,
                        rolled_back_blocks=r.rolled_back,
                        fork_height=r.fork_height,
                        tip_height=r.tip_height,
                        tip_hash=r.tip_hash,
                        left_for_next_run=left,
                    )
                sys.stdout.write(json.dumps(line, default=str) + "\n")
                sys.stdout.flush()
                return
            console.print(Text(_poll_line(poll)), soft_wrap=True)

        if not json_out:
            console.print(
                Text(
                    f"following {feed.description} into {data}, a poll every "
                    f"{interval:g} s; Ctrl-C stops at the next commit"
                ),
                soft_wrap=True,
            )
        summary = follow(
            feed,
            data,
            interval=interval,
            stop=stop,
            on_poll=on_poll,
            progress=on_batch,
            keep_scripts=keep_scripts,
            trace_rows=trace_rows,
        )
    if json_out:
        print_json({"stopped": summary.stopped_by, **summary.__dict__})
    else:
        console.print(
            Text(
                f"stopped ({summary.stopped_by}) at height {summary.tip_height} "
                f"({summary.tip_hash}) after {summary.polls:,} polls: {summary.blocks:,} blocks "
                f"added, {summary.rolled_back:,} rolled back; the store is committed"
            ),
            soft_wrap=True,
        )


def _poll_line(poll: Any) -> str:
    """One line about a poll: time, reorg, blocks and throughput, the tip, what was left."""
    r = poll.report
    if r is None:
        return f"{poll.time} poll {poll.number}: {poll.error} (trying again at the next poll)"
    parts = [f"{poll.time} poll {poll.number}:"]
    if r.rolled_back:
        parts.append(f"reorg, {r.rolled_back:,} blocks rolled back to height {r.fork_height};")
    secs = max(poll.seconds, 1e-9)
    if r.n_blocks:
        parts.append(
            f"+{r.n_blocks:,} blocks, {r.n_txs:,} txs, {r.bytes_read / 1e6:,.1f} MB in "
            f"{poll.seconds:.2f} s ({r.n_blocks / secs:,.0f} blk/s, {r.n_txs / secs:,.0f} tx/s, "
            f"{r.bytes_read / secs / 1e6:,.1f} MB/s);"
        )
    parts.append(f"tip {r.tip_height} {r.tip_hash}")
    left = r.left_for_next_run
    if left is not None:
        parts.append(
            f"; left {left['bytes']:,} bytes of a block the node is still writing at "
            f"{left['file']} byte offset {left['offset']}"
        )
    return " ".join(parts).replace(" ;", ";")


# ---------------------------------------------------------------------------------- status
@app.command()
def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """What the data directory holds: the chain (tip, counts, last ingest), tags, clusters, prices."""
    from chainsleuth.store.store import FILL_COMMAND, Store, data_dir_contents

    store = Store.open_any(data_dir(ctx))
    contents = data_dir_contents(store.data_dir)
    size = sum(p.stat().st_size for p in store.data_dir.rglob("*") if p.is_file())
    m = store.manifest
    chain = store.has_chain
    info: dict[str, Any] = {
        "data_dir": str(store.data_dir),
        "holds": [part for part, there in contents.items() if there],
        "network": m["network"] if chain else None,
        "tip_height": None if m["tip"] is None else m["tip"]["height"],
        "tip_hash": None if m["tip"] is None else m["tip"]["hash"],
        **{k: v for k, v in m["counts"].items()},
        "store_bytes": size,
        "generation": m["generation"],
        "last_ingest": m["ingests"][-1] if m["ingests"] else None,
        "tags": _tags_status(store.data_dir) if contents["tags"] else None,
        "clusters": _clusters_status(store.data_dir) if contents["clusters"] else None,
        "prices": _prices_status(store.data_dir),
        "missing": {
            part: FILL_COMMAND[part].format(dir=store.data_dir)
            for part in ("chain", "tags", "clusters")
            if not contents[part]
        },
    }
    if json_out:
        print_json(info)
        return
    rows: list[tuple[str, Any]] = []
    for key, value in info.items():
        if key in ("tags", "clusters", "prices", "missing", "holds"):
            continue
        if not chain and key not in ("data_dir", "store_bytes"):
            continue
        rows.append((key.replace("_", " "), f"{value:,}" if isinstance(value, int) else value))
    if not chain:
        rows.append(("chain", "not ingested"))
    for part in ("tags", "clusters", "prices"):
        if info[part] is not None:
            summary = ", ".join(
                f"{k.replace('_', ' ')} {v:,}"
                if isinstance(v, int)
                else f"{k.replace('_', ' ')} {v}"
                for k, v in info[part].items()
            )
            rows.append((part, summary))
    for part, command in info["missing"].items():
        rows.append((f"no {part}", f"run `{command}`"))
    console.print(kv_table("chainsleuth data directory", rows))


def _tags_status(data_dir: Path) -> dict[str, Any]:
    from chainsleuth.tags.storage import read_manifest

    m = read_manifest(data_dir)
    packs = {k: v for k, v in m.get("packs", {}).items() if v.get("file")}
    return {
        "version": m.get("version"),
        "tagpacks": len(packs),
        "tags": sum(int(p.get("rows") or 0) for p in packs.values()),
        "actorpacks": len(m.get("actorpacks", {})),
        "updated_at": m.get("updated_at"),
    }


def _clusters_status(data_dir: Path) -> dict[str, Any]:
    m = json.loads((data_dir / "clusters" / "manifest.json").read_text())
    return {
        "policy": m.get("policy"),
        "generation": m.get("generation"),
        "clusters": m.get("clusters"),
        "addresses": m.get("addresses"),
    }


def _prices_status(data_dir: Path) -> dict[str, Any]:
    from chainsleuth.prices import imported_prices_path, resolve_prices

    source = resolve_prices(data_dir)
    info: dict[str, Any] = {"series": source.series, "path": str(source.path)}
    meta = imported_prices_path(data_dir).parent / "import.json"
    if source.series == "imported" and meta.exists():
        imported = json.loads(meta.read_text())
        info.update(first_date=imported.get("first_date"), last_date=imported.get("last_date"))
    return info


@app.command()
def verify(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Skip the sha256 of every file."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Check what the data directory holds against its manifests (chain, tags, clusters)."""
    from chainsleuth.store.verify import verify_data_dir

    result = verify_data_dir(data_dir(ctx), checksums=not quick)
    if json_out:
        print_json(result)
    else:
        for line in result["checks"]:
            console.print(
                Text.assemble(("ok  ", "green") if line["ok"] else ("FAIL ", "red"), line["check"])
            )
        for part, command in result["missing"].items():
            console.print(Text(f"--  no {part} here (nothing to check): `{command}` adds it"))
        console.print("data directory is consistent" if result["ok"] else "[red]it has problems[/]")
    if not result["ok"]:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------- lookups
@app.command()
def tx(
    ctx: typer.Context,
    txid: str,
    json_out: bool = typer.Option(False, "--json"),
    raw: bool = typer.Option(
        False,
        "--raw",
        help="Print the full raw tx as hex (scriptSigs and witnesses included), read from the "
        "node's blk files, or over --rpc when they are gone.",
    ),
    blocks_dir: Path = typer.Option(
        None, "--blocks-dir", help="With --raw: the node's blocks/ (default: the ingested one)."
    ),
    rpc: str = typer.Option(None, "--rpc", help="With --raw: Bitcoin Core JSON-RPC URL."),
    rpc_cookie: Path = typer.Option(None, "--rpc-cookie", help="Bitcoin Core's .cookie file."),
    rpc_user: str = typer.Option(None, "--rpc-user"),
    rpc_password: str = typer.Option(None, "--rpc-password"),
) -> None:
    """A transaction with its inputs (what they spend) and outputs (who spent them)."""
    from chainsleuth.store.lookups import transaction

    if raw:
        from contextlib import ExitStack

        from chainsleuth.store.raw import raw_transaction

        with ExitStack() as stack:
            source = None
            if rpc is not None:
                from chainsleuth.sources.rpc import RpcSource

                source = stack.enter_context(
                    RpcSource(rpc, cookie_file=rpc_cookie, user=rpc_user, password=rpc_password)
                )
            data = raw_transaction(_open_store(ctx), txid, blocks_dir=blocks_dir, rpc=source)
        if json_out:
            print_json({"txid": txid.lower(), "hex": data.hex()})
        else:
            sys.stdout.write(data.hex() + "\n")
        return
    found = transaction(_open_store(ctx), txid)
    if json_out:
        print_json(found)
        return
    head = {k: v for k, v in found.items() if k not in ("inputs", "outputs")}
    console.print(kv_table(f"Transaction {txid}", list(head.items())))
    ins = Table("vin", "spends", "address", "value", title="Inputs", title_justify="left")
    for i in found["inputs"]:
        spends = "coinbase" if i["is_coinbase"] else f"{i['prev_txid']}:{i['prev_vout']}"
        ins.add_row(str(i["vin"]), spends, i["address"] or "", btc(i["value"]))
    console.print(ins)
    outs = Table(
        "vout", "type", "address", "value", "spent by", title="Outputs", title_justify="left"
    )
    for o in found["outputs"]:
        outs.add_row(
            str(o["vout"]),
            o["script_type"],
            o["address"] or "",
            btc(o["value"]),
            o["spent_by_txid"] or "unspent",
        )
    console.print(outs)


@app.command()
def block(
    ctx: typer.Context, height_or_hash: str, json_out: bool = typer.Option(False, "--json")
) -> None:
    """A block by height or hash."""
    from chainsleuth.store.lookups import block as find_block

    found = find_block(_open_store(ctx), height_or_hash)
    if json_out:
        print_json(found)
        return
    txids = found.pop("txids")
    console.print(kv_table(f"Block {found['height']}", list(found.items())))
    shown = txids[:20]
    console.print("transactions:\n  " + "\n  ".join(shown))
    if len(txids) > len(shown):
        console.print(f"  ... and {len(txids) - len(shown):,} more")


@app.command()
def address(ctx: typer.Context, addr: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Received, sent, balance, tx count, first/last seen and script type of an address."""
    from chainsleuth.store.lookups import address_info

    data = data_dir(ctx)
    info = address_info(_open_store(ctx), addr)
    tagged = (data / "tags" / "manifest.json").exists()
    if json_out:
        if tagged:
            from chainsleuth.tags.query import address_attribution

            info["attribution"] = address_attribution(data, addr)
        print_json(info)
        return
    rows = [
        (k.replace("_", " "), btc(v) if k in ("received", "sent", "balance") else v)
        for k, v in info.items()
    ]
    console.print(kv_table(f"Address {addr}", rows))
    if tagged:
        tags_cli.show_attribution(console, data, addr)


@app.command()
def sql(
    ctx: typer.Context,
    query: str,
    fmt: str = typer.Option("table", "--format", help="table|csv|json"),
    limit: int = typer.Option(1000, "--limit", help="Rows shown in table format."),
) -> None:
    """Run read-only SQL (DuckDB) over the views blocks, txs, outputs, inputs, addresses (and
    tags, clusters, ... where those stages ran); works on whatever the directory holds."""
    import duckdb

    from chainsleuth.store.store import Store

    store = Store.open_any(data_dir(ctx))  # tags only, chain only, or both
    try:
        result = store.user_sql(query)  # SELECT only, no files outside the data directory
    except duckdb.Error as e:
        # one line: DuckDB's hints and the caret under the query go on the same line
        parts = [x.strip() for x in str(e).splitlines() if x.strip().strip("^")]
        raise ChainsleuthError(f"SQL error: {' '.join(parts)}") from None
    if fmt == "json":
        print_json(result.to_pylist())
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        sink = sys.stdout.buffer
        pacsv.write_csv(result, sink)
        sink.flush()
    elif fmt == "table":
        table = Table(*result.column_names)
        for row in result.slice(0, limit).to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
        if result.num_rows > limit:
            console.print(f"({result.num_rows:,} rows, {limit:,} shown; use --format csv)")
    else:
        raise ChainsleuthError(f"unknown --format {fmt!r}: use table, csv or json")


@app.command()
def doctor(
    ctx: typer.Context,
    blocks_dir: Path = typer.Option(
        None, "--blocks-dir", help="Bitcoin Core's blocks/ directory to check."
    ),
    rpc: str = typer.Option(None, "--rpc", help="Bitcoin Core JSON-RPC URL to check."),
    rpc_cookie: Path = typer.Option(None, "--rpc-cookie", help="Bitcoin Core's .cookie file."),
    rpc_user: str = typer.Option(None, "--rpc-user"),
    rpc_password: str = typer.Option(None, "--rpc-password"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Check the setup (blocks dir, RPC, disk, memory, PDF libraries): one line per check."""
    from chainsleuth.doctor import report_json, run_doctor

    checks = run_doctor(
        data_dir(ctx),
        blocks_dir=blocks_dir,
        rpc=rpc,
        rpc_cookie=rpc_cookie,
        rpc_user=rpc_user,
        rpc_password=rpc_password,
    )
    result = report_json(checks)
    if json_out:
        print_json(result)
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            line = Text(f"{c.status:<4} ", style=colour[c.status])
            line.append(c.line()[5:])
            console.print(line, soft_wrap=True)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes."),
) -> None:
    """Build the simulated Welcome-to-Video world, ingest it and show what is there."""
    from chainsleuth.demo import run_demo

    run_demo(out, console)


# Each stage owns its commands (`<stage>/cli.py`, `register(app)`); the root adds them by name,
# in this order (the order of `chainsleuth --help`). A stage whose face fails to import fails
# the whole CLI, loudly, rather than losing its commands.
for stage_cli in (
    simulate_cli,
    cluster_cli,
    tags_cli,
    trace_cli,
    cases_cli,
    prices_cli,
    api_cli,
):
    stage_cli.register(app)


def main() -> None:
    """Entry point: run the app, turning user-facing errors into one clear line."""
    try:
        app()
    except ChainsleuthError as e:
        # one line, never wrapped, and no rich markup read from the message (paths may hold [])
        err_console.print(Text.assemble(("error: ", "red"), str(e)), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; the store keeps its last committed state")
        sys.exit(130)
    except OSError as e:
        # the machine, not the input: a full disk, a file-size or disk quota, a read-only or
        # forbidden folder. Every write is atomic and committed per batch, so nothing stored
        # is half-written; say so in one line and let the user free space and run again.
        if e.errno not in _MACHINE_ERRNOS:
            raise
        where = f": {e.filename}" if e.filename else ""
        err_console.print(
            Text.assemble(
                ("error: ", "red"),
                f"{e.strerror or e}{where}; the store keeps its last committed state, "
                "run the command again once that is fixed",
            ),
            soft_wrap=True,
        )
        sys.exit(1)


#: OSError numbers that come from the machine (space, quotas, permissions), reported in one
#: line by `main`; any other OSError is a bug and keeps its traceback.
_MACHINE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)
