# Two commands do all set-up on a fresh machine with Python >= 3.11 and make:
#   make demo   - create .venv, install kgsched, run the demo
#   make test   - create .venv, install kgsched with its test tools, run ruff and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

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

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/claim_bench.py
	$(BIN)/python bench/trace_bench.py
	$(BIN)/python bench/registration_bench.py

clean:
	rm -rf $(VENV) kgsched-data .pytest_cache build *.egg-info
