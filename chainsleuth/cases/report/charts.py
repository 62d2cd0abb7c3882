"""The report's figures, drawn with matplotlib as SVG: the money-flow diagram and the timeline.

`draw(report)` puts both into the `ReportData` as data URIs. The SVG is deterministic (a
fixed hash salt, no date, glyphs as paths), so the same case gives the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chainsleuth.cases.report.query import (
    DIAGRAM_NODES,
    GREY,
    SAT,
    TIMELINE_SERIES,
    ReportData,
    is_named,
    source_label,
)

SERVICE_COLOR = "#37474f"


@dataclass(frozen=True)
class Flow:
    """One node of the money-flow diagram (a source or a destination of the service)."""

    label: str
    category: str
    amount_sat: int
    color: str
    named: bool  # names someone to ask: drawn in colour, before the grey nodes


def draw(report: ReportData) -> None:
    """Draw the money-flow diagram and the timeline into the report as SVG data URIs."""
    left = nodes(report.sources, "other sources")
    right = nodes(report.destinations, "other destinations")
    svg = flow_svg(left, right)
    report.money_flow_uri = _data_uri(svg)
    if left or right:
        funded = "; ".join(f"{f.label} {btc_short(f.amount_sat)}" for f in left) or "nothing"
        cashed = "; ".join(f"{f.label} {btc_short(f.amount_sat)}" for f in right) or "nothing"
        report.money_flow_alt = f"Money flow. Funded by: {funded}. Cashed out to: {cashed}."
    else:
        report.money_flow_alt = "Money flow: no flows (no leads and no cash-outs)."
    svg, note = _timeline_svg(report.inflow_days, report.outflow_days, report.colors)
    report.timeline_uri = _data_uri(svg)
    report.timeline_note = note
    if report.requests:
        report.requests_uri = _data_uri(requests_svg(report.requests["exchanges"]))


def requests_svg(exchanges: list[dict[str, Any]]) -> str:
    """requests.csv's exchanges as bars: the deposit addresses each could answer for (a request
    to rule it in or out, never a lead), in the file's order, the first to ask on top."""
    from matplotlib.figure import Figure

    shown = exchanges[:DIAGRAM_NODES]
    with _figure_style():
        fig = Figure(figsize=(7.5, 0.6 + 0.32 * max(len(shown), 1)))
        ax = fig.add_subplot()
        labels = [_mpl_text(str(e["exchange"])) for e in shown]
        counts = [int(e["deposits"]) for e in shown]
        bars = ax.barh(range(len(shown)), counts, color=GREY)
        ax.set_yticks(range(len(shown)), labels)
        ax.invert_yaxis()
        for bar, e in zip(bars, shown, strict=True):
            ax.annotate(
                f" {int(e['deposits']):,} ({btc_short(int(e['sat']))})",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                va="center",
                fontsize=8,
            )
        ax.set_xlabel("deposit addresses it could answer for (to rule in or out)")
        ax.set_xlim(0, max(counts, default=1) * 1.35)
        fig.tight_layout()
        return _svg(fig)


def nodes(groups: list[dict[str, Any]], other: str) -> list[Flow]:
    """The diagram's nodes on one side: the largest groups, then one grey 'other' node.

    Named entities (tagged services: someone to ask) come first, largest first; then the grey
    ones (CoinJoins, unattributed), so the colours read top down."""
    flows = [
        Flow(
            g["label"],
            g["category"],
            int(g["sat"] or 0),
            g["color"],
            is_named(g["category"], g["entity"]),
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
        Flow(f"{len(rest)} {other}", "other", sum(f.amount_sat for f in rest), GREY, False),
    ]


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def btc_short(sat: int) -> str:
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


def _slots(side: list[Flow], scale: float) -> list[tuple[float, float]]:
    """(band height, slot height) of each node at `scale` inches per satoshi."""
    out = []
    for f in side:
        h = max(f.amount_sat * scale, _HAIRLINE_IN)
        out.append((h, max(h, _SLOT_IN)))
    return out


def flow_svg(left: list[Flow], right: list[Flow]) -> str:
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
            f"in {btc_short(total_in)}\nout {btc_short(total_out)}",
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
                label = f"{_mpl_text(f.label)}\n{btc_short(f.amount_sat)}"
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
    named = sorted((k for k in totals if is_named(*k)), key=lambda k: (-totals[k], k))[
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
                else source_label(category, entity)
            )
            out.append((label, colors.get(key, GREY), groups[key]))
        else:
            for b, v in groups[key].items():
                other[b] = other.get(b, 0) + v
    if other:
        out.append(("other", "#cfcfcf", other))
    return out
