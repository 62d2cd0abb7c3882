# chainsleuth: `make demo`, `make test`, `make bench` set themselves up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean web

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

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) demo-output chainsleuth-data
