# Two commands on a fresh machine:  `make run` (the whole workflow, offline)  and  `make test` (the suites).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-parallel test-latency clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: install
	$(BIN)/edgebench run $(RUN_ARGS)

# Parity (the node's cases and the `matrix`: three model families, AUTO, batch 4), fault injection, workflow,
# robustness and property tests in parallel; latency benchmarks afterwards, serially (pytest-benchmark
# disables itself under xdist). The trained suite models are cached between the two. `slow` is left out.
test: test-parallel test-latency

test-parallel: install
	$(BIN)/python -m pytest -n 2 -p no:benchmark -m "not latency and not slow" $(PYTEST_ARGS)

test-latency: install
	mkdir -p reports
	$(BIN)/python -m pytest -m "latency and not slow" --benchmark-save-data --benchmark-json=reports/benchmark-latest.json $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .benchmarks
