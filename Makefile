# TOEFL 2026 exam backend. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find protos -name '*.proto')
GEN := gen
GEN_STAMP := $(GEN)/.stamp
PROJECT_STAMP := $(VENV)/.project

.DEFAULT_GOAL := help
WEB_NODE := web/node_modules/.package-lock.json
WEB_API := web/src/api/schema.d.ts
WEB_DIST := web/dist/index.html
WEB_SRC := $(shell find web/src web/public web/index.html web/docs.html web/vite.config.ts web/tsconfig.json web/scripts -type f 2>/dev/null | grep -v schema.d.ts)

.PHONY: help venv protos item-bank web run test test-slow test-images lint unit bench validate recovery rescore item-stats calibrate drift deploy clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -r requirements-dev.lock
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment and install the locked dependencies

$(GEN_STAMP): $(STAMP) $(PROTO_FILES) tools/gen_protos.py
	rm -rf $(GEN)
	$(PY) tools/gen_protos.py --out $(GEN) --stubs
	touch $(GEN_STAMP)

# The project goes into the venv in editable mode, after gen/ exists: pyproject.toml maps the generated `toefl`
# package to gen/toefl, so it and the repo's packages import from any folder. --no-build-isolation builds with
# the venv's own setuptools (grpcio-tools requires it), so this step needs no download.
$(PROJECT_STAMP): $(GEN_STAMP) pyproject.toml
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(PROJECT_STAMP)

protos: $(PROJECT_STAMP) ## Generate gen/ from protos/ (never edit gen/ by hand), install the project into the venv

item-bank: protos ## Build the demo item bank (item_service/item_bank.db) if missing, else bring its schema up to date
	@if [ -f item_service/item_bank.db ]; then $(PY) -m item_service check >/dev/null 2>&1 || $(PY) -m item_service migrate; \
	else $(PY) -m item_service build-demo-bank --seed 2026; fi

# The web client (web/, TypeScript): its npm packages exactly as package-lock.json pins them, its API types made
# from the document the gateway serves (so a proto change that breaks the client breaks its build), then the build.
$(WEB_NODE): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_NODE)

$(WEB_API): $(WEB_NODE) $(PROJECT_STAMP) $(wildcard gateway/*.py)
	$(PY) -m gateway --write-openapi web/openapi.json --log-level WARNING
	cd web && npm run --silent gen

$(WEB_DIST): $(WEB_API) $(WEB_SRC)
	cd web && npm run --silent build

web: $(WEB_DIST) ## Build the web client (web/dist, served by the gateway at /) when missing or stale

run: item-bank web ## Set everything up and start the services (Ctrl-C stops them)
	$(PY) -m toefl_core.devrun

lint: protos $(WEB_API) ## ruff, mypy and the import contracts (lint-imports); the web client's ESLint and tsc
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	cd web && npm run --silent lint && npm run --silent typecheck

unit: protos web ## pytest only (the browser tests drive the built web client)
	$(VENV)/bin/pytest

test: lint unit ## Lint, type-check and run the whole test suite

test-slow: protos ## The long fault tests too (more kill -9 runs, a lock beyond the busy timeout), schemathesis's long run, calibration at scale
	$(VENV)/bin/pytest tests/faults --runslow -q
	$(VENV)/bin/pytest tests/scoring_jobs -m slow --runslow -q -s
	$(VENV)/bin/pytest tests/fuzz/test_schemathesis.py -k slow --runslow -q -s

# Podman as root (no Docker engine, no registry): a Debian base made by debootstrap, the three images and a
# PostgreSQL one built, the compose stack run on SQLite then on the postgres profile, `make deploy` while students
# answer. tests/images/; .ci/run runs it. Prints its time: CI's budget for it is 10 of CI's 90 minutes.
test-images: item-bank ## Build the images with podman, run the compose stack, `make deploy` mid-exam
	@start=$$SECONDS; status=0; TOEFL_IMAGES_TEST=1 $(VENV)/bin/pytest tests/images -q -s --durations=8 || status=$$?; \
		echo "test-images: $$((SECONDS - start)) s (budget 600 s)"; exit $$status

bench: protos ## Benchmarks, printed as ratios against references measured in the same run
	$(PY) -m bench

validate: protos ## Psychometric validation: 2,000 simulees, adaptive vs linear, ideal and realistic (docs/VALIDATION.md)
	$(PY) -m validation --simulees 2000 --markdown docs/VALIDATION.md

recovery: protos ## Calibration parameter recovery at 500, 1,000 and 2,000 responses, seeds 1-3 and 1-20 pooled (docs/)
	$(PY) -m validation.recovery --svg docs/calibration-recovery-b.svg --more-seeds 2 3 --pool 20

rescore: protos ## Re-score finished sessions after a recalibration (ARGS="--since 2026-01-01 --dry-run")
	$(PY) -m scoring_jobs rescore $(ARGS)

item-stats: protos ## Compute item statistics from responses and write them to the item bank (ARGS="--dry-run")
	$(PY) -m scoring_jobs item-stats $(ARGS)

calibrate: protos ## Calibrate PRETEST items from responses, propose their parameters for review (ARGS="--dry-run")
	$(PY) -m scoring_jobs calibrate $(ARGS)

drift: protos ## Report ACTIVE items whose re-estimated difficulty moved (ARGS="--threshold 0.5"); writes nothing
	$(PY) -m scoring_jobs drift $(ARGS)

COMPOSE ?= docker compose

# The bank is checked (integrity, owner mark, migrations at head), backed up and sealed before anything ships;
# then only item_service is rebuilt and recreated: --no-deps leaves session_service, the gateway and the
# toefl_db_data volume alone. Sealing folds a WAL into the file and leaves it in rollback-journal mode: a bank
# last written by `import`, `migrate` or a writable server is in WAL mode, and the image's read-only item_service
# cannot open such a file (found by tests/images: "attempt to write a readonly database" at start, in a loop).
deploy: protos ## Check, back up and seal the bank, then rebuild and recreate the item_service container only
	$(PY) -m item_service check
	$(PY) -m item_service backup
	$(PY) -c 'from pathlib import Path; from item_service.storage import seal_for_shipping; \
		seal_for_shipping(Path("item_service/item_bank.db"))'
	$(COMPOSE) build item_service
	$(COMPOSE) up -d --no-deps --force-recreate item_service

clean: ## Remove the venv, generated code and caches (never the databases)
	rm -rf $(VENV) $(GEN) .mypy_cache .ruff_cache .pytest_cache
