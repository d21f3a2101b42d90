#!/usr/bin/env bash
# Creates .venv-onnx: Python >= 3.12 + jax2onnx + onnxruntime (requirements-onnx.txt), used by
# `ta2net export --format onnx` and its round-trip test. Idempotent; prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env_lib.sh
env_ready .venv-onnx requirements-onnx.txt
env_create .venv-onnx requirements-onnx.txt "$(scripts/find_python.sh)"
