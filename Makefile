# Two commands for a newcomer: `make demo` and `make test`. Both create the
# virtual environment if it is missing and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-slow lint bench bench-planning clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,brax]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/mbrl-jax run dyna-maze --runs 30 --out results/dyna-maze

# Two workers, one per core; a file's tests stay on one worker so they share compiles.
# A test over pyproject's timeout ends its worker, and the run stops there, naming it
# (a restarted worker would run that test again).
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart=0

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(PYTEST) -m "not slow"

test-slow: $(VENV)/.installed-dev
	$(PYTEST) -m slow

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.dyna_maze

bench-planning: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.planning

clean:
	rm -rf $(VENV) results .pytest_cache
