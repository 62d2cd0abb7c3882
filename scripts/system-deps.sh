#!/usr/bin/env bash
# System packages chainsleuth needs beyond Python (Debian/Ubuntu): Chromium for the case report's
# browser tests, Pango for WeasyPrint (report.pdf) and a font so the PDF has glyphs. Called by
# the Makefile's setup (so `make demo` and `make test` work on a fresh machine) and by CI;
# apt-get runs only when something is missing.
set -euo pipefail
libs="$("$(command -v ldconfig || echo /sbin/ldconfig)" -p)"
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
grep -q 'libpango-1\.0\.so' <<<"$libs" || missing+=(libpango-1.0-0)
grep -q 'libpangoft2-1\.0\.so' <<<"$libs" || missing+=(libpangoft2-1.0-0)
grep -q 'libharfbuzz-subset\.so' <<<"$libs" || missing+=(libharfbuzz-subset0)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; }; then
    # not Debian/Ubuntu, or no way to become root: say what is missing and go on (the PDF
    # report and the browser tests need them; the rest of chainsleuth does not)
    echo "warning: please install ${missing[*]} (or your system's equivalents)" >&2
    exit 0
  fi
  echo "installing ${missing[*]}"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

