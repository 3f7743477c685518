# Two commands do all set-up: `make demo` runs the main job, `make test` runs the tests.
# Each creates the virtual environment in .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench leaderboard clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/vrbench quickstart

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# the published leaderboard of the reference baselines (about 35 minutes on 2 cores)
leaderboard: $(VENV)/.installed
	$(BIN)/vrbench quickstart --seeds 0 1 2
	$(BIN)/vrbench leaderboard --root runs/quickstart --out leaderboard --bundle
	$(BIN)/vrbench analyze runs/quickstart --out leaderboard/analysis
	cp runs/quickstart/dynamics.png leaderboard/dynamics.png

bench: $(VENV)/.installed
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/rl_step.py

clean:
	rm -rf runs .pytest_cache
