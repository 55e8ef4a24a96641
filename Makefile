# The two commands of the README's quick start, and the pictures the README shows. Each
# does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test pictures bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m extractor demo --out demo

test: $(STAMP)
	$(BIN)/ruff check extractor tests benchmarks notebooks
	$(BIN)/ruff format --check extractor tests benchmarks notebooks
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
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
