# Ratatouille — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
APP_PORT ?= 8501
DAGSTER_PORT ?= 3000
DAGSTER_GRPC_PORT ?= 4266
JUPYTER_PORT ?= 8888
UPLOADS_PORT ?= 8502

.DEFAULT_GOAL := help
.PHONY: help install ray-env run run-s3 test lint fmt bench-ingest bench-query bench-pipeline bench-promote \
  reliability scale clean jupyter-ext upload-component

help: ## Show this menu
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed ## Create .venv with the pinned requirements and the repo

# The distributed engine (Daft on Ray) needs pyarrow<26, the product pins 26: its own venv, as a
# real cluster has its own image. Tests and `make scale` start a local cluster from it.
VENV_RAY := .venv-ray

$(VENV_RAY)/.installed: requirements-ray.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV_RAY)
	$(VENV_RAY)/bin/pip install --quiet -r requirements-ray.txt
	@touch $@

ray-env: $(VENV_RAY)/.installed ## Create .venv-ray: Daft and Ray for the local cluster (tests, make scale)

run: $(VENV)/.installed ## Run the product on its embedded defaults (app :8501, Dagster :3000, Jupyter :8888, uploads :8502; with an app password, behind nginx's login gate)
	$(BIN)/ratatouille doctor
	$(BIN)/ratatouille migrate
	$(BIN)/ratatouille demo
	$(BIN)/python -m pipelines.launch --host $(HOST) --app-port $(APP_PORT) \
	  --dagster-port $(DAGSTER_PORT) --grpc-port $(DAGSTER_GRPC_PORT) --jupyter-port $(JUPYTER_PORT) \
	  --uploads-port $(UPLOADS_PORT)

run-s3: $(VENV)/.installed-dev ## Like run, on a local S3 server (SeaweedFS) instead of a folder
	$(BIN)/python -m pipelines.launch --s3 --host $(HOST) --app-port $(APP_PORT) \
	  --dagster-port $(DAGSTER_PORT) --grpc-port $(DAGSTER_GRPC_PORT) --jupyter-port $(JUPYTER_PORT) \
	  --uploads-port $(UPLOADS_PORT)

lint: $(VENV)/.installed-dev ## ruff, mypy (strict on lakehouse/), import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lakehouse pipelines streamlit_app jupyter_ratatouille tests benchmarks devtools
	$(BIN)/lint-imports

jupyter-ext: $(VENV)/.installed ## Rebuild JupyterLab's "Promote to pipeline" extension from jupyter_ratatouille/js (needs npm)
	$(BIN)/python -m jupyter_ratatouille.build

upload-component: $(VENV)/.installed ## Rebuild the Upload page's resumable uploader (Uppy over tus) from its frontend/ (needs npm)
	$(BIN)/python -m streamlit_app.components.resumable_upload.build

# Browser tests drive Debian's Chromium; Playwright never downloads a browser here.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# Debian's nginx: the login gate in front of the app when it has a password (make run, tests).
NGINX := /usr/sbin/nginx

$(NGINX):
	$(SUDO) apt-get install -y -q nginx || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }

test: lint $(CHROMIUM) $(NGINX) $(VENV_RAY)/.installed ## Install dev tools, Chromium, nginx and .venv-ray, run every check and test (what CI runs)
	$(BIN)/pytest

fmt: $(VENV)/.installed-dev ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-ingest: $(VENV)/.installed-dev ## Benchmark ingest of TPC-H SF1 lineitem vs raw DuckDB and pandas
	$(BIN)/python -m benchmarks.bench_ingest

bench-query: $(VENV)/.installed-dev ## Benchmark untrusted SQL on TPC-H SF1 vs raw DuckDB, local and S3
	$(BIN)/python -m benchmarks.bench_query

bench-pipeline: $(VENV)/.installed-dev ## Benchmark the silver asset vs raw DuckDB, landing → gold, and upload → silver / gold
	$(BIN)/python -m benchmarks.bench_pipeline
	$(BIN)/python -m benchmarks.bench_fresh

bench-promote: $(VENV)/.installed-dev ## Benchmark promote → gold queryable on a running Dagster (median of 3)
	$(BIN)/python -m benchmarks.bench_promote

# The same suites run in `make test` at CI size; these are the full-size runs with their reports.
RELIABILITY_LOAD_S ?= 300
SF ?= 10

reliability: $(VENV)/.installed-dev $(VENV_RAY)/.installed $(CHROMIUM) $(NGINX) ## Faults, 5-minute concurrent load, hostile inputs, the security suite; prints what held
	RELIABILITY_LOAD_S=$(RELIABILITY_LOAD_S) $(BIN)/pytest tests/reliability tests/security -p no:cacheprovider

scale: $(VENV)/.installed-dev $(VENV_RAY)/.installed ## TPC-H SF10 (SF=…) landing → bronze → silver → gold, queries by DuckDB and by Daft on Ray, local and S3
	$(BIN)/python -m benchmarks.scale --sf $(SF)

clean: ## Remove the venv and caches (the lake stays)
	rm -rf $(VENV) $(VENV_RAY) .mypy_cache .ruff_cache .pytest_cache
