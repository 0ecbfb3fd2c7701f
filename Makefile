# The two set-up commands in the README: `make demo` (the main job) and `make test` (the tests).
# Both create .venv, install tickpipe with its test extras and fetch the Kafka jars on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint unit integration clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/tickpipe local fetch
	touch $@

demo: setup
	$(BIN)/tickpipe demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

clean:
	-$(BIN)/tickpipe local down
	rm -rf $(VENV) .tickpipe .mypy_cache .ruff_cache .pytest_cache
