# The two commands: `make run` (server with demo data on SQLite) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make test` looks for PostgreSQL and Redis for its second run (it makes its own databases there).
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

export HOST PORT

.PHONY: run serve test lint chromium bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Without an SMTP server of its own, the demo prints its emails to the log (SMTP_URL=log://).
run: $(STAMP)
	$(BIN)/persistent-chat db upgrade
	$(BIN)/persistent-chat demo
	SMTP_URL="$${SMTP_URL:-log://}" $(BIN)/persistent-chat serve --demo

serve: $(STAMP)
	$(BIN)/persistent-chat db upgrade
	$(BIN)/persistent-chat serve --workers $(WORKERS)

# Playwright's own browser download is not used: tests drive the system's Chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || { \
		echo "Installing Chromium from the system's packages"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Everything on SQLite; then, when PostgreSQL answers, again on it what can turn out differently on another
# database or needs Redis: the tests marked `database`. tests/conftest.py says which: every test in tests/
# but the modules marked database_independent, and the e2e modules marked database (two server processes
# sharing PostgreSQL and Redis, run when Redis answers too). tests/ runs a module per process on every
# core (pytest-xdist); the browser tests a module per process on E2E_WORKERS processes, each with its own
# Chromium and servers (on 2 cores, 2 took e2e from 7:22 to 5:18; E2E_WORKERS=1 runs them one at a time).
# The browser tests on PostgreSQL start their servers per test, so they are spread a test per process.
# Each run fails on any non-zero status of pytest, 5 (no tests collected) included.
E2E_WORKERS ?= 2
test: $(STAMP) chromium lint
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL $(BIN)/pytest tests -n auto --dist loadfile
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL $(BIN)/pytest e2e -n $(E2E_WORKERS) --dist loadfile
	@if $(BIN)/python -m tests.reachable "$(TEST_DATABASE_URL)"; then \
		if $(BIN)/python -m tests.reachable "$(TEST_REDIS_URL)"; then redis="$(TEST_REDIS_URL)"; \
		else echo "Redis is not reachable: the scale-out tests are skipped."; redis=; fi; \
		echo "Running the tests marked database again on PostgreSQL$${redis:+ and Redis}"; \
		TEST_DATABASE_URL="$(TEST_DATABASE_URL)" TEST_REDIS_URL="$$redis" $(BIN)/pytest tests -m database -n auto --dist loadfile && \
		TEST_DATABASE_URL="$(TEST_DATABASE_URL)" TEST_REDIS_URL="$$redis" $(BIN)/pytest e2e -m database -n $(E2E_WORKERS) --dist load; \
	else \
		echo "PostgreSQL is not reachable: skipped the PostgreSQL and scale-out run (set TEST_DATABASE_URL)."; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# One table: SQLite with one process, and PostgreSQL + Redis with two when they answer (several minutes);
# then honest traffic under attack (bench/abuse.py, about five minutes).
bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.herd
	$(BIN)/python bench/launcher.py
	$(BIN)/python bench/attachments.py
	$(BIN)/python -m bench.abuse
