# Every target bootstraps .venv itself (python3 -m venv + pip install -e '.[dev]') when it
# is missing or pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := bot handlers storage

.PHONY: demo run test test-slow mutants lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python -m bot demo

run: $(STAMP)
	$(BIN)/python -m bot run

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/mypy $(PACKAGES)

test: lint
	$(BIN)/pytest

# The long runs: hundreds of SIGKILLs, long whole-bot fuzzing.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

# Prove each security or data-loss control by breaking it (tests/mutants.py).
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
