#!/usr/bin/env bash
# The test suite (what `make test` and CI run). pytest's exit 5 (no tests collected) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# --durations: the slowest tests in every log, to keep the suite within its ~20 min budget on 2 cores.
python -m pytest -q -p no:cacheprovider --timeout=900 --durations=25 tests "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $status
