# Sourced by scripts/gpu_check.sh and scripts/gpu_train.sh on the GPU machine, from the repo root: the
# project and the carried wheels (`.whl/`, made by scripts/gpu_wheels.sh) on PYTHONPATH, and a persistent
# compilation cache (a second call on the same warm machine reuses the compiled programs).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax_cache}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD
fi
