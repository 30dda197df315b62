# One command to set up and run the service, one to set up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

# `run` needs the runtime dependencies only; `install`, `test` and `lint` add the dev
# tools and the `semantic` extra. torch is pinned to the CPU build and installed first:
# left to sentence-transformers (STORYWATCH_EMBEDDINGS), pip would pick a CUDA build of
# several GB.
$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,semantic]"
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.runtime  ## the service on embedded defaults (SQLite, no broker server)
	$(BIN)/storywatch run

test: $(BIN)/.installed  ## the whole test suite (needs Redis and PostgreSQL on 127.0.0.1)
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
