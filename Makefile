# ddnm-edu -- two commands for a fresh machine (Python 3.10+, no conda needed):
#   make book   install into .venv and build the book (open _build/html/index.html)
#   make test   install into .venv, build the book (-W) and run every test (unit tests, notebooks,
#               the built book in Chromium, the live widgets in JupyterLab)
#   make check  the unit tests of the mathematics only, in under a minute (tests marked slow excluded)
#
# torch is installed first, on its own, so that no other package pulls a multi-GB CUDA build:
#   TORCH_SPEC defaults to torch==2.13.0. On a CPU-only Linux machine elsewhere, use the CPU wheel:
#   make test TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book book-student test check lint venv clean help

# The book's execution cache (jupyter-cache, _config.yml) keys on each notebook's code cells; the
# outputs also depend on the library and its shipped weights and data (data/), so a change there clears it.
CACHE := _build/.jupyter_cache
CACHE_STAMP := _build/.library-stamp
LIBRARY := $(shell find ddnm_edu data -type f -not -name '*.pyc' -not -path '*/__pycache__/*' -not -path 'data/candidates/*') pyproject.toml

help:
	@echo "make book          - install and build the book (_build/html/index.html)"
	@echo "make book-student  - the same book without solutions, for a class (_build/student/_build/html)"
	@echo "make test          - install and run all tests"
	@echo "make check         - the unit tests of the mathematics only (under a minute; no book, browser or nbgrader)"
	@echo "make lint          - ruff check and ruff format --check on the library, tests and benchmarks"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

$(CACHE_STAMP): $(LIBRARY)
	rm -rf $(CACHE)
	mkdir -p _build && touch $@

# the style of the library, tests and benchmarks (ruff, configured in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check ddnm_edu tests benchmarks conftest.py
	$(BIN)/ruff format --check ddnm_edu tests benchmarks conftest.py

test: $(STAMP) $(CACHE_STAMP) lint
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(MAKE) book-student
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow" -q

book: $(STAMP) $(CACHE_STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book built: open $(CURDIR)/_build/html/index.html"

# The student edition: the book's sources with every exercise's solution removed (ddnm_edu.tools.classroom),
# built like the book. Publish _build/student/_build/html for a class; the default build keeps solutions.
book-student: $(STAMP) $(CACHE_STAMP)
	$(BIN)/python -m ddnm_edu.tools.classroom student-book _build/student
	$(BIN)/jupyter-book build _build/student -W -n --keep-going
	@echo "Student edition built: open $(CURDIR)/_build/student/_build/html/index.html"

clean:
	rm -rf _build $(VENV)
