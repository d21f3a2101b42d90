#!/usr/bin/env bash
# One benchmark on every labelled real clip of ../shared/realdata (issue 12): per clip and per-set mean
# F1 ±1/±2/±3, AP@±3 and counts for the inflection and reference detectors (and the model when WORKDIR is
# set), default picking and leave-one-clip-out thresholds; protocol in ta2net_jax/evaluation/real_benchmark.py.
# Environment: WORKDIR (optional, a trained run), REALDATA (default ../shared/realdata), OUT (default
# runs/real_benchmark). Writes $OUT/results.json, $OUT/tables.md, $OUT/event_locations.png, $OUT/threshold_sweep.png
# (F1 ±3 with every threshold × 0.8–1.2) and the tables of docs/RESULTS.md §2.
set -euo pipefail
cd "$(dirname "$0")/.."
REALDATA=${REALDATA:-../shared/realdata}
OUT=${OUT:-runs/real_benchmark}
PY=${PYTHON:-.venv/bin/python}
args=(--realdata "$REALDATA" --out "$OUT" --results-md docs/RESULTS.md)
if [ -n "${WORKDIR:-}" ]; then
  [ -f "$WORKDIR/detector.json" ] || { echo "$WORKDIR/detector.json missing: run ta2net eval first"; exit 1; }
  args+=(--workdir "$WORKDIR")
fi
"$PY" -m ta2net_jax.cli real-benchmark "${args[@]}"
