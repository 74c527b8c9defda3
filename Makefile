# ddnm-edu -- two commands for a fresh machine (Python 3.10+, no conda needed):
#   make book   install into .venv and build the book (open _build/html/index.html)
#   make test   install into .venv, build the book (-W) and run every test (unit tests, notebooks,
#               the built book in Chromium, the live widgets in JupyterLab)
#
# torch is installed first, on its own, so that no other package pulls a multi-GB CUDA build:
#   TORCH_SPEC defaults to torch==2.13.0. On a CPU-only Linux machine elsewhere, use the CPU wheel:
#   make test TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book book-student test venv clean help

help:
	@echo "make book          - install and build the book (_build/html/index.html)"
	@echo "make book-student  - the same book without solutions, for a class (_build/student/_build/html)"
	@echo "make test          - install and run all tests"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(MAKE) book-student
	$(BIN)/python -m pytest

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "Book built: open $(CURDIR)/_build/html/index.html"

# The student edition: the book's sources with every exercise's solution removed (ddnm_edu.tools.classroom),
# built like the book. Publish _build/student/_build/html for a class; the default build keeps solutions.
book-student: $(STAMP)
	$(BIN)/python -m ddnm_edu.tools.classroom student-book _build/student
	$(BIN)/jupyter-book build _build/student -W -n --keep-going
	@echo "Student edition built: open $(CURDIR)/_build/student/_build/html/index.html"

clean:
	rm -rf _build $(VENV)
