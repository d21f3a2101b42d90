#!/usr/bin/env bash
# Creates .venv-beam: Python >= 3.12 + apache-beam and the project's video libraries (requirements-beam.txt),
# used by `ta2net prepare|build --runner beam` (input_pipeline/beam_runner.py runs the pipeline in it) and
# tests/test_beam.py. Idempotent; prints the interpreter's path. Beam pins numpy<2.5, protobuf<7 and
# pyarrow<26, older than requirements.txt, hence its own environment (docs/scaling.md §6). The project is
# not installed in it: the runner puts the repo on PYTHONPATH (the per-video code needs no TFDS or JAX).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-beam
STAMP=$VENV/.installed
if [ -f "$STAMP" ] && [ "$STAMP" -nt requirements-beam.txt ]; then
  echo "$VENV/bin/python"; exit 0
fi
py=$(scripts/find_python.sh)
rm -rf "$VENV"
"$py" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r requirements-beam.txt >&2
touch "$STAMP"
echo "$VENV/bin/python"
