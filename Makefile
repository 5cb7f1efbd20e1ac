# One command for each common job. Every target makes its own virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test check format docs demo bench bench-quick bench-replicas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## test: the whole test suite (the README's and CI's test command). tests/services.py makes
## Chromium available and starts a throwaway PostgreSQL (unless KLINGWATCH_TEST_PG_URL is set),
## runs pytest $(PYTEST_ARGS), then stops what it started.
test: $(STAMP)
	$(BIN)/python tests/services.py $(PYTEST_ARGS)

## check: formatting, lint and mypy --strict
check: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## docs: regenerate docs/cli.md from the commands (a test checks it is current)
docs: $(STAMP)
	$(BIN)/python -m klingwatch.cli.reference > docs/cli.md

## demo: a batch run end to end against the offline sandbox (no Kling account needed)
demo: $(STAMP)
	$(BIN)/klingwatch demo

## bench: klingwatch against the common polling recipe, results in bench/results/
bench: $(STAMP)
	$(BIN)/python bench/run.py

## bench-quick: a small version of bench (100 tasks, one latency) in under two minutes
bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

## bench-replicas: 1, 2 and 4 watch replicas on one PostgreSQL, 10000 tasks (TASKS=2000 for less);
## the server in KLINGWATCH_TEST_PG_URL, else a throwaway cluster. Results: bench/results/replicas.md
TASKS ?= 10000
bench-replicas: $(STAMP)
	$(BIN)/python bench/replicas.py --tasks $(TASKS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
