#!/usr/bin/env bash
# Build the web explorer (chainsleuth/web/src → chainsleuth/web/static) reproducibly:
# pinned npm packages from the committed package-lock.json (`npm ci`), type-checked by tsc,
# bundled by esbuild. The built files are committed as package data, so installing chainsleuth
# needs no Node. app.js starts with the sha256 of its sources (see web_sources_digest below and
# tests/web/test_bundle.py, which fails when the committed bundle is stale). `make web` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
WEB=chainsleuth/web

# The digest of everything the bundle is made from: sha256sum lines of the sorted files,
# hashed again. tests/web/test_bundle.py recomputes it the same way in Python.
web_sources_digest() {
  { printf '%s\n' scripts/build-web.sh "$WEB/package.json" "$WEB/package-lock.json" "$WEB/tsconfig.json"
    ls "$WEB"/src/*; } | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1
}

command -v npm >/dev/null || { echo "build-web: npm not found (apt-get install nodejs npm)" >&2; exit 2; }
(cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$WEB" && node_modules/.bin/tsc -p .)
DIGEST=$(web_sources_digest)
mkdir -p "$WEB/static"
(cd "$WEB" && node_modules/.bin/esbuild src/main.ts --bundle --minify --format=iife \
  --target=es2020 --legal-comments=eof --log-level=warning --outfile=static/app.js \
  "--banner:js=/* chainsleuth web explorer; sources-sha256: $DIGEST; built by scripts/build-web.sh from chainsleuth/web/src (cytoscape, cytoscape-dagre, cytoscape-svg: see THIRD-PARTY-LICENSES.txt) */")
cp "$WEB/src/index.html" "$WEB/src/app.css" "$WEB/static/"
# The licences of the bundled packages travel with the bundle.
(cd "$WEB" && for p in cytoscape cytoscape-dagre cytoscape-svg; do
  v=$(node -p "require('./node_modules/$p/package.json').version")
  printf '==== %s %s ====\n' "$p" "$v"; cat "node_modules/$p/LICENSE"*; printf '\n'
done) > "$WEB/static/THIRD-PARTY-LICENSES.txt"
echo "build-web: $WEB/static/app.js ($(wc -c < "$WEB/static/app.js") bytes, sources-sha256 $DIGEST)"
