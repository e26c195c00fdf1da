# The two commands: `make run` (server with demo data on SQLite) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HOST PORT

.PHONY: run serve test lint chromium bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/persistent-chat db upgrade
	$(BIN)/persistent-chat demo
	$(BIN)/persistent-chat serve

serve: $(STAMP)
	$(BIN)/persistent-chat db upgrade
	$(BIN)/persistent-chat serve

# Playwright's own browser download is not used: tests drive the system's Chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || { \
		echo "Installing Chromium from the system's packages"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) chromium lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python bench/lifecycle.py
	$(BIN)/python bench/sockets.py
	$(BIN)/python bench/launcher.py
