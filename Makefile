# Each target installs what it needs into a local virtual environment (.venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench docs lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,demo]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/digits_mlp.py

# One worker per core (at most 4): the suite is bound by XLA compilations.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist worksteal

# Keras 3 is a comparison point only: installed here, never a dependency.
bench: $(STAMP)
	$(PY) -m pip install --quiet keras
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/distributed.py
	$(PY) benchmarks/recipes.py
	$(PY) benchmarks/checkpoint.py

# The site, with its API reference, in strict mode: a broken link, a missing API entry or
# a failing guide fails the build. The getting-started chart comes from a real run.
docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# ruff over everything; mypy, strict, over the package (settings in pyproject.toml).
lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist site src/*.egg-info
