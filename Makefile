# Two commands do all set-up on a fresh machine with Python >= 3.11 and make:
#   make demo   - create .venv, install kgsched, run the demo
#   make test   - create .venv, install kgsched with its test tools, run ruff and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean system-deps

# Debian packages the tests use: Virtuoso 7.2 (the store matrix), headless Chromium with its
# driver (the query page's browser test) and Redis (replicas coordinated through it). Installed
# once, only when missing; without apt-get (not
# Debian) those tests are skipped with a message saying what to install.
SYSTEM_PACKAGES := virtuoso-opensource chromium chromium-driver redis-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kgsched demo

lint: $(STAMP)
	$(BIN)/ruff check kgsched tests bench

system-deps:
	@if command -v virtuoso-t >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	    && command -v redis-server >/dev/null; then \
	  :; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(SYSTEM_PACKAGES); \
	else \
	  echo "note: install $(SYSTEM_PACKAGES) for the Virtuoso and browser tests (skipped without them)"; \
	fi

test: $(STAMP) lint system-deps
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/claim_bench.py
	$(BIN)/python bench/trace_bench.py
	$(BIN)/python bench/startup_bench.py
	$(BIN)/python bench/kinds_bench.py
	$(BIN)/python bench/registration_bench.py

clean:
	rm -rf $(VENV) kgsched-data .pytest_cache build *.egg-info
