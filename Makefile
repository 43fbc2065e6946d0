# `make demo` and `make test` work on a fresh clone: they build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test ui-test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/agentflow demo --config agentflow.toml --input @examples/demo_input.json

# The MCP servers the tests start (server-everything from npm, pinned by the lock file):
# installed here, into tests/mcp/node_modules, so nothing downloads while tests run.
NPM_STAMP := tests/mcp/node_modules/.installed

$(NPM_STAMP): tests/mcp/package.json tests/mcp/package-lock.json
	npm ci --prefix tests/mcp --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# Two test processes (pytest-xdist), each with its own dev server; a file's tests stay in one
# process, in order. PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= 2

test: setup $(NPM_STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The Temporal UI screenshot test needs Debian's chromium, which `make test` does not install
# (about a minute of apt on a clean machine); without it that test skips. This installs it
# (as root, only if missing) and runs the test; the screenshot lands in .agentflow/.
ui-test: setup
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] || { echo "make ui-test: installing chromium needs root (apt-get install chromium)"; exit 2; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	$(BIN)/python -m pytest tests/test_ui_screenshot.py -rs $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks (not part of `make test`): own dev server on free ports; writes bench/RESULTS.md.
# BENCH_QUICK=1 runs tiny sizes once (a smoke run); BENCH_ARGS="--only W1,W2" picks workloads.
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .agentflow .pytest_cache .mypy_cache .ruff_cache *.egg-info tests/mcp/node_modules
