"""The report's data: the case's four files read and aggregated by DuckDB into a `ReportData`.

Only `case.json`, `leads.csv`, `subpoenas.csv`, `cashouts.csv` and, when the folder has it,
`requests.csv` are read (stages talk through files); DuckDB aggregates the CSVs straight from disk, so a case with millions of
leads gives bounded tables (top N rows) in bounded time. The colours are chosen here too,
because the tables and both figures must give an entity the same one.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainsleuth.cases.candidate_requests import REQUEST_COLUMNS
from chainsleuth.cases.rows import DEFAULT_CASHOUT_CUT
from chainsleuth.cases.rows import cashout_cut as rows_cashout_cut
from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import sha256_file as _sha256

#: Rows shown per table; the rest stay in the CSVs (the report says how many).
TOP_LEADS = 200


TOP_CASHOUTS = 200


TOP_EXCHANGES = 200


EXCHANGE_SECTIONS = 20


SUBPOENA_ROWS = 50


#: Nodes per side of the money-flow diagram and series in the timeline; the rest are "other".
DIAGRAM_NODES = 10


TIMELINE_SERIES = 8


#: Used when case.json does not list them (investigate.EXCHANGE_CATEGORIES, kept in step).
DEFAULT_EXCHANGE_CATEGORIES = (
    "atm",
    "exchange",
    "otc_broker",
    "payment_processor",
    "wallet_service",
)


#: The cut for cash-outs when case.json records none, or 0 (investigate's --min-confidence
#: default: no subpoena cut asked for).
DEFAULT_MIN_CONFIDENCE = DEFAULT_CASHOUT_CUT


#: Sources that name no one to ask: drawn grey.
UNNAMED_CATEGORIES = frozenset({"coinjoin", "unattributed", "coinbase", "other"})


SAT = 100_000_000


GREY = "#9a9a9a"


# tab10 then tab20's light shades, without their greys (grey marks unnamed sources): enough
# for every named node of the diagram, (DIAGRAM_NODES - 1) on each side
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
)


# the columns the report reads, with their types; other columns are read as text
_TYPES = {
    "amount_sat": "BIGINT",
    "traced_sat": "BIGINT",
    "exchange_total_sat": "BIGINT",
    "amount_usd": "DOUBLE",
    "confidence": "DOUBLE",
    "block_height": "BIGINT",
    "hops": "BIGINT",
    "n_deposits": "BIGINT",
    "exchange_rank": "BIGINT",
    "exchange_deposits": "BIGINT",
    "ask_order": "BIGINT",
    "set_size": "BIGINT",
    "wallet_cluster": "BIGINT",
}


_REQUIRED = {
    "leads.csv": (
        "deposit_address",
        "source_entity",
        "source_category",
        "source_address",
        "funding_txid",
        "block_time",
        "amount_sat",
        "amount_usd",
        "price_note",
        "hops",
        "confidence",
    ),
    "subpoenas.csv": (
        "exchange",
        "funding_txid",
        "source_address",
        "block_height",
        "block_time",
        "amount_sat",
        "amount_usd",
        "price_note",
        "n_deposits",
    ),
    "cashouts.csv": (
        "destination_address",
        "destination_entity",
        "destination_category",
        "txid",
        "block_height",
        "block_time",
        "amount_sat",
        "amount_usd",
        "price_note",
        "hops",
    ),
}


#: Files the report reads when they are there (a case folder from before them has none).
_OPTIONAL = {
    # cases.candidate_requests: deposits whose best lead is a wallet several exchanges fit
    "requests.csv": tuple(REQUEST_COLUMNS),
}

#: Deposits of requests.csv shown in the report (the CSV holds every row).
REQUEST_ROWS = 30


@dataclass
class ReportData:
    """Everything the template shows, aggregated from the four files."""

    case: dict[str, Any]
    facts: list[tuple[str, str]]  # the case's parameters and inputs
    counts: list[tuple[str, str]]  # what the case found
    fact: dict[str, str]  # both, by label
    totals: dict[str, Any]
    sources: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    n_exchanges: int
    sections: list[dict[str, Any]]
    cashouts: list[dict[str, Any]]
    n_cashouts: int
    destinations: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    n_leads: int
    files: list[dict[str, str]]
    method: dict[str, Any]
    inflow_days: list[dict[str, Any]]
    outflow_days: list[dict[str, Any]]
    colors: dict[tuple[str, str], str]
    money_flow_uri: str = ""
    money_flow_alt: str = ""
    timeline_uri: str = ""
    timeline_note: str = ""
    limits: dict[str, int] = field(default_factory=dict)
    cashout_cut: float = DEFAULT_MIN_CONFIDENCE  # cash-outs below it are listed, not totalled
    # tagged exchanges the wallet-style rule cannot tell apart (case.json lookalike_exchanges):
    # the warning's words and the habits side by side; {} when there is nothing to warn of
    lookalikes: dict[str, Any] = field(default_factory=dict)
    # case.json's closed_world as one line (`cases.lookalikes.closed_world_line`): the deciding
    # leads that rest on a wallet-style name; "" when none (or the folder predates the key)
    closed_world: str = ""
    # requests.csv (cases.candidate_requests), as the report shows it: `exchanges` (per
    # exchange: deposits it could answer for, BTC), `rows` (the first REQUEST_ROWS), counts;
    # {} when the case has no such request (or its folder predates the file)
    requests: dict[str, Any] = field(default_factory=dict)
    requests_uri: str = ""


# --------------------------------------------------------------------------------- inputs
def read_case(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "case.json"
    if not path.exists():
        raise ChainsleuthError(f"no case.json in {out_dir}: run `chainsleuth investigate` first")
    try:
        case = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ChainsleuthError(f"{path}: not a readable JSON file ({e})") from e
    if not isinstance(case, dict):
        raise ChainsleuthError(f"{path}: expected a JSON object")
    for name in _REQUIRED:
        if not (out_dir / name).exists():
            raise ChainsleuthError(f"no {name} in {out_dir}: run `chainsleuth investigate` first")
    return case


def _header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise ChainsleuthError(f"{path}: empty file, expected a CSV header")
    missing = [c for c in {**_REQUIRED, **_OPTIONAL}[path.name] if c not in header]
    if missing:
        raise ChainsleuthError(f"{path}: no column {', '.join(missing)}")
    return header


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view(con: Any, name: str, path: Path) -> None:
    """A DuckDB view over a CSV with the column names of its header and the report's types.

    DuckDB reads the file on every query, streaming and in parallel, so the report never holds
    a whole CSV in memory; an empty field is NULL.
    """
    columns = ", ".join(
        f"{_sql_str(c)}: {_sql_str(_TYPES.get(c, 'VARCHAR'))}" for c in _header(path)
    )
    con.execute(
        f"CREATE VIEW {name} AS SELECT * FROM read_csv({_sql_str(str(path))}, header = true, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {{{columns}}})"
    )


def _price_series(prices: Any) -> str | None:
    """ "shipped, 2010-07-18 to 2026-06-15" from case.json's inputs.prices (None: not recorded)."""
    if not isinstance(prices, dict) or "series" not in prices:
        return None
    span = (
        f", {prices['first_date']} to {prices['last_date']}"
        if prices.get("first_date") and prices.get("last_date")
        else ""
    )
    return f"{prices['series']}{span}"


def cashout_cut(case: dict[str, Any]) -> float:
    """The confidence at which a cash-out counts in the report: case.json's
    `parameters.min_confidence` (the subpoena cut) when one was asked for, else
    `DEFAULT_MIN_CONFIDENCE` (`cases.rows.cashout_cut`, as the summary counts them)."""
    value = _get(case, "parameters", "min_confidence")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DEFAULT_MIN_CONFIDENCE
    return rows_cashout_cut(float(value))


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


# ------------------------------------------------------------------------------ aggregate
def source_label(category: str, entity: str) -> str:
    """How a source or destination is named in the figures and tables."""
    if category == "coinjoin":
        return f"CoinJoin ({entity})" if entity else "CoinJoin"
    if category == "unattributed":
        return "unattributed"
    if category == "coinbase":
        return "coinbase"
    if not entity:
        return f"unnamed {category}"
    return entity if category == "exchange" else f"{entity} ({category})"


def collect(out_dir: Path, case: dict[str, Any]) -> ReportData:
    import duckdb

    exchange_categories = tuple(
        _get(case, "parameters", "exchange_categories") or DEFAULT_EXCHANGE_CATEGORIES
    )
    con = duckdb.connect()
    try:
        for name in ("leads", "subpoenas", "cashouts"):
            _view(con, name, out_dir / f"{name}.csv")
        # the cash-outs the report totals: those at the case's cut (rows without a confidence,
        # from before cash-outs had one, all count); the rest are listed in cashouts.csv only
        header = _header(out_dir / "cashouts.csv")
        at_cut = (
            f"coalesce(confidence, 1.0) >= {cashout_cut(case)!r}"
            if "confidence" in header
            else "TRUE"
        )
        why = "attributed_via" if "attributed_via" in header else "NULL"
        # an unnamed service's candidate exchanges (older case folders have no such column)
        candidates = (
            "candidate_exchanges"
            if "candidate_exchanges" in _header(out_dir / "leads.csv")
            else "NULL"
        )
        con.execute(
            f"""CREATE TEMP VIEW shown_leads AS SELECT *,
            replace(coalesce({candidates}, ''), ';', ', ') AS candidates FROM leads"""
        )
        con.execute(f"CREATE TEMP VIEW reported_cashouts AS SELECT * FROM cashouts WHERE {at_cut}")
        con.execute(
            f"""CREATE TEMP VIEW listed_cashouts AS SELECT *, coalesce(nullif({why}, ''),
            destination_category, '') AS why FROM cashouts WHERE NOT ({at_cut})"""
        )
        con.execute(
            "CREATE TEMP TABLE cs_exchange_categories AS SELECT unnest(?::VARCHAR[]) AS category",
            [list(exchange_categories)],
        )
        is_exchange = "source_category IN (SELECT category FROM cs_exchange_categories)"
        return _aggregate(con, out_dir, case, exchange_categories, is_exchange)
    except duckdb.Error as e:  # a malformed row: say which folder, keep DuckDB's line number
        raise ChainsleuthError(f"{out_dir}: cannot read the case's CSV files: {e}") from e
    finally:
        con.close()


def _aggregate(
    con: Any,
    out_dir: Path,
    case: dict[str, Any],
    exchange_categories: tuple[str, ...],
    is_exchange: str,
) -> ReportData:
    def rows(sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    lead_stats = rows(
        f"""SELECT count(*) AS n, count(DISTINCT deposit_address) AS deposits,
        count(DISTINCT deposit_address) FILTER (WHERE {is_exchange}) AS named,
        coalesce(sum(amount_sat), 0) AS sat,
        coalesce(sum(amount_sat) FILTER (WHERE block_time IS NULL), 0) AS untimed_sat
        FROM leads"""
    )[0]
    sources = rows(
        """SELECT coalesce(source_category, '') AS category,
        coalesce(source_entity, '') AS entity, count(*) AS leads,
        count(DISTINCT deposit_address) AS deposits, sum(amount_sat) AS sat
        FROM leads GROUP BY ALL ORDER BY sat DESC, category, entity"""
    )
    exchange_stats = rows(
        """SELECT coalesce(exchange, '') AS exchange, count(*) AS customers,
        sum(amount_sat) AS sat, sum(amount_usd) AS usd,
        count(*) FILTER (WHERE price_note = 'missing_price') AS missing
        FROM subpoenas GROUP BY ALL ORDER BY sat DESC, exchange"""
    )
    deposits_by_exchange = {
        r["entity"]: r["deposits"]
        for r in rows(
            f"""SELECT coalesce(source_entity, '') AS entity,
            count(DISTINCT deposit_address) AS deposits FROM leads WHERE {is_exchange}
            GROUP BY ALL"""
        )
    }
    shown = [r["exchange"] for r in exchange_stats[:EXCHANGE_SECTIONS]]
    # what a row's name rests on (older case folders have no such column: not marked)
    basis = "name_basis" if "name_basis" in _header(out_dir / "subpoenas.csv") else "''"
    subpoena_rows = rows(
        f"""SELECT coalesce(exchange, '') AS exchange, funding_txid, source_address,
        block_height, block_time, amount_sat, amount_usd, price_note, n_deposits,
        coalesce({basis}, '') AS name_basis
        FROM subpoenas WHERE coalesce(exchange, '') IN (SELECT unnest(?::VARCHAR[]))
        QUALIFY row_number() OVER (PARTITION BY exchange
            ORDER BY amount_sat DESC, funding_txid, source_address) <= {SUBPOENA_ROWS}
        ORDER BY exchange, amount_sat DESC, funding_txid, source_address""",
        [shown],
    )
    cashout_stats = rows(
        """SELECT count(*) AS n, coalesce(sum(amount_sat), 0) AS sat, sum(amount_usd) AS usd,
        count(*) FILTER (WHERE price_note = 'missing_price') AS missing FROM reported_cashouts"""
    )[0]
    cashout_listed = rows(
        """SELECT count(*) AS n, coalesce(sum(amount_sat), 0) AS sat,
        coalesce(string_agg(DISTINCT why, ', ' ORDER BY why), '') AS why FROM listed_cashouts"""
    )[0]
    destinations = rows(
        """SELECT coalesce(destination_category, '') AS category,
        coalesce(destination_entity, '') AS entity, count(*) AS cashouts,
        sum(amount_sat) AS sat, sum(amount_usd) AS usd,
        count(*) FILTER (WHERE price_note = 'missing_price') AS missing
        FROM reported_cashouts GROUP BY ALL ORDER BY sat DESC, category, entity"""
    )
    # the largest cash-outs, shown in time order
    cashouts = rows(
        f"""SELECT * FROM (SELECT destination_address, coalesce(destination_entity, '') AS entity,
            coalesce(destination_category, '') AS category, txid, block_height, block_time,
            amount_sat, amount_usd, price_note, hops FROM reported_cashouts
            ORDER BY amount_sat DESC, block_height, txid, destination_address
            LIMIT {TOP_CASHOUTS})
        ORDER BY block_height, block_time, txid, destination_address"""
    )
    leads = rows(
        f"""SELECT deposit_address, coalesce(source_entity, '') AS entity,
        coalesce(source_category, '') AS category, source_address, funding_txid, block_time,
        amount_sat, amount_usd, price_note, hops, confidence, candidates FROM shown_leads
        ORDER BY amount_sat DESC, confidence DESC, deposit_address, funding_txid,
            source_address
        LIMIT {TOP_LEADS}"""
    )
    inflow_days = rows(
        """SELECT substr(block_time, 1, 10) AS day, coalesce(source_category, '') AS category,
        coalesce(source_entity, '') AS entity, sum(amount_sat) AS sat
        FROM leads WHERE block_time IS NOT NULL GROUP BY ALL ORDER BY ALL"""
    )
    outflow_days = rows(
        """SELECT substr(block_time, 1, 10) AS day, coalesce(destination_category, '') AS category,
        coalesce(destination_entity, '') AS entity, sum(amount_sat) AS sat
        FROM reported_cashouts WHERE block_time IS NOT NULL GROUP BY ALL ORDER BY ALL"""
    )

    colors = _colors(sources, destinations)
    for s in sources:
        s["label"] = source_label(s["category"], s["entity"])
        s["color"] = colors.get((s["category"], s["entity"]), GREY)
        s["share"] = s["sat"] / lead_stats["sat"] if lead_stats["sat"] else 0.0
    for d in destinations:
        d["label"] = source_label(d["category"], d["entity"])
        d["color"] = colors.get((d["category"], d["entity"]), GREY)
    exchange_color = {e: c for (cat, e), c in colors.items() if cat in exchange_categories}
    exchanges = []
    for e in exchange_stats[:TOP_EXCHANGES]:
        exchanges.append(
            {
                **e,
                "deposits": deposits_by_exchange.get(e["exchange"], 0),
                "color": exchange_color.get(e["exchange"], GREY),
            }
        )
    sections = []
    for i, e in enumerate(exchange_stats[:EXCHANGE_SECTIONS]):
        sections.append(
            {
                **e,
                "id": f"exchange-{i + 1}",
                "color": exchange_color.get(e["exchange"], GREY),
                "rows": [r for r in subpoena_rows if r["exchange"] == e["exchange"]],
            }
        )
    funded = {
        "sat": sum(e["sat"] for e in exchange_stats),
        "usd": sum(e["usd"] or 0.0 for e in exchange_stats),
        "missing": sum(e["missing"] for e in exchange_stats),
        "customers": sum(e["customers"] for e in exchange_stats),
    }
    totals = {
        "funded": funded,
        "cashed_out": cashout_stats,
        "cashed_out_listed": cashout_listed,
        "leads_sat": lead_stats["sat"],
        "untimed_sat": lead_stats["untimed_sat"],
    }
    n_leads = lead_stats["n"]
    files = []
    for name in ("leads.csv", "subpoenas.csv", "cashouts.csv", "requests.csv"):
        if name in _OPTIONAL and not (out_dir / name).exists():
            continue
        expected = _get(case, "outputs", name)
        actual = _sha256(out_dir / name)
        files.append(
            {
                "name": name,
                "sha256": actual,
                "status": "no digest in case.json"
                if not expected
                else ("matches case.json" if expected == actual else "DIFFERS from case.json"),
            }
        )
    facts, counts = _facts(
        case, lead_stats, len(exchange_stats), cashout_stats["n"], cashout_listed["n"]
    )
    return ReportData(
        case=case,
        facts=facts,
        counts=counts,
        fact=dict(facts + counts),
        totals=totals,
        sources=sources,
        exchanges=exchanges,
        n_exchanges=len(exchange_stats),
        sections=sections,
        cashouts=cashouts,
        n_cashouts=cashout_stats["n"],
        cashout_cut=cashout_cut(case),
        destinations=destinations,
        leads=leads,
        n_leads=n_leads,
        files=files,
        method=_method(case, exchange_categories),
        inflow_days=inflow_days,
        outflow_days=outflow_days,
        colors=colors,
        lookalikes=lookalike_table(case),
        closed_world=closed_world_note(case),
        requests=request_section(con, out_dir),
        limits={
            "leads": TOP_LEADS,
            "cashouts": TOP_CASHOUTS,
            "exchanges": TOP_EXCHANGES,
            "sections": EXCHANGE_SECTIONS,
            "subpoena_rows": SUBPOENA_ROWS,
        },
    )


def request_section(con: Any, out_dir: Path) -> dict[str, Any]:
    """requests.csv as the report shows it: `exchanges` (rank, name, deposits it could answer
    for, their satoshis), `rows` (the REQUEST_ROWS largest deposits, each with its candidates
    in the order to ask them), `n_rows`,
    `n_deposits`, `sat` (each deposit's amount once), `n_single` (deposits asked of one
    exchange: style names off, `cases.candidate_requests`). {} when there is no such file or no row."""
    path = out_dir / "requests.csv"
    if not path.exists():
        return {}
    _view(con, "requests", path)

    def rows(sql: str) -> list[dict[str, Any]]:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    counts = rows(
        """SELECT count(*) AS n_rows, count(DISTINCT deposit_address) AS n_deposits,
        coalesce(sum(amount_sat) FILTER (WHERE ask_order = 1), 0) AS sat,
        count(*) FILTER (WHERE set_size = 1) AS n_single FROM requests"""
    )[0]
    if not counts["n_rows"]:
        return {}
    exchanges = rows(
        """SELECT exchange_rank AS rank, exchange, max(exchange_deposits) AS deposits,
        max(exchange_total_sat) AS sat FROM requests GROUP BY ALL ORDER BY rank"""
    )
    # one line per deposit (the largest first), its candidates in the order to ask them
    shown = rows(
        f"""SELECT deposit_address, max(amount_sat) AS amount_sat,
        string_agg(exchange, ', ' ORDER BY ask_order) AS ask, max(set_size) AS set_size,
        min(funding_txid) AS funding_txid, min(block_time) AS block_time
        FROM requests GROUP BY deposit_address
        ORDER BY amount_sat DESC, deposit_address LIMIT {REQUEST_ROWS}"""
    )
    return {**counts, "exchanges": exchanges, "rows": shown}


def closed_world_note(case: dict[str, Any]) -> str:
    """case.json's `closed_world` as the report's one line ('' when no deciding lead rests
    on a wallet-style name, or the case folder predates the key)."""
    from chainsleuth.cases.lookalikes import closed_world_line

    section = case.get("closed_world")
    if not isinstance(section, dict):
        return ""
    n, deciding, carried = (
        section.get(k)
        for k in ("leads_resting_on_style", "deciding_leads", "leads_resting_on_style_carried")
    )
    if not isinstance(n, int):
        return ""
    # a case.json from before deciding_leads and _carried: the count alone
    return closed_world_line(
        n,
        deciding if isinstance(deciding, int) else 0,
        carried if isinstance(carried, int) else 0,
    )


def lookalike_table(case: dict[str, Any]) -> dict[str, Any]:
    """case.json's `lookalike_exchanges` as the report shows it: `warning` (its words),
    `columns` (the exchanges of its groups, then those whose wallet showed no habit) and `rows`
    (one per habit: its label and, per column, the value read, whether it was read and from how
    many txs). {} when there is nothing to warn of, or the case folder predates the section."""
    from chainsleuth.cases.lookalikes import HABIT_LABELS

    section = case.get("lookalike_exchanges")
    if not isinstance(section, dict) or not section.get("warning"):
        return {}
    exchanges = section.get("exchanges") if isinstance(section.get("exchanges"), dict) else {}
    columns: list[str] = []
    for g in section.get("groups") or []:
        for name in g.get("exchanges", []) if isinstance(g, dict) else []:
            if name not in columns:
                columns.append(str(name))
    columns += [str(n) for n in section.get("unreadable") or [] if n not in columns]
    rows = []
    for habit in section.get("habits") or []:
        label, unit = HABIT_LABELS.get(habit, (str(habit), "txs"))
        cells = []
        for name in columns:
            got = _get(exchanges, name, habit) or {}
            cells.append(
                {
                    "value": str(got.get("value", "—")),
                    "read": bool(got.get("read")),
                    "txs": got.get("txs") if isinstance(got.get("txs"), int) else None,
                }
            )
        rows.append({"habit": label, "unit": unit, "cells": cells})
    return {"warning": str(section["warning"]), "columns": columns, "rows": rows}


def _colors(
    sources: list[dict[str, Any]], destinations: list[dict[str, Any]]
) -> dict[tuple[str, str], str]:
    """A colour per named source/destination, the same for an entity on both sides.

    The entities drawn as nodes of the diagram come first, then the others, each by what they
    paid in plus what they received; they get the palette in that order (deterministic) and
    the rest, like every unnamed source, stay grey.
    """
    total: dict[str, int] = {}
    drawn: set[str] = set()
    for side in (sources, destinations):
        named = [r for r in side if is_named(r["category"], r["entity"])]
        named.sort(key=lambda r: (-int(r["sat"] or 0), r["entity"]))
        drawn.update(r["entity"] for r in named[: DIAGRAM_NODES - 1])
        for r in named:
            total[r["entity"]] = total.get(r["entity"], 0) + int(r["sat"] or 0)
    ranked = sorted(total, key=lambda e: (e not in drawn, -total[e], e))[: len(PALETTE)]
    by_entity = {e: PALETTE[i] for i, e in enumerate(ranked)}
    return {
        (r["category"], r["entity"]): by_entity[r["entity"]]
        for r in [*sources, *destinations]
        if r["entity"] in by_entity and is_named(r["category"], r["entity"])
    }


def is_named(category: str, entity: str) -> bool:
    """Whether a source names someone to ask (an attributed cluster with an entity)."""
    return bool(entity) and category not in UNNAMED_CATEGORIES


def _facts(
    case: dict[str, Any],
    lead_stats: dict[str, Any],
    n_exchanges: int,
    n_cashouts: int,
    n_cashouts_listed: int = 0,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The summary's (label, value) rows, parameters then counts; '—' where case.json is
    silent."""

    def show(value: Any) -> str:
        return "—" if value is None or value == "" else str(value)

    def count(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else show(value)

    clustering = _get(case, "store", "clustering") or {}
    generation = clustering.get("generation")
    parameters = [
        ("policy", show(_get(case, "parameters", "policy"))),
        ("max hops", show(_get(case, "parameters", "max_hops"))),
        ("clustering", show(clustering.get("policy"))),
        ("clustering generation", show(generation)),
        ("store tip height", count(_get(case, "store", "tip_height"))),
        ("store tip hash", show(_get(case, "store", "tip_hash"))),
        ("chainsleuth version", show(case.get("chainsleuth_version"))),
        ("case run at", show(case.get("created"))),
        ("seeds file", show(_get(case, "inputs", "seeds", "path"))),
        ("seeds sha256", show(_get(case, "inputs", "seeds", "sha256"))),
        ("price series", show(_price_series(_get(case, "inputs", "prices")))),
        ("price file", show(_get(case, "inputs", "prices", "path"))),
        ("price file sha256", show(_get(case, "inputs", "prices", "sha256"))),
    ]
    counts = [
        ("seed addresses", count(_get(case, "service", "seed_addresses"))),
        ("seed addresses in the store", count(_get(case, "service", "seed_addresses_in_store"))),
        ("service clusters", count(_get(case, "service", "clusters"))),
        ("deposit outputs", count(_get(case, "service", "deposit_outputs"))),
        ("internal outputs skipped", count(_get(case, "service", "internal_outputs_skipped"))),
        ("leads", count(lead_stats["n"])),
        ("deposit addresses with a lead", count(lead_stats["deposits"])),
        ("deposit addresses with an exchange lead", count(lead_stats["named"])),
        ("exchanges to subpoena", count(n_exchanges)),
        (f"cash-outs at confidence ≥ {cashout_cut(case):g}", count(n_cashouts)),
        ("cash-outs listed below it (cashouts.csv)", count(n_cashouts_listed)),
    ]
    return parameters, counts


def _method(case: dict[str, Any], exchange_categories: Sequence[str]) -> dict[str, Any]:
    confidence = _get(case, "parameters", "confidence") or {}
    base = confidence.get("policy_base") or {}
    return {
        "policy": _get(case, "parameters", "policy") or "—",
        "max_hops": _get(case, "parameters", "max_hops") or "—",
        "base": ", ".join(f"{k} {v}" for k, v in sorted(base.items())) or "—",
        "hop_decay": confidence.get("hop_decay", "—"),
        "coinjoin_cap": confidence.get("coinjoin_cap", "—"),
        "exchange_categories": ", ".join(exchange_categories),
    }
