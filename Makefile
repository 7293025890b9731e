# Triloop: two commands.  `make up` runs the factory, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test venv image lint typecheck unit clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

image: $(STAMP)
	$(BIN)/python scripts/build_sandbox_image.py

up: $(STAMP) image
	$(BIN)/python scripts/up.py

lint: $(STAMP)
	$(BIN)/ruff check dags plugins include tests scripts
	$(BIN)/ruff format --check dags plugins include tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) image lint typecheck
	$(BIN)/pytest

clean:
	rm -rf .airflow .triloop
