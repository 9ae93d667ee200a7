# The two commands a new user needs: `make run` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
PY := .venv/bin/python
SHARED ?= $(abspath ../shared)
# A real user points DEALSCOUT_CATALOGUE at their own catalogue; beside a checkout we use the shared one.
export DEALSCOUT_CATALOGUE ?= $(wildcard $(SHARED)/data/products.jsonl.gz)
export DEALSCOUT_REFERENCE ?= $(wildcard $(SHARED)/data/reference_test.jsonl.gz)
export DEALSCOUT_EXTRA_CATALOGUE ?= $(wildcard $(SHARED)/data/more_products.jsonl.gz)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
# Idle OpenMP threads spin by default, which makes torch ~3x slower on a busy 2-core machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run test setup artifacts specialist lint bench

setup:
	@bash scripts/setup.sh

artifacts: setup
	@$(PY) launch.py train all

run: artifacts
	$(PY) launch.py app

# The LoRA specialist (~25 min on 2 CPU cores); the ensemble is refitted to include it.
specialist: artifacts
	$(PY) launch.py train base
	$(PY) launch.py train specialist
	$(PY) launch.py train ensemble

test: setup
	@bash scripts/test-deps.sh
	$(PY) -m ruff check .
	.venv/bin/lint-imports
	DEALSCOUT_TEST_CATALOGUE=$(DEALSCOUT_CATALOGUE) \
	DEALSCOUT_TEST_FEEDS_DIR=$(wildcard $(SHARED)/data/feeds) \
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .
	.venv/bin/lint-imports

bench: artifacts
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/speed.py
