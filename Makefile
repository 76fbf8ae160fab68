# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

## Install guildkeep, migrate the database and start it (the playground when no token is set).
run: $(VENV)/.installed
	$(BIN)/guildkeep db upgrade
	$(BIN)/guildkeep run

## Install the dev tools, lint (as `make lint`), make sure PostgreSQL and Redis are up and Chromium is installed,
## and run every test on both databases.
test: lint
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-redis.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest

## ruff; mypy (strict on rules, services, the core and the LLM layer); the import contract (lint-imports):
## modules and the core never import discord, the core never imports a module, the sandbox knows no bot.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	bash scripts/ensure-postgres.sh
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache
