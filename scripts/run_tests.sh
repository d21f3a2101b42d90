#!/usr/bin/env bash
# The test suite (what `make test` and CI run). pytest's exit 5 (no tests collected) is a failure.
#
# Workers (pytest-xdist): the suite is mostly single-threaded (tracing, XLA compilation, subprocesses), so
# two workers on a 2-core machine halve its wall time. `--dist loadfile` keeps each test file on one worker,
# in order, so module fixtures (the GCS emulator) start once. TEST_WORKERS overrides the count (default:
# the CPU count, at most 4); TEST_WORKERS=0 runs in this process.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
cores=$(nproc 2>/dev/null || echo 2)
workers=${TEST_WORKERS:-$((cores < 4 ? cores : 4))}
parallel=()
if [ "$workers" -gt 0 ]; then
  parallel=(-n "$workers" --dist loadfile)
fi
# --durations: the slowest tests in every log, to keep the suite within its ~20 min budget on 2 cores.
python -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 "${parallel[@]}" tests "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $status
