# The two commands of the README's quick start, and the pictures the README shows. Each
# does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Airflow in a venv of its own (with this package), for the DAG tests: its dependency
# tree is large and should not constrain the main venv's.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: demo test pictures bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(AIRFLOW_STAMP): pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -e '.[airflow]'
	touch $(AIRFLOW_STAMP)

demo: $(STAMP)
	$(BIN)/python -m extractor demo --out demo

test: $(STAMP) $(AIRFLOW_STAMP)
	$(BIN)/ruff check extractor tests benchmarks notebooks examples
	$(BIN)/ruff format --check extractor tests benchmarks notebooks examples
	$(BIN)/mypy
	bash tests/ensure_postgres.sh
	$(BIN)/python -m pytest

pictures: $(STAMP)
	mkdir -p docs/img
	$(BIN)/python notebooks/run.py --pictures docs/img

bench: $(STAMP)
	$(BIN)/python benchmarks/flatten.py
	$(BIN)/python benchmarks/fetch.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) demo .pytest_cache .mypy_cache .ruff_cache
