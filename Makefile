# chainrule: `make demo` runs the demo, `make test` installs everything and runs the checks.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install demo test lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an open range would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/chainrule demo --out runs/demo

lint: install
	$(PY) -m ruff check src tests benchmarks examples scripts
	$(PY) -m ruff format --check src tests benchmarks examples scripts

format: install
	$(PY) -m ruff format src tests benchmarks examples scripts
	$(PY) -m ruff check --fix src tests benchmarks examples scripts

test: lint
	$(PY) -m pytest -q

bench: install
	$(VENV)/bin/chainrule bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
