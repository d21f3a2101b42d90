#!/usr/bin/env bash
# Creates .venv-torch: Python 3.11 + CPU PyTorch (requirements-torch.txt), used only by the PyTorch side
# of the parity/export tests (tests/torch_ref). Idempotent; prints the interpreter's path.
# Python 3.11 is searched as $TORCH_PYTHON, python3.11, then pyenv's 3.11.x.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env_lib.sh
env_ready .venv-torch requirements-torch.txt
py=""
for cand in "${TORCH_PYTHON:-}" python3.11; do
  [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && { py=$(command -v "$cand"); break; }
done
if [ -z "$py" ] && command -v pyenv >/dev/null 2>&1; then
  for dir in $(ls -d "$(pyenv root)"/versions/3.11* 2>/dev/null); do
    [ -x "$dir/bin/python3.11" ] && { py="$dir/bin/python3.11"; break; }
  done
fi
if [ -z "$py" ]; then
  echo "torch_env: no Python 3.11 found (set TORCH_PYTHON); the PyTorch parity/export tests will be skipped" >&2
  exit 1
fi
env_create .venv-torch requirements-torch.txt "$py"
