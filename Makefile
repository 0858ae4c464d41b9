# `make test` sets everything up from nothing: a venv with the pinned dependencies, then lint,
# type-check and tests. `make preview|up STACK=dev` wrap the Pulumi CLI for those who have it.

SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
STACK ?= dev
# The state of a stack lives here unless a backend is configured (PULUMI_BACKEND_URL or `pulumi login`).
LOCAL_BACKEND ?= file://$(CURDIR)/.pulumi

.PHONY: test lint typecheck unit preview up clean

test: lint typecheck unit

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
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

unit: $(BIN)/.installed
	@echo "==> pytest"
	$(BIN)/pytest

define pulumi_cli
	@command -v pulumi >/dev/null || { \
		echo "error: 'make $@' needs the Pulumi CLI (https://www.pulumi.com/docs/install/) and AWS credentials."; \
		echo "       Nothing was deployed. 'make test' works without either."; \
		exit 1; }
	@if [ -z "$$PULUMI_BACKEND_URL" ] && ! pulumi whoami >/dev/null 2>&1; then \
		echo "==> no Pulumi backend configured: using the local file backend $(LOCAL_BACKEND)"; \
		mkdir -p .pulumi; \
	fi; \
	backend=$${PULUMI_BACKEND_URL:-$$(pulumi whoami >/dev/null 2>&1 || echo $(LOCAL_BACKEND))}; \
	export PULUMI_BACKEND_URL=$$backend; \
	pulumi stack select --create $(STACK) && pulumi $(1) --stack $(STACK)
endef

preview: $(BIN)/.installed
	$(call pulumi_cli,preview --diff)

up: $(BIN)/.installed
	$(call pulumi_cli,up)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
