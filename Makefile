# The two commands a newcomer needs:  make run   and   make test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)

.PHONY: run test check lint typecheck pytest bench system-deps clean deploy-deps deploy-test

$(STAMP): pyproject.toml
	@$(PY) -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

## Start the station on the embedded default (simulated scale and printer, no broker).
## Nobody can sign in on a new station: on a terminal, `make run` asks for the first lead.
run: $(STAMP)
	@if ! $(BIN)/edge users list --json | grep -q '"role"' && [ -t 0 ]; then \
	  echo "No one can sign in yet. The first lead (name, then a 4-8 digit PIN twice):"; \
	  read -r -p "Name: " name && $(BIN)/edge users add "$$name" --role lead; \
	fi
	$(BIN)/edge run

## Debian packages the tests talk to: mosquitto (a real broker) and chromium (a real browser);
## ansible-core checks deploy/ansible (syntax, the role's templates rendered by Ansible).
system-deps:
	@missing=""; \
	[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing="$$missing mosquitto"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/ansible-playbook ] || missing="$$missing ansible-core"; \
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

## Both passes run at once (each waits on brokers, browsers and clocks more than it
## computes): each writes its own log and temporary folder, printed when both have ended.
pytest: $(STAMP) system-deps
	@runs=$$(mktemp -d /tmp/edge-test.XXXXXX); \
	echo "== the suite twice at once: on the real clock, and on the test clock EDGE_TEST_CLOCK=$(EDGE_TEST_CLOCK) ($$runs)"; \
	env -u EDGE_TEST_CLOCK -u EDGE_TEST_CLOCK_ANCHOR EDGE_TEST_PASS=real $(BIN)/pytest -p no:cacheprovider \
	  --durations=8 --basetemp=$$runs/real > $$runs/real.log 2>&1 & real=$$!; \
	env -u EDGE_TEST_CLOCK_ANCHOR EDGE_TEST_CLOCK=$(EDGE_TEST_CLOCK) $(BIN)/pytest -p no:cacheprovider \
	  --durations=8 --basetemp=$$runs/clock > $$runs/clock.log 2>&1 & clock=$$!; \
	wait $$real; r=$$?; wait $$clock; c=$$?; \
	echo "== the real clock (exit $$r)"; cat $$runs/real.log; \
	echo "== the test clock EDGE_TEST_CLOCK=$(EDGE_TEST_CLOCK) (exit $$c)"; cat $$runs/clock.log; \
	rm -rf $$runs/real $$runs/clock; [ $$r = 0 ] && [ $$c = 0 ]

## Everything CI runs: install what is missing, lint, type-check, the whole suite.
test: system-deps $(STAMP) lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m bench

## The deployment on a real Debian bookworm root (docs/deploy.md, "Testing the deployment"):
## debootstrap (cached in /var/cache/edge-deploy), the station playbook through Ansible's
## chroot connection, the root booted with systemd-nspawn, an arm64 root under qemu,
## ansible-lint. Not part of `make test` (it takes longer than the suite's 20 minutes allow).
DEPLOY_APT := debootstrap ansible ansible-lint systemd-container qemu-user-static binfmt-support
deploy-deps: $(STAMP)
	@missing=""; for p in $(DEPLOY_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@# arm64 binaries run under qemu through binfmt_misc, which no systemd mounts and fills here
	@[ -e /proc/sys/fs/binfmt_misc/register ] || $(SUDO) mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
	  || echo "binfmt_misc cannot be mounted here: the arm64 root will be reported as not run"
	@[ ! -e /proc/sys/fs/binfmt_misc/register ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
	  || $(SUDO) update-binfmts --enable qemu-aarch64 || $(SUDO) /lib/systemd/systemd-binfmt qemu-aarch64-static.conf \
	  || echo "qemu-aarch64 could not be registered: the arm64 root will be reported as not run"

DEPLOY_TMP ?= /tmp/edge-deploy-test
deploy-test: deploy-deps
	$(BIN)/ruff check deploy/test && $(BIN)/mypy --strict deploy/test
	$(BIN)/python -m pytest deploy/test -p no:cacheprovider -v -s --timeout=5400 --basetemp=$(DEPLOY_TMP)

## Issue 17's CNN trial (experiments/grading_cnn/README.md): a small network trained from
## scratch on DATA/<product>/<grade>/ photos in a venv of its own (torch CPU; never in the
## project's venv), scored on the group-aware folds, exported to ONNX in /tmp (never in the
## repository), set beside the classical path's figures on the same folds, and timed through
## cv2.dnn with the project's venv.
.PHONY: grading-cnn-trial
grading-cnn-trial: DATA ?= ../shared/data/grading-dev
grading-cnn-trial: CNN_VENV ?= /tmp/cnn-venv
grading-cnn-trial: $(STAMP)
	@[ -x $(CNN_VENV)/bin/python ] && $(CNN_VENV)/bin/python -c 'import torch, onnx, pydantic' 2>/dev/null \
	  || { $(PY) -m venv $(CNN_VENV) && $(CNN_VENV)/bin/pip install -q torch==2.13.0 numpy \
	       opencv-python-headless==5.0.0.93 onnx pydantic==2.14.3; }
	nice -n 10 $(CNN_VENV)/bin/python experiments/grading_cnn/trial.py run $(DATA)
	nice -n 10 $(BIN)/python experiments/grading_cnn/trial.py classical $(DATA)
	$(BIN)/python experiments/grading_cnn/trial.py time $(DATA)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
