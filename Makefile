# Two commands on a fresh Debian/Ubuntu machine:  make demo  |  make test
# Every step is idempotent: stamps and dpkg checks skip what is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_RUNTIME := fluidsynth libjemalloc2  # the drum soundfont is the repository's own (assets/soundfont/)
APT_TEST := chromium
PYTEST_ARGS ?=

.PHONY: demo test setup setup-test apt apt-test lint bench bench-app load-test train-models clean

demo: setup
	MALLOC_ARENA_MAX=2 $(BIN)/streamlit run streamlit_app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: setup-test
	$(BIN)/ruff check musicvae tests streamlit_app.py scripts
	$(BIN)/pytest -q $(PYTEST_ARGS)

setup: apt $(VENV)/.stamp-runtime
setup-test: apt apt-test $(VENV)/.stamp-test

apt:
	@missing=""; for p in $(APT_RUNTIME); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

apt-test:
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-runtime: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt  # = -e . (the package, dependencies from pyproject.toml)
	touch $@

$(VENV)/.stamp-test: requirements-test.txt $(VENV)/.stamp-runtime
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

lint: setup-test
	$(BIN)/ruff check musicvae tests streamlit_app.py scripts

bench: setup
	$(BIN)/musicvae bench

bench-app: setup-test
	$(BIN)/python scripts/bench_app.py

load-test: setup-test
	$(BIN)/python scripts/load_test.py --contexts 8 --minutes 2

train-models: setup
	scripts/train_models.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
