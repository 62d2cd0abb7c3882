"""Write a case's `report.html` and `report.pdf` from the files `investigate` wrote.

`investigate()` leaves `leads.csv`, `subpoenas.csv`, `cashouts.csv` and `case.json` in its
output folder; this module reads only those four files (stages talk through files) and turns
them into one self-contained page for the people who act on a case: the case's parameters and
counts, the money-flow diagram (funding sources → the service → cash-out destinations), a
timeline, the exchanges to subpoena with their withdrawals, the cash-outs and the top leads.
The PDF is the same HTML printed by WeasyPrint. Design notes: docs/design/report.md.

Tables are capped (top N rows, with a line naming the CSV that holds the rest) and the CSVs
are aggregated by DuckDB straight from disk, so a case with millions of leads gives a report of
bounded size in bounded time. The HTML is a function of the four files only (no run time in
it): the same case gives the same bytes.

    >>> write_report(Path("case"))  # doctest: +SKIP
    ReportPaths(html=PosixPath('case/report.html'), pdf=PosixPath('case/report.pdf'))
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chainsleuth.core.errors import ChainsleuthError
from chainsleuth.core.files import atomic_write
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
#: Sources that name no one to ask: drawn grey.
UNNAMED_CATEGORIES = frozenset({"coinjoin", "unattributed", "coinbase", "other"})

PDF_INSTALL_HINT = (
    "report.pdf needs WeasyPrint and its native libraries: `pip install 'weasyprint>=60'` and, "
    "on Debian/Ubuntu, `apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 "
    "fonts-dejavu-core` (see WeasyPrint's installation notes for other systems); "
    "or call write_report(out_dir, pdf=False) for the HTML only"
)

SAT = 100_000_000
GREY = "#9a9a9a"
SERVICE_COLOR = "#37474f"
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


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote: `pdf` is None when it was asked for the HTML only."""

    html: Path
    pdf: Path | None


@dataclass(frozen=True)
class _Flow:
    """One node of the money-flow diagram (a source or a destination of the service)."""

    label: str
    category: str
    amount_sat: int
    color: str
    named: bool  # names someone to ask: drawn in colour, before the grey nodes


@dataclass
class _Report:
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


# ------------------------------------------------------------------------------ public
def write_report(out_dir: Path, pdf: bool = True) -> ReportPaths:
    """Write `out_dir/report.html` (and `report.pdf`) from the case files in `out_dir`.

    Reads `case.json`, `leads.csv`, `subpoenas.csv` and `cashouts.csv` as `investigate`
    wrote them; each output is written to a temporary file in `out_dir` and moved into place.
    With `pdf=False` no PDF is made and a `report.pdf` of an earlier run is removed, so the
    folder never holds a report that disagrees with the files. Raises ChainsleuthError when a
    file is missing or malformed, or when `pdf` is asked for and WeasyPrint (or its Pango
    libraries) cannot be loaded — before anything is written.

        >>> paths = write_report(Path("case"))  # doctest: +SKIP
        >>> paths.html.name, paths.pdf.name  # doctest: +SKIP
        ('report.html', 'report.pdf')
    """
    out_dir = Path(out_dir)
    case = _read_case(out_dir)
    weasyprint = _load_weasyprint() if pdf else None
    report = _collect(out_dir, case)
    _draw(report)
    page = _render(report)
    html_path = out_dir / "report.html"
    atomic_write(html_path, lambda f: f.write(page.encode()))
    pdf_path = out_dir / "report.pdf"
    if weasyprint is None:
        pdf_path.unlink(missing_ok=True)
        return ReportPaths(html=html_path, pdf=None)
    document = weasyprint.HTML(
        string=page, base_url=str(out_dir.resolve()), url_fetcher=_data_only_fetcher(weasyprint)
    )
    atomic_write(pdf_path, lambda f: document.write_pdf(target=f))
    return ReportPaths(html=html_path, pdf=pdf_path)


def money_flow_svg(out_dir: Path) -> str:
    """The report's money-flow diagram (funding sources → service → cash-outs) of a finished
    case directory, as SVG text: the same picture report.html shows.

        >>> money_flow_svg(Path("case")).startswith("<?xml")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    report = _collect(out_dir, _read_case(out_dir))
    return _money_flow_svg(
        _nodes(report.sources, "other sources"), _nodes(report.destinations, "other destinations")
    )


# ------------------------------------------------------------------------------- inputs
def _read_case(out_dir: Path) -> dict[str, Any]:
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
    missing = [c for c in _REQUIRED[path.name] if c not in header]
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


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


# ----------------------------------------------------------------------------- aggregate
def _source_label(category: str, entity: str) -> str:
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


def _collect(out_dir: Path, case: dict[str, Any]) -> _Report:
    import duckdb

    exchange_categories = tuple(
        _get(case, "parameters", "exchange_categories") or DEFAULT_EXCHANGE_CATEGORIES
    )
    con = duckdb.connect()
    try:
        for name in ("leads", "subpoenas", "cashouts"):
            _view(con, name, out_dir / f"{name}.csv")
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
) -> _Report:
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
    subpoena_rows = rows(
        f"""SELECT coalesce(exchange, '') AS exchange, funding_txid, source_address,
        block_height, block_time, amount_sat, amount_usd, price_note, n_deposits
        FROM subpoenas WHERE coalesce(exchange, '') IN (SELECT unnest(?::VARCHAR[]))
        QUALIFY row_number() OVER (PARTITION BY exchange
            ORDER BY amount_sat DESC, funding_txid, source_address) <= {SUBPOENA_ROWS}
        ORDER BY exchange, amount_sat DESC, funding_txid, source_address""",
        [shown],
    )
    cashout_stats = rows(
        """SELECT count(*) AS n, coalesce(sum(amount_sat), 0) AS sat, sum(amount_usd) AS usd,
        count(*) FILTER (WHERE price_note = 'missing_price') AS missing FROM cashouts"""
    )[0]
    destinations = rows(
        """SELECT coalesce(destination_category, '') AS category,
        coalesce(destination_entity, '') AS entity, count(*) AS cashouts,
        sum(amount_sat) AS sat, sum(amount_usd) AS usd,
        count(*) FILTER (WHERE price_note = 'missing_price') AS missing
        FROM cashouts GROUP BY ALL ORDER BY sat DESC, category, entity"""
    )
    # the largest cash-outs, shown in time order
    cashouts = rows(
        f"""SELECT * FROM (SELECT destination_address, coalesce(destination_entity, '') AS entity,
            coalesce(destination_category, '') AS category, txid, block_height, block_time,
            amount_sat, amount_usd, price_note, hops FROM cashouts
            ORDER BY amount_sat DESC, block_height, txid, destination_address
            LIMIT {TOP_CASHOUTS})
        ORDER BY block_height, block_time, txid, destination_address"""
    )
    leads = rows(
        f"""SELECT deposit_address, coalesce(source_entity, '') AS entity,
        coalesce(source_category, '') AS category, source_address, funding_txid, block_time,
        amount_sat, amount_usd, price_note, hops, confidence FROM leads
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
        FROM cashouts WHERE block_time IS NOT NULL GROUP BY ALL ORDER BY ALL"""
    )

    colors = _colors(sources, destinations)
    for s in sources:
        s["label"] = _source_label(s["category"], s["entity"])
        s["color"] = colors.get((s["category"], s["entity"]), GREY)
        s["share"] = s["sat"] / lead_stats["sat"] if lead_stats["sat"] else 0.0
    for d in destinations:
        d["label"] = _source_label(d["category"], d["entity"])
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
        "leads_sat": lead_stats["sat"],
        "untimed_sat": lead_stats["untimed_sat"],
    }
    n_leads = lead_stats["n"]
    files = []
    for name in ("leads.csv", "subpoenas.csv", "cashouts.csv"):
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
    facts, counts = _facts(case, lead_stats, len(exchange_stats), cashout_stats["n"])
    return _Report(
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
        destinations=destinations,
        leads=leads,
        n_leads=n_leads,
        files=files,
        method=_method(case, exchange_categories),
        inflow_days=inflow_days,
        outflow_days=outflow_days,
        colors=colors,
        limits={
            "leads": TOP_LEADS,
            "cashouts": TOP_CASHOUTS,
            "exchanges": TOP_EXCHANGES,
            "sections": EXCHANGE_SECTIONS,
            "subpoena_rows": SUBPOENA_ROWS,
        },
    )


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
        named = [r for r in side if _is_named(r["category"], r["entity"])]
        named.sort(key=lambda r: (-int(r["sat"] or 0), r["entity"]))
        drawn.update(r["entity"] for r in named[: DIAGRAM_NODES - 1])
        for r in named:
            total[r["entity"]] = total.get(r["entity"], 0) + int(r["sat"] or 0)
    ranked = sorted(total, key=lambda e: (e not in drawn, -total[e], e))[: len(PALETTE)]
    by_entity = {e: PALETTE[i] for i, e in enumerate(ranked)}
    return {
        (r["category"], r["entity"]): by_entity[r["entity"]]
        for r in [*sources, *destinations]
        if r["entity"] in by_entity and _is_named(r["category"], r["entity"])
    }


def _is_named(category: str, entity: str) -> bool:
    """Whether a source names someone to ask (an attributed cluster with an entity)."""
    return bool(entity) and category not in UNNAMED_CATEGORIES


def _facts(
    case: dict[str, Any], lead_stats: dict[str, Any], n_exchanges: int, n_cashouts: int
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
        ("cash-outs", count(n_cashouts)),
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


# ----------------------------------------------------------------------------- figures
def _draw(report: _Report) -> None:
    """Draw the money-flow diagram and the timeline into the report as SVG data URIs."""
    left = _nodes(report.sources, "other sources")
    right = _nodes(report.destinations, "other destinations")
    svg = _money_flow_svg(left, right)
    report.money_flow_uri = _data_uri(svg)
    if left or right:
        funded = "; ".join(f"{f.label} {_btc_short(f.amount_sat)}" for f in left) or "nothing"
        cashed = "; ".join(f"{f.label} {_btc_short(f.amount_sat)}" for f in right) or "nothing"
        report.money_flow_alt = f"Money flow. Funded by: {funded}. Cashed out to: {cashed}."
    else:
        report.money_flow_alt = "Money flow: no flows (no leads and no cash-outs)."
    svg, note = _timeline_svg(report.inflow_days, report.outflow_days, report.colors)
    report.timeline_uri = _data_uri(svg)
    report.timeline_note = note


def _nodes(groups: list[dict[str, Any]], other: str) -> list[_Flow]:
    """The diagram's nodes on one side: the largest groups, then one grey 'other' node.

    Named entities (tagged services: someone to ask) come first, largest first; then the grey
    ones (CoinJoins, unattributed), so the colours read top down."""
    flows = [
        _Flow(
            g["label"],
            g["category"],
            int(g["sat"] or 0),
            g["color"],
            _is_named(g["category"], g["entity"]),
        )
        for g in groups
        if int(g["sat"] or 0) > 0
    ]
    flows.sort(key=lambda f: (not f.named, -f.amount_sat, f.label))
    if len(flows) <= DIAGRAM_NODES:
        return flows
    rest = flows[DIAGRAM_NODES - 1 :]
    return [
        *flows[: DIAGRAM_NODES - 1],
        _Flow(f"{len(rest)} {other}", "other", sum(f.amount_sat for f in rest), GREY, False),
    ]


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def _btc_short(sat: int) -> str:
    """BTC for labels: four decimals under 10 BTC, two under 10,000, none above."""
    btc = sat / SAT
    if abs(btc) < 10:
        return f"{btc:,.4f} BTC"
    if abs(btc) < 10_000:
        return f"{btc:,.2f} BTC"
    return f"{btc:,.0f} BTC"


def _mpl_text(text: str, width: int = 26) -> str:
    """User text for matplotlib: `$` would start mathtext; long names are cut."""
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")


@contextmanager
def _figure_style() -> Iterator[None]:
    import matplotlib

    # a fixed hash salt makes the SVG's ids (clip paths) the same on every run; glyphs as
    # paths render the same in every browser and in WeasyPrint, whatever fonts are installed
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "chainsleuth-report",
            "svg.fonttype": "path",
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "chainsleuth"})
    text = buf.getvalue()
    # the DOCTYPE names the SVG 1.1 DTD by URL; nothing needs it and a report names no URLs
    start = text.find("<!DOCTYPE")
    if start >= 0:
        text = text[:start] + text[text.index(">", start) + 1 :]
    return text


def _band(x0: float, y0: tuple[float, float], x1: float, y1: tuple[float, float]) -> Any:
    """A band from the span y0 at x0 to the span y1 at x1 (bottom, top): two cubic curves."""
    from matplotlib.path import Path as MPath

    xm = (x0 + x1) / 2
    verts = [
        (x0, y0[1]),
        (xm, y0[1]),
        (xm, y1[1]),
        (x1, y1[1]),
        (x1, y1[0]),
        (xm, y1[0]),
        (xm, y0[0]),
        (x0, y0[0]),
        (x0, y0[1]),
    ]
    codes = [MPath.MOVETO] + [MPath.CURVE4] * 3 + [MPath.LINETO] + [MPath.CURVE4] * 3
    codes += [MPath.CLOSEPOLY]
    return MPath(verts, codes)


# the diagram's geometry in inches: a node's slot is never lower than its two-line label
_SLOT_IN, _GAP_IN, _HAIRLINE_IN = 0.42, 0.1, 0.02
_TOP_IN, _BOTTOM_IN = 0.75, 0.65


def _slots(side: list[_Flow], scale: float) -> list[tuple[float, float]]:
    """(band height, slot height) of each node at `scale` inches per satoshi."""
    out = []
    for f in side:
        h = max(f.amount_sat * scale, _HAIRLINE_IN)
        out.append((h, max(h, _SLOT_IN)))
    return out


def _money_flow_svg(left: list[_Flow], right: list[_Flow]) -> str:
    """The case's Sankey diagram: sources → the service → cash-out destinations, as SVG.

    Band widths are proportional to satoshis on one scale for both sides (a band is never
    thinner than a hairline, so tiny flows stay visible); labels carry the amounts. The figure
    grows with the number of nodes, so labels never overlap; y is in inches.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch, Rectangle

    with _figure_style():
        total_in = sum(f.amount_sat for f in left)
        total_out = sum(f.amount_sat for f in right)
        if total_in == 0 and total_out == 0:
            fig = Figure(figsize=(10, 1.6))
            ax = fig.add_axes((0, 0, 1, 1))
            ax.axis("off")
            ax.text(0.5, 0.6, "no flows", ha="center", va="center", fontsize=16, color="#555")
            ax.text(0.5, 0.25, "no leads and no cash-outs in this case", ha="center", color="#777")
            return _svg(fig)
        n = max(len(left), len(right))
        span = max(4.6, n * (_SLOT_IN + _GAP_IN) + 0.6)
        height = _TOP_IN + span + _BOTTOM_IN
        fig = Figure(figsize=(10, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, height)
        ax.axis("off")
        # the largest scale at which both sides fit the span (slots and gaps included)
        scale = span / max(total_in, total_out, 1)
        for _ in range(100):
            need = max(
                sum(slot for _, slot in _slots(side, scale)) + _GAP_IN * max(len(side) - 1, 0)
                for side in (left, right)
            )
            if need <= span:
                break
            scale *= 0.9
        mid_y = _BOTTOM_IN + span / 2
        xl, xs, xr, w = 0.22, 0.485, 0.75, 0.03
        for x, title in ((xl, "funded by"), (xs, "the service"), (xr, "cashed out to")):
            ax.text(x + w / 2, height - 0.4, title, ha="center", fontsize=12, weight="bold")
        in_h = [h for h, _ in _slots(left, scale)]
        out_h = [h for h, _ in _slots(right, scale)]
        # the service node: as tall as the larger of what came in and what went out
        service_h = max(sum(in_h), sum(out_h))
        service_bottom = mid_y - service_h / 2
        ax.add_patch(Rectangle((xs, service_bottom), w, service_h, color=SERVICE_COLOR, lw=0))
        ax.text(
            xs + w / 2,
            service_bottom - 0.1,
            f"in {_btc_short(total_in)}\nout {_btc_short(total_out)}",
            ha="center",
            va="top",
            fontsize=10,
        )
        for side, x_node, to_service in ((left, xl, True), (right, xr, False)):
            slots = _slots(side, scale)
            used = sum(slot for _, slot in slots) + _GAP_IN * max(len(side) - 1, 0)
            top = mid_y + used / 2  # nodes stacked from here down, centred on the service
            y = mid_y + sum(h for h, _ in slots) / 2  # bands meet the service centred
            for f, (h, slot) in zip(side, slots, strict=True):
                centre = top - slot / 2
                top -= slot + _GAP_IN
                ax.add_patch(Rectangle((x_node, centre - h / 2), w, h, color=f.color, lw=0))
                node_span = (centre - h / 2, centre + h / 2)
                service_span = (y - h, y)
                y -= h
                if to_service:
                    path = _band(x_node + w, node_span, xs, service_span)
                else:
                    path = _band(xs + w, service_span, x_node, node_span)
                ax.add_patch(PathPatch(path, facecolor=f.color, alpha=0.45, lw=0))
                label = f"{_mpl_text(f.label)}\n{_btc_short(f.amount_sat)}"
                if to_service:
                    ax.text(x_node - 0.008, centre, label, ha="right", va="center", fontsize=10)
                else:
                    ax.text(x_node + w + 0.008, centre, label, ha="left", va="center", fontsize=10)
        if not right:
            ax.text(xr + w / 2, mid_y, "no cash-outs found", ha="center", color="#777")
        if not left:
            ax.text(xl + w / 2, mid_y, "no leads", ha="center", color="#777")
        return _svg(fig)


def _bin_start(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def _timeline_svg(
    inflow: list[dict[str, Any]],
    outflow: list[dict[str, Any]],
    colors: dict[tuple[str, str], str],
) -> tuple[str, str]:
    """Amounts per day/week/month: what reached the service by source (top panel, stacked)
    and the cash-outs by destination (bottom panel). Returns (svg, the caption's unit note)."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    days = [dt.date.fromisoformat(r["day"]) for r in [*inflow, *outflow] if r["day"]]
    with _figure_style():
        fig = Figure(figsize=(10, 5.2))
        if not days:
            fig.set_size_inches(10, 1.2)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.axis("off")
            ax.text(0.5, 0.5, "no payments with a time", ha="center", va="center", fontsize=14)
            return _svg(fig), "day"
        span = (max(days) - min(days)).days
        # about a hundred bars at most, whatever the case's length
        unit = "day" if span <= 100 else "week" if span <= 700 else "month"
        width = {"day": 0.9, "week": 6.0, "month": 26.0}[unit]
        axes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        fig.subplots_adjust(left=0.08, right=0.78, top=0.95, bottom=0.09, hspace=0.2)
        for ax, records, title, who in (
            (axes[0], inflow, "reaching the service (by source)", "source"),
            (axes[1], outflow, "cashed out (by destination)", "destination"),
        ):
            series = _series(records, colors, unit)
            starts = sorted({b for _, _, bins in series for b in bins})
            base = dict.fromkeys(starts, 0.0)
            for label, color, bins in series:
                xs = [mdates.date2num(b) for b in starts]
                heights = [bins.get(b, 0) / SAT for b in starts]
                ax.bar(
                    xs,
                    heights,
                    width=width,
                    bottom=[base[b] for b in starts],
                    color=color,
                    label=_mpl_text(label),
                    align="edge",
                    linewidth=0,
                )
                for b, h in zip(starts, heights, strict=True):
                    base[b] += h
            ax.set_ylabel(f"BTC per {unit}")
            ax.set_title(title, loc="left", fontsize=9.5)
            if series:
                ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
            else:
                ax.text(0.5, 0.5, f"no {who}s with a time", transform=ax.transAxes, ha="center")
        locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
        axes[1].xaxis.set_major_locator(locator)
        axes[1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return _svg(fig), unit


def _series(
    records: list[dict[str, Any]],
    colors: dict[tuple[str, str], str],
    unit: str,
) -> list[tuple[str, str, dict[dt.date, int]]]:
    """(label, colour, {bin start: satoshis}) per source, largest first: named sources on
    their own up to TIMELINE_SERIES, CoinJoins together, the rest as 'other'."""
    groups: dict[tuple[str, str], dict[dt.date, int]] = {}
    totals: dict[tuple[str, str], int] = {}
    for r in records:
        category, entity = r["category"], r["entity"]
        key = ("coinjoin", "") if category == "coinjoin" else (category, entity)
        b = _bin_start(dt.date.fromisoformat(r["day"]), unit)
        bins = groups.setdefault(key, {})
        bins[b] = bins.get(b, 0) + int(r["sat"] or 0)
        totals[key] = totals.get(key, 0) + int(r["sat"] or 0)
    named = sorted((k for k in totals if _is_named(*k)), key=lambda k: (-totals[k], k))[
        :TIMELINE_SERIES
    ]
    # named sources at the bottom of each stack, the grey ones on top of them
    ranked = named + sorted((k for k in totals if k not in named), key=lambda k: (-totals[k], k))
    out = []
    other: dict[dt.date, int] = {}
    for key in ranked:
        if key in named or key[0] in ("coinjoin", "unattributed", "coinbase"):
            category, entity = key
            label = (
                "CoinJoin (all mixers)"
                if category == "coinjoin"
                else _source_label(category, entity)
            )
            out.append((label, colors.get(key, GREY), groups[key]))
        else:
            for b, v in groups[key].items():
                other[b] = other.get(b, 0) + v
    if other:
        out.append(("other", "#cfcfcf", other))
    return out


# ------------------------------------------------------------------------------ render
def _btc(sat: Any) -> str:
    """Exact BTC with eight decimals, e.g. 0.98149689."""
    if sat is None:
        return ""
    sat = int(sat)
    sign = "-" if sat < 0 else ""
    whole, frac = divmod(abs(sat), SAT)
    return f"{sign}{whole:,}.{frac:08d}"


def _usd(value: Any, note: Any = None) -> str:
    if note == "missing_price" or value is None:
        return "missing_price" if note == "missing_price" else ""
    return f"{float(value):,.2f}"


def _when(iso: Any) -> str:
    """'2019-02-18T03:28:01Z' as '2019-02-18 03:28:01' (the header says UTC)."""
    return "" if not iso else str(iso).replace("T", " ").removesuffix("Z")


def _render(report: _Report) -> str:
    import jinja2

    source = (resources.files("chainsleuth.cases") / "templates" / "report.html.j2").read_text(
        "utf-8"
    )
    env = jinja2.Environment(
        autoescape=True,  # every address and entity name comes from user-supplied data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["btc"] = _btc
    env.filters["btc_short"] = _btc_short
    env.filters["usd"] = _usd
    env.filters["when"] = _when
    env.filters["count"] = lambda n: f"{int(n or 0):,}"
    env.filters["pct"] = lambda x: f"{100 * float(x):.1f} %"
    return env.from_string(source).render(r=report)


# ------------------------------------------------------------------------------ output
def _load_weasyprint() -> Any:
    """Import WeasyPrint, turning a missing package or missing Pango into one clear error."""
    try:
        import weasyprint
    except (ImportError, OSError) as e:  # OSError: cffi could not load libpango/libgobject
        raise ChainsleuthError(f"{PDF_INSTALL_HINT} (import failed: {e})") from e
    return weasyprint


def _data_only_fetcher(weasyprint: Any) -> Any:
    """A URL fetcher that serves data: URIs only: the report embeds everything, so any other
    fetch (a file on this machine, the network) is refused rather than followed."""
    urls = weasyprint.urls
    if hasattr(urls, "URLFetcher"):  # newer WeasyPrint: a fetcher class with a protocol list
        return urls.URLFetcher(allowed_protocols=("data",))

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:  # older WeasyPrint: a function
        if not url.startswith("data:"):
            raise ValueError(f"the report fetches nothing but data: URIs, not {url[:40]}")
        return urls.default_url_fetcher(url, *args, **kwargs)

    return fetch
