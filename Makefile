# chainsleuth: `make demo`, `make test`, `make bench` set themselves up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-scale clean web

$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/chainsleuth demo

lint: $(STAMP)
	$(BIN)/ruff check chainsleuth tests bench
	$(BIN)/ruff format --check chainsleuth tests bench
	$(BIN)/mypy chainsleuth
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

# The web explorer's built assets are committed; this rebuilds them from chainsleuth/web/src
# (needs Node and npm; pinned by chainsleuth/web/package-lock.json).
web:
	bash scripts/build-web.sh

# More flags: make bench BENCH_ARGS="--world-scale medium --scaling-pairs 3" (python -m bench.run -h)
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Issue 13: memory, time, store bytes and cold lookups on re-linked chains of 2 M - 20 M txs,
# projected to mainnet; one-block cluster updates (item 3); the largest ingest under a hard
# memory limit. Hours on 2 cores, ~60 GB of disk under /tmp at 20 M; not part of `make test`.
# Smaller: make bench-scale SIZES="2M 5M"; more flags: SCALE_ARGS="--chain DIR --note ..."
SIZES ?= 2M 5M 10M 20M
SCALE_ARGS ?=
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --sizes $(SIZES) --with-update $(SCALE_ARGS)

clean:
	rm -rf $(VENV) demo-output chainsleuth-data
