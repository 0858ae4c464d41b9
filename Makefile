# `make test` sets everything up from nothing: a venv with the pinned dependencies, then lint,
# type-check and tests. `make plan STACK=prod` checks a stack offline (OPENAPI=DIR also writes its
# OpenAPI documents); `make preview|up STACK=dev` wrap the Pulumi CLI for those who have it.

SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
# The function's runtime tests' Python 3.13 venv (see runtime-venv below).
RUNTIME_VENV := venv-runtime
STACK ?= dev
# The state of a stack lives here unless a backend is configured (PULUMI_BACKEND_URL or `pulumi login`).
LOCAL_BACKEND ?= file://$(CURDIR)/.pulumi

.PHONY: test lint typecheck unit runtime-venv plan bench require-pulumi preview up clean local verify local-check

test: lint typecheck unit

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt components/pyproject.toml pyproject.toml
	@echo "==> creating $(VENV) and installing pinned dependencies"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

lint: $(BIN)/.installed
	@echo "==> ruff"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	@echo "==> mypy"
	$(BIN)/mypy

unit: $(BIN)/.installed $(RUNTIME_VENV)/.installed
	@echo "==> pytest"
	$(BIN)/pytest

# The function's runtime tests run it under awslambdaric in Python 3.13, the deployed runtime's
# version, with moto's DynamoDB server: a second venv. RUNTIME_PYTHON=/path/to/python3.13 picks
# the interpreter; otherwise the first Python 3.13 found on PATH, under pyenv or in /usr.
RUNTIME_PYTHON ?=
FIND_PYTHON_313 = for candidate in $(RUNTIME_PYTHON) python3.13 \
		"$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
		"$$HOME"/.pyenv/versions/3.13*/bin/python3.13 \
		/usr/local/bin/python3.13 /usr/bin/python3.13; do \
		if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' \
			>/dev/null 2>&1; then echo "$$candidate"; exit 0; fi; \
	done; exit 1

$(RUNTIME_VENV)/.installed: requirements-runtime.txt constraints.txt
	@echo "==> creating $(RUNTIME_VENV) (Python 3.13, awslambdaric, moto's server) for the runtime tests"
	@python313=$$($(FIND_PYTHON_313)) || { \
		echo "error: the function's runtime tests need Python 3.13, the Lambda runtime's version," \
			"and none was found."; \
		echo "       Install it (pyenv install 3.13; apt-get install python3.13 on Debian 13 or" \
			"Ubuntu 24.04; or python.org) or pass RUNTIME_PYTHON=/path/to/python3.13."; \
		exit 1; }; \
	"$$python313" -m venv --clear $(RUNTIME_VENV) && \
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-runtime.txt -c constraints.txt
	@touch $@

runtime-venv: $(RUNTIME_VENV)/.installed

# The offline plan: resource tree, routing, rendered templates and preflight; exits 1 when the
# stack fails it, 2 on a wrong command line. OPENAPI=DIR also writes each REST API's OpenAPI
# document to DIR/<api>.json. The component's script: installed with it, and the venv is
# refreshed when components/pyproject.toml (which declares it) changes.
plan: $(BIN)/.installed
	@$(BIN)/versioned-lambda-api-plan --stack $(STACK) $(if $(OPENAPI),--openapi $(OPENAPI))

# The stack's API served on 127.0.0.1 as API Gateway would, the function in real Lambda runtime
# processes, DynamoDB in moto: `make local STACK=dev`. PORT= (default 8080; 0 any free port),
# LIVE_REF= (the git revision whose code a pinned live version runs; default HEAD), DATA=DIR
# (keep the tables' items there between runs), ARGS="--set canaryPercent=50 --set stableVersion=1".
local: $(BIN)/.installed $(RUNTIME_VENV)/.installed
	@$(BIN)/python -m local_api --stack $(STACK) $(if $(PORT),--port $(PORT)) \
		$(if $(LIVE_REF),--live-ref $(LIVE_REF)) $(if $(DATA),--data $(DATA)) $(ARGS)

# The release tool's pre-traffic check against a running `make local` (same STACK, PORT and the
# --set overrides in ARGS): `make local-check STACK=dev`.
local-check: $(BIN)/.installed
	@$(BIN)/python -m local_api.check --stack $(STACK) $(if $(PORT),--port $(PORT)) $(ARGS)

$(BIN)/.bench-installed: $(BIN)/.installed requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	@touch $@

# QUICK=1 runs the canary benchmark's quick mode (under a minute), written to bench/results/quick/
# (ignored by git) so it never overwrites the committed full-run results.
bench: $(BIN)/.bench-installed
	@$(BIN)/python bench/plan_speed.py
	@$(BIN)/python bench/canary_bench.py $(if $(QUICK),--quick)

# The release tool, e.g. `make release-status STACK=prod`, `make release-watch STACK=prod`;
# ARGS passes the command's options through (ARGS=--no-apply to only edit the stack file,
# ARGS="--format json" for status). `python -m` from this folder needs no install of the
# program's own project (`pip install -e .` gives the event-logger-release script elsewhere).
release-%: $(BIN)/.installed
	@$(BIN)/python -m release $* --stack $(STACK) $(ARGS)

# Use the configured backend (PULUMI_BACKEND_URL or `pulumi login`); otherwise keep state locally,
# so no Pulumi Cloud account is needed.
WITH_BACKEND = if [ -z "$$PULUMI_BACKEND_URL" ] && ! pulumi whoami >/dev/null 2>&1; then \
		echo "==> no Pulumi backend configured: keeping state in $(LOCAL_BACKEND)"; \
		mkdir -p .pulumi; export PULUMI_BACKEND_URL=$(LOCAL_BACKEND); \
	fi; pulumi stack select --create $(STACK) &&

require-pulumi:
	@command -v pulumi >/dev/null || { \
		echo "error: 'make $(MAKECMDGOALS)' needs the Pulumi CLI (https://www.pulumi.com/docs/install/)"; \
		echo "       and AWS credentials. Nothing was deployed. 'make test' needs neither."; \
		exit 1; }

# The preflight policy pack (policy/) runs on every preview and update: its own venv, which
# policy/PulumiPolicy.yaml names, pinned like ./venv. pip runs in policy/, where its
# requirements.txt finds the component as ../components.
policy/venv/.installed: policy/requirements.txt constraints.txt components/pyproject.toml
	@echo "==> creating policy/venv for the preflight policy pack"
	$(PYTHON) -m venv --clear policy/venv
	cd policy && venv/bin/python -m pip install --quiet --disable-pip-version-check \
		-r requirements.txt -c ../constraints.txt
	@touch $@

preview: require-pulumi $(BIN)/.installed policy/venv/.installed
	@$(WITH_BACKEND) pulumi preview --diff --stack $(STACK) --policy-pack policy

up: require-pulumi $(BIN)/.installed policy/venv/.installed
	@$(WITH_BACKEND) pulumi up --stack $(STACK) --policy-pack policy

# Deploys a throwaway copy of STACK (verify-<7 hex>) to the AWS account of your credentials,
# checks on it what no offline test can, prints a pass/fail report and destroys the copy, also
# after a failure or Ctrl-C (README, "What `make verify` checks on real AWS"). KEEP=1 leaves the
# copy deployed; REPORT=FILE also writes the report as JSON.
verify: require-pulumi $(BIN)/.installed
	@$(BIN)/python -m verify --stack $(STACK) $(if $(KEEP),--keep) $(if $(REPORT),--report $(REPORT))

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .mypy_cache .pytest_cache .ruff_cache policy/venv
