# Two commands on a fresh machine:  `make run` (the whole workflow, offline)  and  `make test` (the suites).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run lint test test-parallel test-latency test-slurm slurm-up slurm-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: install
	$(BIN)/edgebench run $(RUN_ARGS)

# ruff (rules and formatting) and mypy (strict on harness/), configured in pyproject.toml. `make test` runs it
# first, so a lint or type error fails in seconds, before any model is trained. `ruff format .` fixes formatting.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Lint first (above). Then parity (the node's cases and the `matrix`: three model families, AUTO, batch 4), fault
# injection, workflow, robustness and property tests in parallel; latency benchmarks afterwards, serially
# (pytest-benchmark disables itself under xdist). The trained suite models are cached between the two. `slow` is left out.
# Then the fleet through a real one-machine Slurm (`slurm`, serial: one cluster for the session; skips, saying
# why, where slurmctld/slurmd/munge are not installed).
test: lint test-parallel test-latency test-slurm

test-parallel: install
	$(BIN)/python -m pytest -n 2 -p no:benchmark -m "not latency and not slow and not slurm" $(PYTEST_ARGS)

test-latency: install
	mkdir -p reports
	$(BIN)/python -m pytest -m "latency and not slow and not slurm" --benchmark-save-data --benchmark-json=reports/benchmark-latest.json $(PYTEST_ARGS)

test-slurm: install
	$(BIN)/python -m pytest -p no:benchmark -m "slurm and not slow" $(PYTEST_ARGS)

# A one-machine Slurm on 127.0.0.1 by hand (as root; Debian: apt-get install slurmctld slurmd munge slurm-client).
# `make slurm-up` prints the `export SLURM_CONF=...` that points sbatch/sinfo and `edgebench fleet run --cluster slurm` at it.
SLURM_DIR ?= .cache/slurm
slurm-up: install
	$(BIN)/python -m harness.fleet.slurm_local up $(SLURM_DIR)

slurm-down:
	$(BIN)/python -m harness.fleet.slurm_local down $(SLURM_DIR)

clean:
	rm -rf $(VENV) .cache .pytest_cache .benchmarks
