#!/usr/bin/env bash
# Multi-node GPU training under SLURM: one process per GPU, every process runs the same `ta2net train`;
# jax.distributed.initialize() reads the SLURM environment (coordinator = the step's first node).
#
#   sbatch [--nodes=4] [--partition=gpu] [--account=...] launch/slurm_gpu.sh [--config.key=value ...]
#   CONFIG=configs/audible623.py:bf16 WORKDIR=/shared/runs/paper sbatch --nodes=2 launch/slurm_gpu.sh
#
# Environment (defaults in brackets): REPO [$SLURM_SUBMIT_DIR], PYTHON [$REPO/.venv/bin/python, with
# `pip install -r requirements.txt "jax[cuda12]==0.12.0.1"`], CONFIG [configs/audible623.py],
# WORKDIR [$REPO/runs/$SLURM_JOB_NAME] (a shared filesystem every node writes; stable across requeues),
# REQUEUE [1]: requeue the job after a preemption checkpoint (exit status 143), DRY_RUN=1: print the srun
# command instead of running it. Arguments are passed on to `ta2net train`.
#
# Local device ids: each task sees all of its node's GPUs (--gpus-per-node) and JAX takes GPU
# SLURM_LOCALID. With --gpus-per-task=1 instead, each task sees one GPU and ta2net passes
# local_device_ids=[0] (ta2net_jax/distributed.py).
# Preemption: SLURM sends SIGTERM 120 s before the time limit (--signal) and on preemption; JAX's
# preemption service makes every process save a checkpoint at the same step; the job then requeues
# itself and resumes from that checkpoint.
#SBATCH --job-name=ta2net
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=%x-%j.out
set -euo pipefail

REPO=${REPO:-${SLURM_SUBMIT_DIR:-$(pwd)}}
cd "$REPO"
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
CONFIG=${CONFIG:-configs/audible623.py}
WORKDIR=${WORKDIR:-$REPO/runs/${SLURM_JOB_NAME:-ta2net}}
REQUEUE=${REQUEUE:-1}
DRY_RUN=${DRY_RUN:-0}

# TensorFlow is not used; keep any TF that a dependency imports off the GPUs.
export TF_CPP_MIN_LOG_LEVEL=2
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$REPO/.jax_cache}

cmd=(srun --kill-on-bad-exit=1 "$PYTHON" -m ta2net_jax.cli train --distributed=on
     --config "$CONFIG" --workdir "$WORKDIR" "$@")
if [ "$DRY_RUN" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi

echo "job ${SLURM_JOB_ID:-?}: ${SLURM_JOB_NUM_NODES:-?} nodes × ${SLURM_NTASKS_PER_NODE:-?} processes, workdir $WORKDIR"
status=0
"${cmd[@]}" || status=$?
if [ "$status" -eq 143 ] && [ "$REQUEUE" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "preemption checkpoint saved; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
