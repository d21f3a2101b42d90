"""oneDNN kernels for XLA:CPU's convolutions and matmuls, on by default for every `ta2net` command.

XLA:CPU runs a convolution through its own Eigen kernels unless told to hand it to oneDNN
(`--xla_cpu_experimental_onednn_custom_call=true`, an XLA flag read from `$XLA_FLAGS` when the CPU backend
starts). The networks here are many narrow 3-D convolutions, where oneDNN is much faster. Measured on the
2-core AMD EPYC development machine (`benchmarks/train_step.py --cpu-kernels onednn xla`; benchmarks/RESULTS.md
"Training step"), the jit training step at B = 16: 815 → 505 ms for `configs/default_detector.py`, 1,475 → 725
ms for its /8 locator, 2,292 → 1,434 ms at 112² (the paper model's wide ResNet-50 trunks: no gain);
`ta2net detect hitting_metal.mp4` 6.8 → 5.3 s with the same events. Results differ from Eigen's by float32
rounding (the summation order): tests/test_cpu_kernels.py checks a training step against Eigen's.

`configure` (called by the command line before anything touches a device; the tests' conftest calls it with
XLA's kernels as the default, tests/conftest.py says why) adds the flag to `$XLA_FLAGS`, so the processes a
command starts (grain workers, a detect pool) inherit it, unless

* `$TA2NET_CPU_KERNELS` is `xla` (or `off`/`eigen`): XLA's own kernels, e.g. to compare;
* `$XLA_FLAGS` already names the flag (the user's setting wins);
* the installed jaxlib is outside the versions it was measured on (:data:`TESTED_JAXLIB`): XLA aborts the
  process on a flag it does not know, and the flag is experimental, so a jaxlib that may have dropped it is
  left alone. No jax import is needed to tell (the version comes from the package metadata).

The flag only concerns the CPU backend: on a GPU or TPU the devices' programs are unchanged.

What it costs: jaxlib 0.11–0.12 cannot write a program holding oneDNN calls into the persistent compilation
cache (ta2net_jax/compilation_cache.py; the attempt fails with a `std::bad_alloc` that JAX turns into a
warning, which `configure` silences: nothing else is lost). Those programs are compiled again by each
process, about a second for the default detector's forward pass on 2 cores: `ta2net detect
hitting_metal.mp4` (a 6-second clip) takes 4.7–4.8 s from a warm cache against 4.0 s with XLA's kernels;
longer videos, folders of videos and training, whose steps are 1.6–2× faster, repay it. Programs without
convolutions (flow, picking) are cached as before.
"""

from __future__ import annotations

import os
import warnings
from importlib import metadata

ENV = "TA2NET_CPU_KERNELS"
FLAG_NAME = "xla_cpu_experimental_onednn_custom_call"
FLAG = f"--{FLAG_NAME}=true"
OFF = ("xla", "eigen", "off", "0", "false", "no")
# [first, past-the-end) jaxlib versions the flag was measured on: 0.11.2 (the GPU image's) and 0.12.0.1 (pinned).
TESTED_JAXLIB = ((0, 11, 2), (0, 13))
# JAX's warning when a program with oneDNN calls cannot be serialised for the persistent cache (see above).
UNCACHEABLE_WARNING = r"Error writing persistent compilation cache entry for .*std::bad_alloc"


def _version_tuple(text: str) -> tuple[int, ...]:
    """ "0.12.0.1" → (0, 12, 0, 1); "0.13.0rc1" → (0, 13, 0): the leading digits of each dotted part, up to the
    first part that does not start with one."""
    parts = []
    for piece in text.split("."):
        digits = piece[: len(piece) - len(piece.lstrip("0123456789"))]
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def jaxlib_version() -> tuple[int, ...] | None:
    """The installed jaxlib's version as a tuple of ints, None when jaxlib is not installed."""
    try:
        return _version_tuple(metadata.version("jaxlib"))
    except metadata.PackageNotFoundError:
        return None


def configure(environ=os.environ, *, version: tuple[int, ...] | None = None) -> bool:
    """Adds :data:`FLAG` to ``environ["XLA_FLAGS"]`` as the module docstring says; returns whether the flag is
    set there now. ``version`` stands in for the installed jaxlib's (tests). Has no effect on a process whose
    CPU backend has already started (XLA reads the variable once)."""
    flags = environ.get("XLA_FLAGS", "")
    if FLAG_NAME not in flags:  # else the user's own setting stands
        if environ.get(ENV, "").strip().lower() in OFF:
            return False
        version = jaxlib_version() if version is None else version
        first, past = TESTED_JAXLIB
        if version is None or not first <= version < past:
            return False
        environ["XLA_FLAGS"] = flags = f"{flags} {FLAG}".strip()
    on = FLAG in flags.split()
    if on:
        warnings.filterwarnings("ignore", message=UNCACHEABLE_WARNING, category=UserWarning)
    return on
