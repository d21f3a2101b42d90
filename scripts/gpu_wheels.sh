#!/usr/bin/env bash
# Downloads (on the development machine) the wheels the GPU machine's image lacks into the git-ignored `.whl/`,
# which a device call carries (`carry: [".whl"]`) and scripts/gpu_env.sh installs there.
#
#   bash scripts/gpu_wheels.sh          # ml_collections only: what `scripts/gpu_check.sh` needs (< 0.1 MB)
#   bash scripts/gpu_wheels.sh train    # also the input pipeline for `scripts/gpu_train.sh` (≈ 46 MB: PyAV
#                                       # 35 MB, TFDS 5 MB, ArrayRecord 4 MB, grain and the small ones)
#
# The image (its package list: /work/.library/device/KINDS.md) has jax, flax, optax, orbax, OpenCV headless,
# numpy, absl, PyYAML, protobuf, pyarrow, psutil, requests, tqdm, wrapt, etils, fsspec and zipp; the versions
# below are requirements.txt's. promise has no wheel on PyPI (pure Python): it is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pin() { grep -i -E "^$1==" requirements.txt; }
fetch() {
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "$@"
}
mkdir -p .whl
fetch "$(pin ml_collections)"
if [ "${1:-}" = train ]; then
  # grain + ArrayRecord (the training input), TFDS and its needs (the dataset builders), PyAV (video files),
  # tensorboardX (the trainer's event files), mir_eval (the original metric's matching).
  fetch $(for p in grain array_record tensorflow-datasets av dm-tree immutabledict simple-parsing docstring_parser \
      tensorflow-metadata googleapis-common-protos termcolor toml portpicker importlib_resources tensorboardX mir_eval decorator; do
      pin "$p"
    done)
  "$PY" -m pip wheel -q --no-deps -w .whl "$(pin promise)"
fi
du -sh .whl
