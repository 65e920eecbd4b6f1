# codesign: `make demo` and `make test` work on a fresh machine (Python >= 3.11).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv native clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The simulator's compiled build (codesign/simulate/native.py): Cython, ~30 s, optional —
# without Cython or a C compiler, or after a simulator source changes without a rebuild,
# the pure-Python modules run (same results, ~1.5x slower).
NATIVE := $(VENV)/.native
SIM_SOURCES := $(foreach m,engine worker batching kvstore router stepmodel requests native,codesign/simulate/$(m).py) \
	$(wildcard codesign/simulate/*.pxd)
$(NATIVE): $(STAMP) $(SIM_SOURCES)
	$(BIN)/python -m codesign.simulate.build || echo "simulator: continuing with pure Python"
	touch $(NATIVE)

venv: $(STAMP) $(NATIVE)

native: $(NATIVE)

# The main job: co-design search on the bundled agent workload (a synthetic fleet of
# Claude-Code-like sessions); writes the Pareto set, a plot and the recommended deployment.
demo: $(STAMP) $(NATIVE)
	$(BIN)/codesign optimize examples/agentic-coding.yaml --out out/agentic-coding

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(NATIVE)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache codesign/simulate/*.so codesign/simulate/_native_stamp.json
