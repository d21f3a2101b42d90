#!/usr/bin/env bash
# The test suite (what `make test` and CI run). pytest's exit 5 (no tests collected) is a failure.
# TA2NET_TEST_WORKERS (default 2): pytest-xdist processes, one per CPU of the 2-core CI machine, each test
# file kept in one process (module fixtures built once); 0 runs everything in this process.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
workers=${TA2NET_TEST_WORKERS:-2}
if ! [[ $workers =~ ^[0-9]+$ ]]; then
  echo "error: TA2NET_TEST_WORKERS=$workers: give a number of processes (0 = no workers)" >&2
  exit 1
fi
parallel=()
[ "$workers" -gt 0 ] && parallel=(-n "$workers" --dist loadfile)  # 0: no xdist flags, so no plugin needed
# --durations: the slowest tests in every log, to keep the suite within its ~20 min budget on 2 cores.
python -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 "${parallel[@]}" tests "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $status
