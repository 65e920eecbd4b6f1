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

# Until the search lands, the demo tours the catalog, a point estimate and the evaluation
# of two deployments on a synthetic Claude-Code-like fleet.
demo: $(STAMP)
	$(BIN)/codesign catalog systems
	$(BIN)/codesign catalog models
	$(BIN)/codesign system show gb200 --set hbm_bandwidth_tb_s=16
	$(BIN)/codesign estimate -m deepseek-ai/DeepSeek-R1 -s gb200 --tp 8 --batch 64 \
		--isl 8192 --osl 1024 --precision nvfp4 --prefix-hit 0.9
	mkdir -p out
	$(BIN)/codesign trace synth --preset claude-code-fleet --sessions 50 --seed 0 \
		--out out/demo-fleet.jsonl.gz
	$(BIN)/codesign evaluate examples/deployment-r1-gb200-agg.yaml \
		examples/deployment-r1-disagg-subagents.yaml -t out/demo-fleet.jsonl.gz -n 200

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
