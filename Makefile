# happyhorse — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# The base package alone (server, synthetic engine, SDK, CLI): what `make run` needs, no torch.
BASE_STAMP := $(VENV)/.base-stamp
# torch's CPU build lies on this machine's disk; pinning it keeps pip from fetching a CUDA build.
TORCH ?= torch==2.13.0
# Without an NVIDIA GPU (no nvidia-smi), PyTorch's CPU index is added: its `2.13.0+cpu` outranks PyPI's
# CUDA build (about 2.5 GB more) for the same pin. With a GPU, install your CUDA build first (README).
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,https://download.pytorch.org/whl/cpu)

.PHONY: install run test test-fast lint typecheck pytest services browser bench clean sync-client

install: $(STAMP)

# Everything (real-model engine and test tools too): a superset of the base install, in the same .venv.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --retries 1 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e ".[diffusers,fp8,test]" "$(TORCH)"
	touch $(BASE_STAMP) $(STAMP)

# uv fetches and installs the base's wheels in parallel: a fresh clone is serving in about half of pip's time.
$(BASE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-compile uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e .
	touch $(BASE_STAMP)

browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

services:
	@bash scripts/ensure-services.sh

run: $(BASE_STAMP)
	$(BIN)/happyhorse serve

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/unasync_client.py --check

# The SDK's sync client is generated from the async one (one definition of every call).
sync-client: install
	$(BIN)/python scripts/unasync_client.py

typecheck: install
	$(BIN)/mypy

pytest: install browser services
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q --durations=30

test: lint typecheck pytest

# The quick loop: no browser, no distributed cluster, no diffusers pipelines (CI runs `make test`).
test-fast: install services
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -x --ignore=tests/dashboard --ignore=tests/distributed \
		--ignore=tests/engines/diffusers --ignore=tests/packaging --ignore-glob='tests/e2e/test_diffusers*' \
		--ignore=tests/compat -k "not distributed"

bench: install services
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python benchmarks/render_bench.py
	$(BIN)/python benchmarks/server_bench.py
	$(BIN)/python benchmarks/api_bench.py
	$(BIN)/python benchmarks/events_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
