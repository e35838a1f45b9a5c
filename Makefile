# chainrule: `make demo` runs the demo, `make test` installs everything and runs the checks,
# `make docs` builds the documentation site into site/.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install demo test lint format bench clean docs docs-serve docs-test wheel-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an open range would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	# the docs extra too: the test suite builds the site and runs its code blocks
	$(PY) -m pip install -q -e '.[test,docs]'
	touch $@

install: $(VENV)/.installed

# the site, strict: a warning (broken link, page missing from nav, failing code block) is an error;
# NO_MKDOCS_2_WARNING silences Material's banner about MkDocs 2.0, which is not a build warning
docs: install
	OMP_NUM_THREADS=1 NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: install
	OMP_NUM_THREADS=1 NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# the documentation tests alone: strict build, every code block of the guide, Getting started word for word
docs-test: install
	$(PY) -m pytest -q -m docs

demo: install
	$(VENV)/bin/chainrule demo --out runs/demo --force

lint: install
	$(PY) -m ruff check src tests benchmarks examples scripts
	$(PY) -m ruff format --check src tests benchmarks examples scripts
	# the layers of DESIGN.md (contract in pyproject.toml [tool.importlinter])
	$(VENV)/bin/lint-imports --no-logo

format: install
	$(PY) -m ruff format src tests benchmarks examples scripts
	$(PY) -m ruff check --fix src tests benchmarks examples scripts

# one pytest worker per core (at most 4): every test runs one torch thread (tests/conftest.py), so
# two workers fill 2 cores where one left the second idle (2026-12-07: 512 s -> 314 s on 2 cores)
test: lint
	$(PY) -m pytest -q -n auto --maxprocesses=4 --durations=15

# a clean install: build the wheel, install it (torch pinned first) in an empty venv, run
# `chainrule --help`, the demo and a moved model folder from outside the repository (a few minutes)
wheel-check: install
	CHAINRULE_WHEEL_TEST=1 $(PY) -m pytest -q -m slow tests/test_wheel.py

bench: install
	$(VENV)/bin/chainrule bench

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
