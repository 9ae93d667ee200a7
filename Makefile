# The two commands a new user needs: `make run` and `make test`. Everything else is a step of theirs.
SHELL := /bin/bash
PY := .venv/bin/python
SHARED ?= $(abspath ../shared)
# A real user points DEALSCOUT_CATALOGUE at their own catalogue; beside a checkout we use the shared one.
export DEALSCOUT_CATALOGUE ?= $(wildcard $(SHARED)/data/products.jsonl.gz)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test setup artifacts lint bench

setup:
	@bash scripts/setup.sh

artifacts: setup
	@$(PY) launch.py train all

run: artifacts
	$(PY) launch.py app

test: setup
	@bash scripts/test-deps.sh
	DEALSCOUT_TEST_CATALOGUE=$(DEALSCOUT_CATALOGUE) \
	DEALSCOUT_TEST_FEEDS_DIR=$(wildcard $(SHARED)/data/feeds) \
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .

bench: artifacts
	$(PY) benchmarks/accuracy.py
	$(PY) benchmarks/speed.py
