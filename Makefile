# Every target bootstraps .venv itself (python3 -m venv + pip install -e '.[dev]') when it
# is missing or pyproject.toml is newer than the last install. `make run` installs only what
# the bot needs, pinned with hashes from requirements.lock (`make lock` writes it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PACKAGES := bot handlers storage

.PHONY: demo run lock test test-slow mutants mutation lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/python -m bot demo

# Production: no dev extras, exactly the versions and hashes of requirements.lock.
$(RUN_STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m bot run

# Re-pin after a change of dependencies in pyproject.toml (tests/test_ops.py checks it).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

lint: $(STAMP)
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/mypy bench

test: lint
	$(BIN)/pytest

# The long runs: hundreds of SIGKILLs, long whole-bot fuzzing.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

# Prove each security or data-loss control by breaking it (tests/mutants.py).
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

# mutmut over the rule modules with the fast tests that cover them (≤ 20 minutes;
# docs/testing.md keeps the scores). `make mutation ARGS=identity` for one module.
mutation: $(STAMP)
	$(BIN)/python tests/mutation.py $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
