"""`chainsleuth tags ...` and `chainsleuth entity NAME`: a thin typer layer over chainsleuth.tags.

`register(app)` adds the `tags` command group and the `entity` command to the root CLI. Every
lookup takes `--json`; user errors are `ChainsleuthError`s, which the root CLI prints as one
line. `show_attribution` renders an address's tags and its cluster's attribution for the root
`address`, `cluster-of` and `explain` commands (`tags.query.address_attribution` is its --json
form).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from chainsleuth.core.console import console, data_dir, kv_table, print_json

__all__ = ["register", "show_attribution"]

tags_app = typer.Typer(
    name="tags",
    help="Attribution: import TagPacks/ActorPacks and CSV, add analysts' tags, look tags up.",
    no_args_is_help=True,
)


def _kv(title: str, rows: list[tuple[str, Any]]) -> Table:
    return kv_table(title, rows, none="")


def _tags_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("address", overflow="fold")  # never cut an address short
    for name in ("label", "category", "actor", "confidence", "source", "tagpack"):
        table.add_column(name, overflow="fold")
    for r in rows:
        category = r["category"] or ""
        if r.get("abuse"):
            category = f"{category}{' / ' if category else ''}[red]{r['abuse']}[/]"
        table.add_row(
            r["address"],
            r["label"],
            category,
            r["actor"] or "",
            f"{r['confidence']} ({r['confidence_level']})",
            r["source"],
            r["tagpack"],
        )
    return table


def _cluster_rows(c: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("cluster", c["cluster_id"]),
        ("actor", c["actor"] or "(none)"),
        ("label", c["label"]),
        ("category", c["category"]),
        ("confidence", f"{c['confidence']} / 100"),
        (
            "addresses",
            f"{c['n_addresses']:,} ({c['n_tagged_addresses']:,} tagged, {c['n_tags']:,} tags)",
        ),
        ("tagpacks", ", ".join(c["tagpacks"])),
    ]
    if c["abuses"]:
        rows.append(("abuses", ", ".join(c["abuses"])))
    if c["conflict"]:
        rows.append(("[red]CONFLICT[/]", "; ".join(c["conflicts"])))
        shown = c["conflicting_tags"][:10]
        more = len(c["conflicting_tags"]) - len(shown)
        rows.append(
            ("conflicting tags", ", ".join(shown) + (f" … and {more:,} more" if more > 0 else ""))
        )
    return rows


def show_attribution(console: Console, data: Path, address: str) -> None:
    """Print the tags of `address` and the attribution of its cluster (nothing if untagged)."""
    from chainsleuth.tags.query import address_attribution

    info = address_attribution(data, address)
    if info["tags"]:
        console.print(_tags_table(info["tags"], "Tags"))
    if info["cluster"]:
        console.print(_kv("Cluster attribution", _cluster_rows(info["cluster"])))
    if not info["tags"] and not info["cluster"]:
        console.print("no tags on this address or its cluster")


# ----------------------------------------------------------------------------------- import
@tags_app.command("import")
def import_cmd(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ..., help="TagPack/ActorPack YAML files or directories, or CSV files."
    ),
    problems_csv: Path = typer.Option(
        None, "--problems", help="Write every problem (file, line, code, message) to this CSV."
    ),
    show: int = typer.Option(20, "--show", help="Problems listed on screen."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Import GraphSense TagPacks and ActorPacks (re-runnable: unchanged packs are skipped)."""
    from chainsleuth.tags.imports import import_tagpacks

    with console.status("importing tags", spinner="dots") if not json_out else _null():
        report = import_tagpacks(data_dir(ctx), paths)
    if problems_csv is not None:
        with open(problems_csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "line", "severity", "code", "message"])
            for p in report.problems:
                writer.writerow([p.file, p.line, p.severity, p.code, p.message])
    if json_out:
        out = report.as_dict()
        out["problems"] = out["problems"][:show] if problems_csv is None else []
        print_json(out)
        return
    console.print(str(report))
    by_code = report.problems_by_code("error")
    if by_code:
        console.print(
            "invalid by reason: " + ", ".join(f"{code} {n:,}" for code, n in by_code.most_common())
        )
    for p in report.problems[:show]:
        colour = "red" if p.severity == "error" else "yellow"
        console.print(
            f"  [{colour}]{p.severity}[/] {p.file}:{p.line} {p.code}: {p.message}", highlight=False
        )
    if len(report.problems) > show:
        console.print(f"  … {len(report.problems) - show:,} more (use --problems FILE.csv)")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -------------------------------------------------------------------------------------- add
@tags_app.command("add")
def add_cmd(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="The Bitcoin address."),
    label: str = typer.Option(..., "--label", help="What the address is (free text)."),
    source: str = typer.Option(..., "--source", help="Where this comes from (URL, case file…)."),
    category: str = typer.Option(
        ..., "--category", help="A concept id, e.g. exchange, market, scam (see docs)."
    ),
    abuse: str = typer.Option(None, "--abuse", help="An abuse concept id, e.g. scam, ransomware."),
    confidence: str = typer.Option(
        None, "--confidence", help="A confidence id (default forensic_investigation)."
    ),
    actor: str = typer.Option(None, "--actor", help="Actor id, e.g. binance."),
    context: str = typer.Option(None, "--context", help="Free-text or JSON context."),
    by: str = typer.Option(None, "--by", help="Who adds it (default: the login name)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Add (or update) an analyst's tag, recorded with who, when, source and confidence."""
    from chainsleuth.tags.imports import add_tag

    row = add_tag(
        data_dir(ctx),
        address,
        label=label,
        source=source,
        category=category,
        abuse=abuse,
        actor=actor,
        confidence=confidence,
        context=context,
        created_by=by,
    )
    if json_out:
        print_json(row)
        return
    console.print(f"tagged {row['address']} as {row['label']!r} (tag {row['tag_id']})")
    for w in row["warnings"]:
        console.print(f"  [yellow]warning[/] {w}")


@tags_app.command("drop-pack")
def drop_pack_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Pack name, e.g. ofac or csv/case-17."),
) -> None:
    """Stop using an imported pack (its files stay in the history)."""
    from chainsleuth.tags.imports import drop_pack

    n = drop_pack(data_dir(ctx), name)
    console.print(f"dropped pack {name} ({n:,} tags)")


@tags_app.command("remove")
def remove_cmd(
    ctx: typer.Context,
    tag_ids: list[str] = typer.Argument(..., help="Tag ids (analyst or CSV tags)."),
) -> None:
    """Remove analysts' tags by id (earlier versions keep them in the history)."""
    from chainsleuth.tags.imports import remove_tags

    n = remove_tags(data_dir(ctx), tag_ids)
    console.print(f"removed {n} tag(s)")


# ------------------------------------------------------------------------------------- list
@tags_app.command("list")
def list_cmd(
    ctx: typer.Context,
    address: str = typer.Option(None, "--address", help="Tags of this address."),
    cluster: str = typer.Option(
        None, "--cluster", help="Tags of a cluster (its id, or one of its addresses)."
    ),
    actor: str = typer.Option(None, "--actor", help="Tags naming this actor id."),
    category: str = typer.Option(
        None, "--category", help="Tags of this category or abuse (narrower concepts included)."
    ),
    label: str = typer.Option(None, "--label", help="Tags whose label contains this text."),
    limit: int = typer.Option(50, "--limit", help="Rows shown (0: all)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Look tags up by address, cluster, actor, category or label."""
    from chainsleuth.tags.imports import TagError
    from chainsleuth.tags.query import TagLookup, _cluster_id

    given = [x for x in (address, cluster, actor, category, label) if x is not None]
    if len(given) > 1:
        raise TagError("give one of --address, --cluster, --actor, --category, --label")
    cap = None if limit == 0 else limit
    with TagLookup.open(data_dir(ctx)) as lookup:
        attribution = None
        if address is not None:
            rows = lookup.by_address(address)
        elif cluster is not None:
            cid = _cluster_id(lookup, cluster)
            attribution = lookup.cluster(cid)
            rows = lookup.by_cluster(cid, cap)
        elif actor is not None:
            rows = lookup.by_actor(actor, cap)
        elif category is not None:
            rows = lookup.by_category(category, cap)
        elif label is not None:
            rows = lookup.by_label(label, cap)
        else:
            rows = lookup.all_tags(cap)
    if json_out:
        print_json({"cluster": attribution, "tags": rows} if cluster is not None else rows)
        return
    if attribution is not None:
        console.print(_kv("Cluster attribution", _cluster_rows(attribution)))
    console.print(_tags_table(rows, f"{len(rows):,} tag(s)"))


@tags_app.command("recompute")
def recompute_cmd(ctx: typer.Context) -> None:
    """Recompute address ids and the attribution of every tagged cluster now."""
    from chainsleuth.tags.attribution import recompute_cluster_tags

    table = recompute_cluster_tags(data_dir(ctx))
    n_conflicts = sum(table.column("conflict").to_pylist()) if table.num_rows else 0
    console.print(f"{table.num_rows:,} tagged cluster(s), {n_conflicts:,} in conflict")


@tags_app.command("history")
def history_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Every version of the tags: when, by whom, which packs changed."""
    from chainsleuth.tags.query import history

    entries = history(data_dir(ctx))
    if json_out:
        print_json(entries)
        return
    table = Table(
        "version", "at", "by", "action", "changes", title="Tags history", title_justify="left"
    )
    for e in entries:
        changes = ", ".join(
            f"{c['pack']} ({c.get('rows', 0):,}"
            + (f", +{c['added']:,} -{c['removed']:,}" if "added" in c else "")
            + ")"
            for c in e["changes"][:5]
        )
        if len(e["changes"]) > 5:
            changes += f" … {len(e['changes']) - 5} more"
        table.add_row(str(e["version"]), e["at"], e["by"], e["action"], changes)
    console.print(table)


# ----------------------------------------------------------------------------------- entity
def entity_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Actor id, label or alias (e.g. bitmex)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """An actor with its clusters, addresses, totals and first/last activity."""
    from chainsleuth.tags.query import entity

    info = entity(data_dir(ctx), name)
    if json_out:
        print_json(info)
        return
    rows: list[tuple[str, Any]] = [
        ("actor", info["actor"]),
        ("label", info["label"]),
        ("categories", ", ".join(info["categories"] or [])),
        ("uri", info["uri"]),
        ("jurisdictions", ", ".join(info["jurisdictions"] or [])),
        ("tags", f"{info['n_tags']:,} on {info['n_tagged_addresses']:,} addresses"),
        ("tagpacks", ", ".join(info["tagpacks"] or [])),
        (
            "clusters",
            f"{len(info['clusters']):,} attributed, {len(info['contested_clusters']):,} contested",
        ),
    ]
    totals = info["totals"]
    if totals:
        rows += [
            ("addresses in its clusters", f"{totals['n_addresses']:,}"),
            ("received", f"{totals['received'] / 1e8:,.8f} BTC"),
            ("sent", f"{totals['sent'] / 1e8:,.8f} BTC"),
            ("balance", f"{totals['balance'] / 1e8:,.8f} BTC"),
            ("transactions", f"{totals['n_txs']:,}"),
            (
                "first activity",
                f"{totals['first_seen_time']} (height {totals['first_seen_height']})",
            ),
            ("last activity", f"{totals['last_seen_time']} (height {totals['last_seen_height']})"),
        ]
    elif not info["clusters"]:
        rows.append(("in the store", "none of its addresses (or no store)"))
    console.print(_kv(f"Entity {info['actor']}", rows))
    if info["clusters"] or info["contested_clusters"]:
        table = Table(
            "cluster", "addresses", "tagged", "confidence", "label", "conflict",
            title="Clusters", title_justify="left",
        )  # fmt: skip
        for c in info["clusters"] + info["contested_clusters"]:
            flag = "; ".join(c["conflicts"]) if c["conflict"] else ""
            if c["actor"] != info["actor"]:
                flag = f"attributed to {c['actor']}; " + flag
            table.add_row(
                str(c["cluster_id"]),
                f"{c['n_addresses']:,}",
                f"{c['n_tagged_addresses']:,}",
                str(c["confidence"]),
                c["label"] or "",
                f"[red]{flag}[/]" if flag else "",
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add `tags ...` and `entity` to the root CLI."""
    app.add_typer(tags_app, name="tags")
    app.command("entity")(entity_cmd)
