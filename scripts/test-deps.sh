#!/usr/bin/env bash
# What only the tests need: the `scale` extra (Ray, for tests/test_ray_build.py) and the system
# packages the browser tests need (Debian's chromium; Playwright is pointed at it, no download).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import ray.data" >/dev/null 2>&1; then
  echo "test-deps: installing the scale extra (ray[data])..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,scale]"
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "test-deps: installing chromium and fonts (apt)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi
