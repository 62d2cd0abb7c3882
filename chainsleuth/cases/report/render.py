"""The report's page: HTML from the jinja2 template `cases/templates/report.html.j2`, and the
PDF printed from it by WeasyPrint (which may fetch nothing but the page's data: URIs).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from chainsleuth.cases.report.charts import btc_short
from chainsleuth.cases.report.query import SAT, ReportData
from chainsleuth.core.errors import ChainsleuthError

PDF_INSTALL_HINT = (
    "report.pdf needs WeasyPrint and its native libraries: `pip install 'weasyprint>=60'` and, "
    "on Debian/Ubuntu, `apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 "
    "fonts-dejavu-core` (see WeasyPrint's installation notes for other systems); "
    "or call write_report(out_dir, pdf=False) for the HTML only"
)


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


def render(report: ReportData) -> str:
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
    env.filters["btc_short"] = btc_short
    env.filters["usd"] = _usd
    env.filters["when"] = _when
    env.filters["count"] = lambda n: f"{int(n or 0):,}"
    env.filters["pct"] = lambda x: f"{100 * float(x):.1f} %"
    return env.from_string(source).render(r=report)


def load_weasyprint() -> Any:
    """Import WeasyPrint, turning a missing package or missing Pango into one clear error."""
    try:
        import weasyprint
    except (ImportError, OSError) as e:  # OSError: cffi could not load libpango/libgobject
        raise ChainsleuthError(f"{PDF_INSTALL_HINT} (import failed: {e})") from e
    return weasyprint


def data_only_fetcher(weasyprint: Any) -> Any:
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
