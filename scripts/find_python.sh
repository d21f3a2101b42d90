#!/usr/bin/env bash
# Prints the path of a Python >= 3.12 interpreter (jax 0.12 needs 3.12), or explains what to install.
# Order: $PYTHON, python3.12, python3.13, python3, then pyenv's installed 3.12.x / 3.13.x.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 12) else 1)' >/dev/null 2>&1; }
for cand in "${PYTHON:-}" python3.12 python3.13 python3; do
  [ -n "$cand" ] || continue
  path=$(command -v "$cand" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for dir in $(ls -d "$root"/versions/3.12* "$root"/versions/3.13* 2>/dev/null); do
    if ok "$dir/bin/python3"; then echo "$dir/bin/python3"; exit 0; fi
  done
fi
echo "error: ta2net-jax needs Python >= 3.12 (jax 0.12 requires it) and none was found." >&2
echo "       Install one (e.g. 'pyenv install 3.12' or your OS package python3.12), or set PYTHON=/path/to/python3.12." >&2
exit 1
