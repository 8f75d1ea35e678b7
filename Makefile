# voucherledger — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Where `make run` serves: `make run HOST=0.0.0.0 PORT=9000`.
HOST ?= 127.0.0.1
PORT ?= 8000

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

.PHONY: help venv run test test-fast lint fmt migrate migration-check openapi openapi-check client fuzz bench check i18n screenshots

# Two pytest-xdist workers, not -n auto: this is a 2-core machine, and the connection
# budget (under 60 at once: see tests/conftest.py) is worked out for two workers.
# loadgroup keeps the tests of one xdist_group (the connection-heavy ones) on one
# worker, one after another.
XDIST := -n 2 --dist loadgroup

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(STAMP) ## create .venv and install the project with its dev tools

# Over plain http the session cookie cannot be Secure: `make run` turns it off unless
# VOUCHERLEDGER_SESSION_COOKIE_SECURE says otherwise.
run: $(STAMP) ## migrate the database (SQLite ./voucherledger.db by default) and serve on HOST:PORT (127.0.0.1:8000)
	$(BIN)/voucherledger db upgrade
	VOUCHERLEDGER_SESSION_COOKIE_SECURE=$${VOUCHERLEDGER_SESSION_COOKIE_SECURE:-false} \
	$(BIN)/voucherledger serve --host $(HOST) --port $(PORT)

test: $(STAMP) ## run the tests on SQLite and, where reachable, PostgreSQL (required with CI=true)
	$(BIN)/pytest $(XDIST)

test-fast: $(STAMP) ## the quick loop: SQLite only, without the tests marked slow
	VOUCHERLEDGER_TEST_BACKENDS=sqlite $(BIN)/pytest $(XDIST) -m "not slow"

lint: $(STAMP) ## ruff, mypy (src, tests, bench), import contracts, the OpenAPI document and the client up to date
	$(BIN)/ruff check src tests bench tools examples
	$(BIN)/ruff format --check src tests bench tools examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory openapi-check
	$(BIN)/python tools/gen_client.py --check

fmt: $(STAMP) ## format and fix what ruff can
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

migrate: $(STAMP) ## apply the migrations to VOUCHERLEDGER_DATABASE_URL
	$(BIN)/voucherledger db upgrade

migration-check: $(STAMP) ## migrate an empty database and check the models have not drifted
	$(BIN)/pytest -q tests/test_migrations.py

openapi: $(STAMP) ## re-export openapi/openapi.json from the app
	$(BIN)/voucherledger openapi

openapi-check: $(STAMP) ## fail if openapi/openapi.json differs from what the app serves
	$(BIN)/voucherledger openapi --check

client: $(STAMP) ## regenerate the Python client's operations (src/voucherledger/client/_operations.py) from openapi/openapi.json
	$(BIN)/python tools/gen_client.py

fuzz: $(STAMP) ## schemathesis over the whole API as admin, funder and supplier (FUZZ_SECONDS each, default 60)
	$(BIN)/python tools/fuzz.py --max-time $(or $(FUZZ_SECONDS),60) $(if $(FUZZ_POSTGRES),--postgres $(FUZZ_POSTGRES))

bench: $(STAMP) ## run the benchmarks in bench/ (prints figures; see docs/performance.md)
	$(BIN)/python bench/ledger_write.py

screenshots: $(STAMP) ## run the console's browser stories on SQLite and save their pages to docs/console/*.png
	VOUCHERLEDGER_SCREENSHOTS=1 VOUCHERLEDGER_TEST_BACKENDS=sqlite $(BIN)/pytest -q -p no:randomly \
		tests/console/*_browser.py -k 'not french'

LOCALE := src/voucherledger/console/locale
i18n: $(STAMP) ## extract the console's messages and merge them into each language's .po (then translate the new ones)
	$(BIN)/pybabel extract --mapping-file babel.cfg --no-location --sort-output \
		--project voucherledger --copyright-holder "voucherledger authors" \
		--output-file $(LOCALE)/messages.pot src/voucherledger/console
	$(BIN)/pybabel update --no-fuzzy-matching --ignore-obsolete \
		--input-file $(LOCALE)/messages.pot --output-dir $(LOCALE)

check: lint test ## lint and test, as CI does
