# Two commands do everything on a fresh Debian machine (see README.md):
#   make run    serve the console at http://127.0.0.1:8000 (embedded default: no services)
#   make test   install what the tests need (PostgreSQL, Redis, Chromium, JDK jars) and run them all
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# The test suite's services (installed and started by scripts/test-services.sh when missing).
TEST_DATABASE_URL ?= postgres://mdm:mdm@127.0.0.1:5432/mdm
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# Test-only keys (FIELD_ENCRYPTION_KEY is required outside the embedded default).
TEST_SECRET_KEY ?= test-only-secret-key-not-for-production-0123456789abcdef
TEST_FIELD_ENCRYPTION_KEY ?= dGVzdC1vbmx5LWZpZWxkLWtleS1ub3QtZm9yLXByb2Q=
PYTEST_ARGS ?=

.PHONY: run test install system-deps agent uploader uploader-check axe workflow-lint bench fuzz faults lint clean help

help:
	@echo "make run | make test | make bench | make fuzz | make faults | make clean"

$(VENV)/.installed: requirements.txt requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Python 3.11 with venv is needed (apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

install: $(VENV)/.installed

run: install
	@PY=$(PY) HOST=$(HOST) PORT=$(PORT) bash scripts/run.sh

system-deps:
	bash scripts/test-services.sh

agent: system-deps
	$(MAKE) -C android-agent build

# The APK uploader (apks/uploader, React): its bundle static/apks/uploader.js is committed.
# `make uploader` rebuilds it after a change to the source; `make uploader-check` (in make test)
# fails when the committed bundle is not what the source builds. See docs/apks-uploader.md.
uploader: system-deps
	bash scripts/uploader.sh build

uploader-check: system-deps
	bash scripts/uploader.sh check

# axe-core (pinned in tests/axe/package-lock.json) for the console's accessibility test, installed
# into tests/axe/node_modules; nothing runs when that version is already there.
axe: system-deps
	bash scripts/axe.sh

# The GitHub workflows linted by actionlint (pinned in requirements.txt), first in make test: a
# broken workflow fails it. Its shellcheck and pyflakes checks are off, so that the verdict does not
# depend on whether a machine happens to have them. WORKFLOW_FILES=... lints other files.
WORKFLOW_FILES ?= $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)
workflow-lint: install
	$(VENV)/bin/actionlint -shellcheck= -pyflakes= $(WORKFLOW_FILES)

# The agent core's JUnit suite first, then pytest (which also runs the headless agent end to end
# against a live server); pytest's summary is the last line.
test: install workflow-lint system-deps agent uploader-check axe
	$(MAKE) -C android-agent test
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=$(TEST_SECRET_KEY) \
	  FIELD_ENCRYPTION_KEY=$(TEST_FIELD_ENCRYPTION_KEY) $(VENV)/bin/pytest $(PYTEST_ARGS)

# The benchmark suite (never part of make test): production-like set-up on this machine, plus the
# dev tools it drives the server with (bench/run.py sets DEV_TOOLS=1: loadtest/).
bench: install system-deps agent
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	$(PY) bench/run.py $(BENCH_ARGS)

# Fuzzing beyond the suite (never part of make test, which runs a seeded pass of 200 cases per
# surface): hypothesis over every device endpoint and schemathesis over the OpenAPI schema, at
# FUZZ_EXAMPLES cases per surface, then a summary (cases, statuses seen, failures). FUZZ_SEED varies it.
FUZZ_EXAMPLES ?= 10000
FUZZ_SEED ?= 14
fuzz: install system-deps
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	  SECRET_KEY=$(TEST_SECRET_KEY) FIELD_ENCRYPTION_KEY=$(TEST_FIELD_ENCRYPTION_KEY) $(VENV)/bin/pytest tests/fuzz $(PYTEST_ARGS)

# The fault tests (in make test too) at the issue's full length: FCM refusing pushes for a minute.
FAULT_FCM_OUTAGE_S ?= 60
faults: install system-deps
	FAULT_FCM_OUTAGE_S=$(FAULT_FCM_OUTAGE_S) DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	  SECRET_KEY=$(TEST_SECRET_KEY) FIELD_ENCRYPTION_KEY=$(TEST_FIELD_ENCRYPTION_KEY) $(VENV)/bin/pytest tests/faults $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache apks/uploader/node_modules tests/axe/node_modules
	$(MAKE) -C android-agent clean || true
