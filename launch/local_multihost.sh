#!/usr/bin/env bash
# Emulates a multi-host job on one machine: N processes, each with D fake CPU devices, joined by
# jax.distributed (Gloo over localhost). Every process runs the same `ta2net` command with
# --coordinator/--num-processes/--process-id appended, exactly as on a real cluster.
#
#   launch/local_multihost.sh [-n PROCESSES] [-d DEVICES] [-p PORT] [-l LOGDIR] -- COMMAND [ARGS...]
#   launch/local_multihost.sh -n 2 -d 2 -- train --config configs/synthetic_small.py:smoke --workdir runs/mh
#
# Process 0 writes to this terminal, process i > 0 to LOGDIR/process_<i>.log (default ./multihost_logs).
# PORT defaults to a free one (portpicker). The exit status is the first failing process's (the others
# are then stopped), 143 when the job stopped at a preemption checkpoint, else 0. SIGTERM/SIGINT to this
# script is forwarded to every process (emulates a preemption notice).
# Environment: PYTHON (default: python on PATH, e.g. the activated .venv), JAX_COMPILATION_CACHE_DIR.
set -euo pipefail

num_processes=2
devices=2
port=""
logdir=multihost_logs
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "n:d:p:l:h" opt; do
  case "$opt" in
    n) num_processes=$OPTARG ;;
    d) devices=$OPTARG ;;
    p) port=$OPTARG ;;
    l) logdir=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ "${1:-}" = "--" ]; then shift; fi
if [ "$#" -eq 0 ]; then usage >&2; exit 2; fi

python=${PYTHON:-python}
if [ -z "$port" ]; then
  port=$("$python" -c 'import portpicker; print(portpicker.pick_unused_port())')
fi
mkdir -p "$logdir"

pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
}
trap 'stop_all' TERM INT

for ((i = 0; i < num_processes; i++)); do
  if [ "$i" -eq 0 ]; then
    JAX_PLATFORMS=cpu JAX_NUM_CPU_DEVICES=$devices "$python" -m ta2net_jax.cli "$@" \
      --coordinator "localhost:$port" --num-processes "$num_processes" --process-id "$i" &
  else
    JAX_PLATFORMS=cpu JAX_NUM_CPU_DEVICES=$devices "$python" -m ta2net_jax.cli "$@" \
      --coordinator "localhost:$port" --num-processes "$num_processes" --process-id "$i" \
      > "$logdir/process_$i.log" 2>&1 &
  fi
  pids+=("$!")
done

# Wait for every process; on the first failure stop the others (they would block in collectives).
status=0
finished=()
while [ "${#finished[@]}" -lt "${#pids[@]}" ]; do
  for i in "${!pids[@]}"; do
    if [ -n "${finished[$i]:-}" ] || kill -0 "${pids[$i]}" 2>/dev/null; then
      continue
    fi
    rc=0
    wait "${pids[$i]}" || rc=$?
    finished[i]=$rc
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then
      status=$rc
      if [ "$rc" -ne 143 ]; then
        echo "local_multihost: process $i exited with status $rc; stopping the others (logs: $logdir/)" >&2
        stop_all
      fi
    fi
  done
  sleep 0.2
done
exit "$status"
