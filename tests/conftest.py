"""Test set-up: 4 fake CPU devices (before anything touches a device), absl flags for grain workers,
a persistent XLA compilation cache (the same small train step is compiled by several tests), and a
session-wide tiny synthetic dataset; a GCS emulator for each test module that asks for one."""

import os

import jax

from ta2net_jax import cpu_kernels

# The suite runs on XLA's convolution kernels, not oneDNN's (ta2net_jax/cpu_kernels.py), in this process and in
# every command a test starts (the environment is inherited): the persistent cache below cannot hold programs with
# oneDNN calls, and the suite compiles the same small steps many times (train-heavy files from cold caches,
# 2026-12-07: 258 s against 290 s); tests that compare a command's training with one trained here need one
# kind. tests/test_cpu_kernels.py runs oneDNN against XLA's kernels, test_compilation_cache.py a command on
# oneDNN. TA2NET_CPU_KERNELS=onednn runs the whole suite on oneDNN.
os.environ.setdefault(cpu_kernels.ENV, "xla")
cpu_kernels.configure()
jax.config.update("jax_num_cpu_devices", 4)
CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jax_cache")  # also subprocesses'
# Every program is cached, however fast it compiles: most of the suite's programs take under JAX's default
# 1 s to compile and are compiled again by other tests and by the other worker (six train-heavy test files in
# two workers, 2026-12-06: 341–344 s against 363 s, both orders; the whole clean-clone suite 21.9 and 23.2
# against 23.5 min).
CACHE_MIN_COMPILE_TIME_S = 0.0
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_TIME_S)
os.environ["JAX_COMPILATION_CACHE_DIR"] = CACHE  # every subprocess a test starts inherits both
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(CACHE_MIN_COMPILE_TIME_S)

import numpy as np
import pytest
from absl import flags
from flax import nnx

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REALDATA = os.path.join(os.path.dirname(REPO), "shared", "realdata")
# TV-L1 at a fraction of its default work (input_pipeline/flow_jax.py SETTINGS; compiles and runs in seconds), for
# tests whose assertions hold whatever flow it gives (two paths that must agree); its accuracy is tested at the
# defaults (test_flow_jax.py).
QUICK_TVL1 = {"nscales": 2, "warps": 2, "outer_iterations": 2, "inner_iterations": 10}


class AlwaysFlip:
    """A stand-in for np.random.Generator whose random() always asks clips.augment to mirror the clip."""

    def random(self):
        return 0.0


def realdata(*parts: str) -> str:
    """Path of a file under ../shared/realdata; skips the test when it is absent."""
    path = os.path.join(REALDATA, *parts)
    if not os.path.exists(path):
        pytest.skip(f"real clip not available: {path}")
    return path


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
    """The `tiny` synthetic_collisions dataset (6/3/3 videos of 24 frames at 32×32), built once."""
    from input_pipeline.datasets import synthetic_collisions

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    synthetic_collisions.build_dataset(data_dir, "tiny", workers=1)
    return data_dir


@pytest.fixture(scope="session")
def reference(tiny_data_dir, tmp_path_factory) -> dict:
    """The uninterrupted reference run of tests/reference_run.py (1 process × 4 devices), trained once:
    workdir (tests copy it, never write to it), config, log and final state."""
    from reference_run import NUM_STEPS, config_for, read_log, state_at

    from ta2net_jax.train import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("reference"))
    config = config_for(tiny_data_dir)
    train_and_evaluate(config, workdir, progress=False)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]
    return {
        "workdir": workdir,
        "config": config,
        "log": read_log(workdir),
        "final": state_at(workdir, config, NUM_STEPS),
    }


@pytest.fixture
def smoke_config(tiny_data_dir):
    """configs/synthetic_small.py:smoke on the tiny dataset, 8-frame clips."""
    from ta2net_jax.config_utils import load_config

    return load_config(
        os.path.join(REPO, "configs", "synthetic_small.py:smoke"),
        [f"data.data_dir={tiny_data_dir}", "data.num_frames=8"],
    )


def assert_bit_identical(a, b):
    """Every leaf of two NNX states (parameters, BatchNorm statistics, optimizer, RNG keys) equal bit for bit."""
    leaves_a, leaves_b = jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A GCS emulator for the test module that asks for it (tests/gcs_emulator.py): the environment that points
    every client at it, set while the module runs."""
    from gcs_emulator import running

    with running(tmp_path_factory) as env:
        yield env
