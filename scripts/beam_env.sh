#!/usr/bin/env bash
# Creates .venv-beam: Python >= 3.12 + apache-beam and the project's video libraries (requirements-beam.txt),
# used by `ta2net prepare|build --runner beam` (input_pipeline/beam_runner.py runs the pipeline in it) and
# tests/test_beam.py. Idempotent; prints the interpreter's path. Beam pins numpy<2.5, protobuf<7 and
# pyarrow<26, older than requirements.txt, hence its own environment (docs/scaling.md §6). The project is
# not installed in it: the runner puts the repo on PYTHONPATH (the per-video code needs no TFDS or JAX).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env_lib.sh
env_ready .venv-beam requirements-beam.txt
env_create .venv-beam requirements-beam.txt "$(scripts/find_python.sh)"
