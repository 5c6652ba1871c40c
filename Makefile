# pluralguard — `make demo` runs the main job, `make test` runs the tests.
# Both create a virtual environment in .venv first (system pip may refuse installs).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
OUT ?= results/demo

.PHONY: install demo test test-slow lint bench gate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dask,fast]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/pluralguard run --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check .

gate: $(STAMP)
	$(BIN)/pluralguard check ci/suite.toml --baseline ci/baseline.json --quiet

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,dask,fast,bench]"
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
