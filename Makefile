# `make install` does all set-up; `make demo` runs the main job, `make test` runs the tests
# (each also creates the virtual environment in .venv when it is missing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench leaderboard clean

# TORCH_INDEX: where torch and torchvision come from first (e.g. PyTorch's CPU-only index,
# https://download.pytorch.org/whl/cpu, on a machine without a GPU); empty: the default
TORCH_INDEX ?=

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	test -z "$(TORCH_INDEX)" || $(BIN)/python -m pip install --quiet torch torchvision \
		--index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/vrbench quickstart

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# the published leaderboard of the reference baselines: three seeds (each in a process of
# its own), each arm at three learning rates (the matched-gain frontier), the RL arm also
# run 200 steps at 5e-5 from a warm start in which 15% of the solutions are the answer
# alone (length and the seed, where the longer answer pays); it resumes where it stopped,
# and prints how long it took
LEADERBOARD_SEEDS := 0 1 2
leaderboard: $(VENV)/.installed
	mkdir -p runs && date +%s > runs/.leaderboard-start
	$(BIN)/vrbench quickstart --seeds $(LEADERBOARD_SEEDS) --jobs 3 --sweep-lrs 2e-5 5e-5 1e-4 \
		--long-rl-steps 200 --long-rl-lr 5e-5 --long-rl-terse 0.15
	$(BIN)/vrbench analyze runs/quickstart --out leaderboard/analysis
	cd runs/quickstart && cp summary.md claims.json claims.png dynamics.png warm_dynamics.png \
		pareto.png pareto.json per_seed.json ../../leaderboard/
	$(BIN)/vrbench eval --model runs/quickstart/seed0/warm/checkpoint-000500 --tasks id,shifts \
		--split test --limit 200 --max-new-tokens 96 --batch-size 32 --output runs/shifts-warm
	cp runs/shifts-warm/shifts.png leaderboard/shifts.png
	$(BIN)/vrbench leaderboard --root runs/quickstart --out leaderboard --bundle --force
	for s in $(LEADERBOARD_SEEDS); do for stage in rl-long warm-terse; do \
		cp runs/quickstart/seed$$s/$$stage/train_config.json leaderboard/runs/seed$$s/$$stage/; \
		done; cp runs/quickstart/seed$$s/rl-long/train_log.jsonl leaderboard/runs/seed$$s/rl-long/; \
		done
	@echo "make leaderboard: $$(( $$(date +%s) - $$(cat runs/.leaderboard-start) )) s"

bench: $(VENV)/.installed
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/eval_scale.py
	$(BIN)/python bench/rl_step.py

clean:
	rm -rf runs .pytest_cache
