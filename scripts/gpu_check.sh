#!/usr/bin/env bash
# The GPU check: run from the root of a copy of the repo on the GPU machine (Python 3.12 with jax 0.11.2,
# flax 0.12.10, optax, orbax, absl-py, PyYAML; no grain, TFDS or ml_collections).
#
#   bash scripts/gpu_check.sh          # results in $OUT (default /tmp/gpu_check): info.json, results.jsonl
#
# CONFIG (default configs/audible623.py) and BENCH_ARGS (extra benchmark flags, e.g. "--steps 1 --warmup 0")
# exist for dry runs elsewhere: CONFIG=configs/audible623.py:smoke BENCH_ARGS="--steps 1 --warmup 0".
#
# Carry the git-ignored `.whl/` folder with it (ml_collections, which the configs need), made on the
# development machine with:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl ml_collections==1.1.0
# It prints the device, the paper model's size and FLOPs (`ta2net info`), then times the training step
# (benchmarks/train_step.py) for the paper config: bf16 at B = 4 and 16, fp32 at B = 4. A failing step
# does not stop the later ones; the exit status is that of the last failure.
set -x -o pipefail
OUT=${OUT:-/tmp/gpu_check}
CONFIG=${CONFIG:-configs/audible623.py}
mkdir -p "$OUT"
status=0

export PYTHONPATH=$PWD
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi

nvidia-smi
python3 -c 'import jax, flax; print("jax", jax.__version__, "flax", flax.__version__, jax.devices())' || status=$?

python3 -m ta2net_jax.cli info --config "$CONFIG" | tee "$OUT/info.json" || status=$?

# shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
python3 benchmarks/train_step.py --config "$CONFIG" --dtype bfloat16 --batch 4 16 --out "$OUT/results.jsonl" \
  $BENCH_ARGS || status=$?
# shellcheck disable=SC2086
python3 benchmarks/train_step.py --config "$CONFIG" --dtype float32 --batch 4 --out "$OUT/results.jsonl" \
  $BENCH_ARGS || status=$?

cat "$OUT/results.jsonl"
exit $status
