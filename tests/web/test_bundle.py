"""The committed web bundle is built from the committed sources (no Node needed to check).

scripts/build-web.sh writes the sha256 of the explorer's sources into app.js's first line; this
recomputes it the same way (sha256sum lines of the sorted files, hashed again) and fails when a
source changed without `make web`. It also checks the static files are package data and that the
page needs nothing from another host.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "chainsleuth" / "web"
STATIC = WEB / "static"


def sources_digest() -> str:
    files = [
        ROOT / "scripts" / "build-web.sh",
        WEB / "package.json",
        WEB / "package-lock.json",
        WEB / "tsconfig.json",
        *(WEB / "src").iterdir(),
    ]
    rels = sorted(str(f.relative_to(ROOT)) for f in files)
    lines = "".join(f"{hashlib.sha256((ROOT / r).read_bytes()).hexdigest()}  {r}\n" for r in rels)
    return hashlib.sha256(lines.encode()).hexdigest()


def test_committed_bundle_matches_its_sources() -> None:
    head = (STATIC / "app.js").read_text()[:400]
    found = re.search(r"sources-sha256: ([0-9a-f]{64})", head)
    assert found, "app.js has no sources-sha256 header: rebuild with `make web`"
    assert found.group(1) == sources_digest(), (
        "chainsleuth/web/static is stale: a file under chainsleuth/web/src (or the lock file or "
        "scripts/build-web.sh) changed since the last build; run `make web` and commit static/"
    )
    for name in ("index.html", "app.css"):
        assert (STATIC / name).read_bytes() == (WEB / "src" / name).read_bytes(), name


def test_static_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]["chainsleuth"]
    assert "web/static/*" in data
    for name in ("index.html", "app.js", "app.css", "THIRD-PARTY-LICENSES.txt"):
        assert (STATIC / name).is_file(), name


def test_page_loads_nothing_from_another_host_and_has_no_inline_code() -> None:
    html = (STATIC / "index.html").read_text()
    # every src/href is relative (same origin) or a data: favicon
    for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html):
        assert ref.startswith("data:") or not re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref), ref
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and " style=" not in html, "inline style breaks the CSP"
    bundle = (STATIC / "app.js").read_text()
    assert not re.search(r"""fetch\(\s*["'`]https?://""", bundle)
