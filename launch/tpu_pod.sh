#!/usr/bin/env bash
# Trains on a Cloud TPU VM pod slice: create the TPU, copy this repository to every worker, install
# the environment, run the same `ta2net train` on all workers at once, delete the TPU.
#
#   launch/tpu_pod.sh create|copy|setup|run|delete|all [--config.key=value ...]
#
#   TPU_NAME=ta2net ZONE=us-central2-b ACCELERATOR=v4-32 BUCKET=my-bucket \
#     CONFIG=configs/audible623.py launch/tpu_pod.sh all
#
# Environment (defaults in brackets):
#   TPU_NAME [ta2net]  ZONE [us-central2-b]  ACCELERATOR [v4-32]  RUNTIME [tpu-ubuntu2204-base]
#   PROJECT            gcloud project (default: gcloud's configured one)
#   QUEUED=1           create through a queued resource (waits until it is ACTIVE), with
#                      CAPACITY = spot | best-effort | reserved | "" [""] ; QR_NAME [$TPU_NAME-qr]
#   BUCKET             a GCS bucket: the default WORKDIR is gs://$BUCKET/runs/$TPU_NAME, written directly
#                      by every worker (checkpoints, logs, TensorBoard; no mount needed)
#   MOUNT=1            setup also mounts the bucket with gcsfuse at /mnt/$BUCKET (for other tools)
#   CONFIG [configs/audible623.py]   WORKDIR [gs://$BUCKET/runs/$TPU_NAME]  (a gs:// URL or a shared path)
#   DATA_DIR           data.data_dir for every worker (default: the config's), e.g. gs://$BUCKET/tfds:
#                      each worker copies the built dataset into its local cache once
#   BUILD_DATA=1       setup also runs `ta2net build --config $CONFIG` (on worker 0 only when DATA_DIR is
#                      a gs:// URL: it uploads the dataset there; else on every worker)
#   REMOTE_DIR [ta2net-jax]  JAX_VERSION [0.12.0.1]
#   DRY_RUN=1          print the gcloud commands instead of running them
# Arguments after the step name are passed on to `ta2net train` (e.g. --config.train.batch_size=64).
# `all` deletes the TPU when the run ends, also on failure or Ctrl-C. Training resumes from the newest
# checkpoint in WORKDIR, so after a preemption `launch/tpu_pod.sh all` again continues the run.
set -euo pipefail
cd "$(dirname "$0")/.."

TPU_NAME=${TPU_NAME:-ta2net}
ZONE=${ZONE:-us-central2-b}
ACCELERATOR=${ACCELERATOR:-v4-32}
RUNTIME=${RUNTIME:-tpu-ubuntu2204-base}
QUEUED=${QUEUED:-0}
CAPACITY=${CAPACITY:-}
QR_NAME=${QR_NAME:-$TPU_NAME-qr}
BUCKET=${BUCKET:-}
CONFIG=${CONFIG:-configs/audible623.py}
if [ -n "$BUCKET" ]; then
  WORKDIR=${WORKDIR:-gs://$BUCKET/runs/$TPU_NAME}
else
  WORKDIR=${WORKDIR:-runs/$TPU_NAME}
fi
DATA_DIR=${DATA_DIR:-}
BUILD_DATA=${BUILD_DATA:-0}
MOUNT=${MOUNT:-0}
REMOTE_DIR=${REMOTE_DIR:-ta2net-jax}
JAX_VERSION=${JAX_VERSION:-0.12.0.1}
DRY_RUN=${DRY_RUN:-0}

project_flags=()
if [ -n "${PROJECT:-}" ]; then project_flags=(--project "$PROJECT"); fi

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

on_all_workers() {   # on_all_workers "shell command" [worker (default: all)]
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" "${project_flags[@]}" --worker="${2:-all}" \
    --command "$1"
}

create() {
  if [ "$QUEUED" = 1 ]; then
    capacity_flags=()
    case "$CAPACITY" in
      spot) capacity_flags=(--spot) ;;
      best-effort) capacity_flags=(--best-effort) ;;
      reserved) capacity_flags=(--reserved) ;;
      "") ;;
      *) echo "tpu_pod: CAPACITY must be spot, best-effort, reserved or empty" >&2; exit 2 ;;
    esac
    run gcloud alpha compute tpus queued-resources create "$QR_NAME" --zone "$ZONE" "${project_flags[@]}" \
      --node-id "$TPU_NAME" --accelerator-type "$ACCELERATOR" --runtime-version "$RUNTIME" \
      "${capacity_flags[@]}"
    if [ "$DRY_RUN" != 1 ]; then
      echo "waiting for queued resource $QR_NAME to become ACTIVE ..."
      while true; do
        state=$(gcloud alpha compute tpus queued-resources describe "$QR_NAME" --zone "$ZONE" \
          "${project_flags[@]}" --format='value(state.state)')
        case "$state" in
          ACTIVE) break ;;
          FAILED|SUSPENDED) echo "tpu_pod: queued resource $QR_NAME is $state" >&2; exit 1 ;;
          *) sleep 30 ;;
        esac
      done
    fi
  else
    run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" "${project_flags[@]}" \
      --accelerator-type "$ACCELERATOR" --version "$RUNTIME"
  fi
}

copy() {
  # The repository without environments, data, runs or caches, to ~/$REMOTE_DIR on every worker.
  archive=$(mktemp -d)/ta2net-jax.tar.gz
  run tar --exclude=./.venv --exclude=./.venv-torch --exclude=./data --exclude=./runs --exclude=./.jax_cache \
    --exclude=./.git -czf "$archive" .
  run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:ta2net-jax.tar.gz" --zone "$ZONE" \
    "${project_flags[@]}" --worker=all
  on_all_workers "mkdir -p $REMOTE_DIR && tar -xzf ta2net-jax.tar.gz -C $REMOTE_DIR"
}

setup() {
  # Python 3.12 venv with the pinned requirements (gcsfs, google-cloud-storage: gs:// paths) and jax[tpu];
  # gcsfuse mount of BUCKET if asked; data if asked.
  local cmd="set -e; cd $REMOTE_DIR"
  cmd+="; if ! command -v python3.12 >/dev/null; then sudo apt-get update -q"
  cmd+=" && sudo apt-get install -y -q python3.12 python3.12-venv; fi"
  cmd+="; test -x .venv/bin/python || python3.12 -m venv .venv"
  cmd+="; .venv/bin/pip install -q -r requirements.txt 'jax[tpu]==$JAX_VERSION'"
  cmd+="; .venv/bin/pip install -q --no-deps --no-build-isolation -e ."
  if [ -n "$BUCKET" ] && [ "$MOUNT" = 1 ]; then
    cmd+="; sudo mkdir -p /mnt/$BUCKET && sudo chown \$USER /mnt/$BUCKET"
    cmd+="; mountpoint -q /mnt/$BUCKET || gcsfuse --implicit-dirs $BUCKET /mnt/$BUCKET"
  fi
  on_all_workers "$cmd"
  if [ "$BUILD_DATA" = 1 ]; then
    local build="cd $REMOTE_DIR && .venv/bin/ta2net build --config $CONFIG"
    if [ -n "$DATA_DIR" ]; then build+=" --config.data.data_dir=$DATA_DIR"; fi
    case "$DATA_DIR" in
      gs://*) on_all_workers "$build" 0 ;;   # one worker builds and uploads; the others read the bucket
      *) on_all_workers "$build" ;;
    esac
  fi
}

train() {
  # Every worker runs the same command; jax.distributed.initialize() finds the pod from the TPU metadata.
  local extra=""
  if [ -n "$DATA_DIR" ]; then extra+=" --config.data.data_dir=$DATA_DIR"; fi
  for arg in "$@"; do extra+=" $(printf '%q' "$arg")"; done
  on_all_workers "cd $REMOTE_DIR && .venv/bin/python -m ta2net_jax.cli train --distributed=on \
--config $CONFIG --workdir $WORKDIR$extra"
}

delete() {
  if [ "$QUEUED" = 1 ]; then
    run gcloud alpha compute tpus queued-resources delete "$QR_NAME" --zone "$ZONE" "${project_flags[@]}" \
      --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone "$ZONE" "${project_flags[@]}" --quiet
  fi
}

step=${1:-}
if [ -z "$step" ]; then sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
shift
case "$step" in
  create) create ;;
  copy) copy ;;
  setup) setup ;;
  run) train "$@" ;;
  delete) delete ;;
  all)
    create
    trap delete EXIT
    copy
    setup
    train "$@"
    ;;
  *) echo "tpu_pod: unknown step '$step' (create|copy|setup|run|delete|all)" >&2; exit 2 ;;
esac
