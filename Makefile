# `make demo` and `make test` work on a fresh clone: they build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every version `make setup` installs, pinned (pip-tools writes it: `make lock`). The ranges
# in pyproject.toml stay what users of the library get; this file is what the suite ran with.
LOCK   := constraints.txt

.PHONY: setup demo test ui-test lint bench clean lock upgrade drift docs pgvector chromium soak

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $(STAMP)

# pip-tools in a venv of its own, so it never decides what the project's venv holds.
TOOLS := .venv-tools
$(TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet pip-tools

# Re-pin after a change to pyproject.toml's ranges (keeps every pin the ranges still allow).
lock: $(TOOLS)/bin/pip-compile
	CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet --extra dev \
	  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	  --output-file $(LOCK) $(PIP_COMPILE_ARGS) pyproject.toml

# Move every pin to the newest release the ranges allow, reinstall, and run the whole suite:
# commit constraints.txt only when it passes.
upgrade:
	$(MAKE) lock PIP_COMPILE_ARGS=--upgrade
	rm -f $(STAMP)
	$(MAKE) test

# The demo's dev server listens on PORT (its UI on PORT + 1000): `make demo PORT=7300`. A server
# already listening there is used as it is (the demo says so) and left running.
PORT ?= 7233
demo: setup
	$(BIN)/agentflow demo --port $(PORT)

# The MCP servers the tests start (server-everything from npm, pinned by the lock file):
# installed here, into tests/mcp/node_modules, so nothing downloads while tests run.
NPM_STAMP := tests/mcp/node_modules/.installed

$(NPM_STAMP): tests/mcp/package.json tests/mcp/package-lock.json
	npm ci --prefix tests/mcp --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# Two test processes (pytest-xdist), each with its own dev server; a file's tests stay in one
# process, in order. PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= 2

# The memory tests run against a real PostgreSQL with pgvector (tests/_postgres.py starts one
# per test process). As root, this installs Debian's postgresql and the postgresql-NN-pgvector
# of its version when missing; a Debian release without that package (bookworm) can use the
# PostgreSQL with pgvector of the pgserver wheel instead. Not root and none there: one line says
# the pgvector tests will skip.
PGVECTOR_CONTROL := /usr/share/postgresql/*/extension/vector.control \
  $(VENV)/lib/python*/site-packages/pgserver/pginstall/share/postgresql/extension/vector.control

pgvector: setup
	@ready() { for f in $(PGVECTOR_CONTROL); do [ -e "$$f" ] && { [ "$$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; } && return 0; done; return 1; }; \
	ready && exit 0; \
	[ "$$(id -u)" = 0 ] || { echo "make: no PostgreSQL with pgvector here (apt-get install postgresql postgresql-NN-pgvector needs root): the pgvector tests will skip"; exit 0; }; \
	inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$$@" >/dev/null; }; \
	ls /var/lib/apt/lists/ | grep -q _Packages || apt-get update -qq; \
	ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || inst postgresql || { apt-get update -qq && inst postgresql; } || exit 1; \
	ready && exit 0; \
	ver=$$(ls /usr/lib/postgresql | sort -V | tail -1); \
	inst postgresql-$$ver-pgvector 2>/dev/null || { apt-get update -qq && inst postgresql-$$ver-pgvector 2>/dev/null; } || \
	  echo "make: Debian has no postgresql-$$ver-pgvector for this release and the pgserver wheel is not installed: the pgvector tests will skip"

# The browser tests (the console, tests/test_console.py; the Temporal UI,
# tests/test_ui_screenshot.py) drive Debian's chromium over DevTools. As root (CI), this installs it when missing (about a
# minute of apt on a clean machine); not root and none there: one line says they will skip.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null && exit 0; \
	[ "$$(id -u)" = 0 ] || { echo "make: no chromium here (apt-get install chromium needs root): the browser tests will skip"; exit 0; }; \
	inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	ls /var/lib/apt/lists/ | grep -q _Packages || apt-get update -qq; \
	inst || { apt-get update -qq && inst; }

test: setup $(NPM_STAMP) pgvector chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# What a user who installs today gets: the newest allowed versions, unpinned, in a scratch
# venv, against the tests that talk to LLM providers and MCP servers (the parts that move).
DRIFT := .venv-drift
drift: $(NPM_STAMP)
	rm -rf $(DRIFT) && $(PYTHON) -m venv $(DRIFT)
	$(DRIFT)/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	$(DRIFT)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile \
	  tests/test_llm*.py tests/test_mcp.py $(PYTEST_ARGS)

# The browser tests alone (installing chromium first, as `make test` does); the screenshots
# land in .agentflow/.
ui-test: setup chromium
	$(BIN)/python -m pytest tests/test_ui_screenshot.py tests/test_console.py -rs $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Benchmarks (not part of `make test`): own dev server on free ports; writes bench/RESULTS.md.
# BENCH_QUICK=1 runs tiny sizes once (a smoke run); BENCH_ARGS="--only W1,W2" picks workloads.
bench: setup pgvector
	$(BIN)/python -m bench $(BENCH_ARGS)

# The soak (not part of `make test`): the whole runtime for ~20 minutes under worker and
# server kills and a cut connection; see docs/reliability.md. Smaller: SOAK_ARGS="--sessions
# 10 --events 300 --turns 50 --minutes 3". Exits 1 if a check of its report fails.
# SOAK_ARGS="--with-hostile" also runs tests/test_hostile_*.py under the load; "--bad N" sets
# how many bad inputs (too large, not JSON, unknown targets, expired, denied) it sends.
soak: setup
	$(BIN)/python -m soak $(SOAK_ARGS)

# docs/reference/cli.md and config.md, generated from the parser and the config schema
# (tests/test_docs.py fails when the committed pages differ).
docs: setup
	$(BIN)/python -m agentflow.cli.reference

clean:
	rm -rf $(VENV) $(TOOLS) $(DRIFT) .agentflow .pytest_cache .mypy_cache .ruff_cache *.egg-info tests/mcp/node_modules
