# E-lectro: `make run` serves the demo shop, `make test` runs the whole suite.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PG_TEST_URL ?= postgresql+asyncpg://electro@127.0.0.1:5432/test

.PHONY: run test lint install bench

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,dev,speed]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/electro init-db
	$(BIN)/electro create-admin --username admin --email admin@electro.example --generate-if-no-admin
	$(BIN)/electro seed-demo --if-empty --shoppers 50
	$(BIN)/electro serve --bind 127.0.0.1:5000

test: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -q
	@if pg_isready -q -h 127.0.0.1 -p 5432; then \
		ELECTRO_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true: failing"; exit 1; \
	else \
		echo "PostgreSQL not reachable at 127.0.0.1:5432: skipping the PostgreSQL run"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check electro tests $(wildcard bench)
	$(BIN)/mypy electro

# Every bench/bench_*.py prints its own table; each starts and stops what it measures.
# `make bench BENCH=shop` runs bench/bench_shop.py alone (BENCH="shop nodes": those two).
BENCH ?= $(sort $(patsubst bench/bench_%.py,%,$(wildcard bench/bench_*.py)))
bench: $(STAMP)
	bash scripts/test-services.sh
	@for name in $(BENCH); do \
		script=bench/bench_$$name.py; \
		[ -f "$$script" ] || { echo "no $$script (see bench/)"; exit 1; }; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done
