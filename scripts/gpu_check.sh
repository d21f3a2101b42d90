#!/usr/bin/env bash
# The GPU check: run from the root of a copy of the repo on the GPU machine (Python 3.12 with jax ≥ 0.11.2,
# flax ≥ 0.12.10, optax, orbax, absl-py, PyYAML, OpenCV headless; no grain, TFDS, PyAV or ml_collections).
#
#   bash scripts/gpu_check.sh [flow] [tvl1] [step]   # flow and step when none is named; results in $OUT
#                                                    # (default /tmp/gpu_check)
#
# flow (issue 16; ≈ 2 min on an H200 before compaction became the default, not timed since; mostly
#   compilation): input_pipeline/flow_jax.py's TV-L1 on the GPU with
#   estimate_flow_batch's accelerator defaults (compaction 5, up to 1,024 pairs per call at 112²): first
#   pairs/s at 112² with 1,024 and 2,048 flow fields per call (the target: ≥ 2,000 pairs/s), on the
#   8 videos tiled (a cut every 32 pairs), the same videos packed (estimate_flow_videos: no pair across a cut)
#   and one long video, with 1 and 6 primal-dual steps per read of
#   the inner loop's predicate (FLOW_STEPS, tvl1_flow's steps_per_check); then EPE against the synthetic generator's
#   exact flow at 64 and 112 px (the same 8 pairs as the CPU table of benchmarks/RESULTS.md, beside DIS and
#   Farnebäck on the machine's CPU) → $OUT/flow.jsonl.
# tvl1 (≈ 1 min before the compaction rows were added, not timed since): where tvl1-jax's time goes
#   (benchmarks/tvl1_profile.py): OpenCV's stopping with compaction 5 and 1, 3 and 6 steps per predicate
#   read (TVL1_STEPS) vs the full schedule at 1,024 pairs per call (compaction 0 and 3, and 128 pairs per call,
#   were measured on 2026-12-04), 32 pairs one per call, the cost of one primal-dual step / median / warp
#   against the step's memory roofline, and a trace of one call → $OUT/tvl1.jsonl, $OUT/tvl1_trace.tgz.
# step (≈ 5 min): the model's size and FLOPs (`ta2net info`), then the paper config's training step
#   (benchmarks/train_step.py) in bf16 at B = 16 and 4 with the profile of benchmarks/step_profile.py
#   (inputs / trunks / heads / optimizer, trunk-bound clips/s) and a jax.profiler trace of the B = 16 row
#   → $OUT/info.json, $OUT/results.jsonl, $OUT/trace/ (tar it to bring it back: $OUT keeps 2 folder levels).
# Measured 2026-12-04 on an H200 (benchmarks/RESULTS.md): flow + step in one call took 7 min (before the flow
# defaults changed); tvl1 1 min (before compaction rows were added).
#
# CONFIG (default configs/audible623.py), BENCH_ARGS (extra train_step flags), FLOW_ARGS (extra
# flow_estimators flags) and TVL1_ARGS (extra tvl1_profile flags, later ones win) exist for dry runs elsewhere:
#   CONFIG=configs/audible623.py:smoke BENCH_ARGS="--steps 1 --warmup 0" FLOW_SIZES="32" FLOW_THROUGHPUT="4" \
#     TVL1_ARGS="--size 32 --pairs 8 --repeats 1 --op-calls 2 --alone 2" bash scripts/gpu_check.sh flow tvl1 step
#
# Carry the git-ignored `.whl/` folder with it (ml_collections, which the configs need), made on the
# development machine by `bash scripts/gpu_wheels.sh` (scripts/gpu_env.sh installs it there).
# A failing benchmark does not stop the later ones; the exit status is that of the last failure.
set -x -o pipefail
OUT=${OUT:-/tmp/gpu_check}
CONFIG=${CONFIG:-configs/audible623.py}
FLOW_SIZES=${FLOW_SIZES:-64 112}
FLOW_THROUGHPUT=${FLOW_THROUGHPUT:-1024 2048}
FLOW_STEPS=${FLOW_STEPS:-1 6}    # tvl1_flow's steps_per_check for the throughput rows
TVL1_STEPS=${TVL1_STEPS:-1 3 6}  # and for tvl1_profile's rows
PHASES=${*:-flow step}
mkdir -p "$OUT"
status=0

# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh

nvidia-smi
python3 -c 'import jax, flax; print("jax", jax.__version__, "flax", flax.__version__, jax.devices())' || status=$?

if [[ " $PHASES " == *" flow "* ]]; then
  # Throughput at the largest size only (no EPE rows: --methods "").
  # shellcheck disable=SC2086  # the sizes and FLOW_ARGS are lists
  for steps in $FLOW_STEPS; do
    python3 benchmarks/flow_estimators.py --methods "" --size ${FLOW_SIZES##* } --num-videos 8 --num-frames 32 \
      --jax-throughput $FLOW_THROUGHPUT --jax-steps-per-check "$steps" --no-write --jsonl "$OUT/flow.jsonl" \
      $FLOW_ARGS || status=$?
  done
  # EPE at each size on the CPU table's pairs; --jax-batch 2 keeps tvl1-jax to one compiled shape per size.
  # shellcheck disable=SC2086
  python3 benchmarks/flow_estimators.py --methods dis,farneback,tvl1-jax --size $FLOW_SIZES --num-videos 8 \
    --num-frames 32 --tvl1-pairs 8 --jax-batch 2 --no-write --jsonl "$OUT/flow.jsonl" $FLOW_ARGS || status=$?
  cat "$OUT/flow.jsonl"
fi

if [[ " $PHASES " == *" tvl1 "* ]]; then
  # shellcheck disable=SC2086  # the step counts and TVL1_ARGS are lists
  python3 benchmarks/tvl1_profile.py --pairs 1024 --compaction 5 --steps-per-check $TVL1_STEPS --alone 32 \
    --trace "$OUT/tvl1_trace" --jsonl "$OUT/tvl1.jsonl" $TVL1_ARGS || status=$?
  if [ -d "$OUT/tvl1_trace" ]; then tar -C "$OUT" -czf "$OUT/tvl1_trace.tgz" tvl1_trace && rm -rf "$OUT/tvl1_trace"; fi
fi

if [[ " $PHASES " == *" step "* ]]; then
  python3 -m ta2net_jax.cli info --config "$CONFIG" | tee "$OUT/info.json" || status=$?
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
  # B = 16 first: it is the row the profile is for, should a call's time run out.
  python3 benchmarks/train_step.py --config "$CONFIG" --dtype bfloat16 --batch 16 --profile --trace "$OUT/trace" \
    --out "$OUT/results.jsonl" $BENCH_ARGS || status=$?
  if [ -d "$OUT/trace" ]; then tar -C "$OUT" -czf "$OUT/trace.tgz" trace && rm -rf "$OUT/trace"; fi
  # shellcheck disable=SC2086
  python3 benchmarks/train_step.py --config "$CONFIG" --dtype bfloat16 --batch 4 --profile \
    --out "$OUT/results.jsonl" $BENCH_ARGS || status=$?
  cat "$OUT/results.jsonl"
fi
exit $status
