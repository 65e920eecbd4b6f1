# codesign: `make demo` and `make test` work on a fresh machine (Python >= 3.11).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main job: co-design search on the bundled agent workload (a synthetic fleet of
# Claude-Code-like sessions); writes the Pareto set, a plot and the recommended deployment.
demo: $(STAMP)
	$(BIN)/codesign optimize examples/agentic-coding.yaml --out out/agentic-coding

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
