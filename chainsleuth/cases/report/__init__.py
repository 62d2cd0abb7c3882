"""Write a case's `report.html` and `report.pdf` from the files `investigate` wrote.

`investigate()` leaves `leads.csv`, `subpoenas.csv`, `cashouts.csv`, `requests.csv` and `case.json` in
its output folder; this module reads only those files (stages talk through files; a folder from
before requests.csv has none, and its report no requests section) and turns
them into one self-contained page for the people who act on a case: the case's parameters and
counts, the money-flow diagram (funding sources → the service → cash-out destinations), a
timeline, the exchanges to subpoena with their withdrawals, the requests to rule look-alike exchanges in or
out, the cash-outs and the top leads.
The PDF is the same HTML printed by WeasyPrint. Design notes: docs/design/report.md.

Three modules, one job each: `query` (the four files read and aggregated by DuckDB into a
`ReportData`), `charts` (the matplotlib SVG figures) and `render` (the jinja2 template to
HTML, WeasyPrint to PDF); this one strings them together.

Tables are capped (top N rows, with a line naming the CSV that holds the rest) and the CSVs
are aggregated by DuckDB straight from disk, so a case with millions of leads gives a report of
bounded size in bounded time. The HTML is a function of the four files only (no run time in
it): the same case gives the same bytes.

    >>> write_report(Path("case"))  # doctest: +SKIP
    ReportPaths(html=PosixPath('case/report.html'), pdf=PosixPath('case/report.pdf'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chainsleuth.cases.report.charts import draw, flow_svg, nodes
from chainsleuth.cases.report.query import collect, read_case
from chainsleuth.cases.report.render import data_only_fetcher, load_weasyprint, render
from chainsleuth.core.files import atomic_write

__all__ = ["ReportPaths", "money_flow_svg", "write_report"]


# --------------------------------------------------------------------------------- public
@dataclass(frozen=True)
class ReportPaths:
    """Where `write_report` wrote: `pdf` is None when it was asked for the HTML only."""

    html: Path
    pdf: Path | None


def write_report(out_dir: Path, pdf: bool = True) -> ReportPaths:
    """Write `out_dir/report.html` (and `report.pdf`) from the case files in `out_dir`.

    Reads `case.json`, `leads.csv`, `subpoenas.csv`, `cashouts.csv` (and `requests.csv`
    when there) as `investigate` wrote them; each output is written to a temporary file in `out_dir` and moved into place.
    With `pdf=False` no PDF is made and a `report.pdf` of an earlier run is removed, so the
    folder never holds a report that disagrees with the files. Raises ChainsleuthError when a
    file is missing or malformed, or when `pdf` is asked for and WeasyPrint (or its Pango
    libraries) cannot be loaded — before anything is written.

        >>> paths = write_report(Path("case"))  # doctest: +SKIP
        >>> paths.html.name, paths.pdf.name  # doctest: +SKIP
        ('report.html', 'report.pdf')
    """
    out_dir = Path(out_dir)
    case = read_case(out_dir)
    weasyprint = load_weasyprint() if pdf else None
    report = collect(out_dir, case)
    draw(report)
    page = render(report)
    html_path = out_dir / "report.html"
    atomic_write(html_path, lambda f: f.write(page.encode()))
    pdf_path = out_dir / "report.pdf"
    if weasyprint is None:
        pdf_path.unlink(missing_ok=True)
        return ReportPaths(html=html_path, pdf=None)
    document = weasyprint.HTML(
        string=page, base_url=str(out_dir.resolve()), url_fetcher=data_only_fetcher(weasyprint)
    )
    atomic_write(pdf_path, lambda f: document.write_pdf(target=f))
    return ReportPaths(html=html_path, pdf=pdf_path)


def money_flow_svg(out_dir: Path) -> str:
    """The report's money-flow diagram (funding sources → service → cash-outs) of a finished
    case directory, as SVG text: the same picture report.html shows.

        >>> money_flow_svg(Path("case")).startswith("<?xml")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    report = collect(out_dir, read_case(out_dir))
    return flow_svg(
        nodes(report.sources, "other sources"), nodes(report.destinations, "other destinations")
    )
