# Two commands that work on a fresh machine (Debian, Python 3.11, root):
#   make run    sets up .venv and runs the word-count example in local mode
#   make test   sets up .venv and the services the tests need, then runs every check
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_SECS ?= 10

.PHONY: run test lint typecheck layers pytest services bench clean

$(STAMP): pyproject.toml setup.py src/squall/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/squall run examples/wordcount.py --duration $(RUN_SECS)

# Services the tests need are installed and started by scripts in .ci/services/
# (each is idempotent); later layers add theirs to SERVICES.
SERVICES := zookeeper chromium redis
services:
	@for s in $(SERVICES); do bash .ci/services/$$s.sh || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff format --check src tests examples bench
	$(VENV)/bin/ruff check src tests examples bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

layers: $(STAMP)
	$(VENV)/bin/lint-imports

# The unit tests run twice: with the C accelerator, and on the pure-Python path that
# specifies it (SQUALL_NO_SPEEDUPS=1).
pytest: $(STAMP)
	SQUALL_NO_SPEEDUPS=1 $(PY) -m pytest -q -p no:cacheprovider tests/unit
	$(PY) -m pytest -q -p no:cacheprovider

test: $(STAMP) services lint typecheck layers pytest

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/wordcount.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
