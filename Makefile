# `make demo` and `make test` work on a fresh clone: they build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/agentflow demo --config agentflow.toml --input @examples/demo_input.json

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks (not part of `make test`): own dev server on free ports; writes bench/RESULTS.md.
# BENCH_QUICK=1 runs tiny sizes once (a smoke run); BENCH_ARGS="--only W1,W2" picks workloads.
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .agentflow .pytest_cache .mypy_cache .ruff_cache *.egg-info
