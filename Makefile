# The two commands a newcomer needs:  make run   and   make test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: run test check lint typecheck pytest bench system-deps clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

## Start the station on the embedded default (simulated scale and printer, no broker).
run: $(STAMP)
	$(BIN)/edge run

## Debian packages the tests talk to: mosquitto (a real broker) and chromium (a real browser).
system-deps:
	@missing=""; \
	[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing="$$missing mosquitto"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@# The central-ingest tests use the machine's PostgreSQL on 127.0.0.1:5432: start it if stopped.
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 \
	  && command -v pg_ctlcluster >/dev/null; then \
	  for v in $$(ls /etc/postgresql 2>/dev/null); do \
	    $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$v main start || true; done; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check edge tests bench rigs
	$(BIN)/ruff format --check edge tests bench rigs

typecheck: $(STAMP)
	$(BIN)/mypy

## The calendar pass: every Python process of the product believes it is this instant,
## its clock running on from there (local midnight, a month end and a year end pass while
## the suite runs). Set EDGE_TEST_CLOCK to repeat the pass at any other instant.
EDGE_TEST_CLOCK ?= $(shell date -u +%Y)-12-31T16:59:40Z

pytest: $(STAMP) system-deps
	env -u EDGE_TEST_CLOCK -u EDGE_TEST_CLOCK_ANCHOR $(BIN)/pytest
	@echo "== the suite again on the test clock: EDGE_TEST_CLOCK=$(EDGE_TEST_CLOCK)"
	env -u EDGE_TEST_CLOCK_ANCHOR EDGE_TEST_CLOCK=$(EDGE_TEST_CLOCK) $(BIN)/pytest

## Everything CI runs: install what is missing, lint, type-check, the whole suite.
test: system-deps $(STAMP) lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
