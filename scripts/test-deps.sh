#!/usr/bin/env bash
# System packages the browser tests need (Debian's chromium; Playwright is pointed at it, no download).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "test-deps: installing chromium and fonts (apt)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi
