#!/usr/bin/env bash
# Creates .venv-onnx: Python >= 3.12 + jax2onnx + onnxruntime (requirements-onnx.txt), used by
# `ta2net export --format onnx` and its round-trip test. Idempotent; prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-onnx
STAMP=$VENV/.installed
if [ -f "$STAMP" ] && [ "$STAMP" -nt requirements-onnx.txt ]; then
  echo "$VENV/bin/python"; exit 0
fi
py=$(scripts/find_python.sh)
rm -rf "$VENV"
"$py" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r requirements-onnx.txt >&2
touch "$STAMP"
echo "$VENV/bin/python"
