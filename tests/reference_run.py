"""The uninterrupted reference run of the resumption tests (test_scaling, test_corrupt_checkpoints, test_gcs):
configs/synthetic_small.py:smoke on the tiny dataset, 4 steps at a constant learning rate, checkpoints at steps
2 and 4. conftest.py's session fixture `reference` trains it once; these are its overrides and how to read
its log and restore its state."""

import json
import os
import sys

import jax
from conftest import REPO

from input_pipeline import paths
from ta2net_jax import checkpoint, mesh as mesh_lib
from ta2net_jax.config_utils import load_config
from ta2net_jax.train import create_train_state

CONFIG = os.path.join(REPO, "configs", "synthetic_small.py:smoke")
NUM_STEPS = 4


def overrides(data_dir, **train) -> list[str]:
    """`key=value` overrides of CONFIG for a run on `data_dir` (train options may be changed)."""
    base = {"num_steps": NUM_STEPS, "checkpoint_every": 2, "max_to_keep": 3, "log_every": 1}
    base.update(train)
    return [f"data.data_dir={data_dir}", "data.num_frames=8", "optim.schedule=constant"] + [
        f"train.{k}={v}" for k, v in base.items()
    ]


def train_command(data_dir, workdir, **train) -> list[str]:
    """`ta2net train` of CONFIG on `data_dir` into `workdir`, as a subprocess command line."""
    command = [sys.executable, "-m", "ta2net_jax.cli.main", "train", "--config", CONFIG, "--workdir", workdir]
    return command + [f"--config.{o}" for o in overrides(data_dir, **train)]


def subprocess_env(devices=4, **extra) -> dict:
    """The environment of a training subprocess: CPU with `devices` fake devices, the tests' compilation
    cache (inherited: conftest.py exports it), the repo importable, no fault injection unless `extra` sets it."""
    env = dict(os.environ)
    env.pop(checkpoint.FAULT_ENV, None)
    env.update(
        JAX_PLATFORMS="cpu",
        JAX_NUM_CPU_DEVICES=str(devices),
        PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""),
        **extra,
    )
    return env


def config_for(data_dir, **train):
    return load_config(CONFIG, overrides(data_dir, **train))


def read_log(workdir) -> list[dict]:
    """The run's metrics.jsonl records (a local or gs:// workdir)."""
    return [json.loads(line) for line in paths.read_text(paths.join(workdir, "metrics.jsonl")).splitlines()]


_TARGETS = {}


def target_state(config):
    """A freshly initialised train state of `config` (restore target: shapes, dtypes, shardings), cached."""
    key = config.to_json_best_effort(sort_keys=True)
    if key not in _TARGETS:
        mesh = mesh_lib.make_mesh(config.mesh)
        with jax.set_mesh(mesh):
            _TARGETS[key] = create_train_state(config, mesh)[1]
    return _TARGETS[key]


def state_at(workdir, config, step):
    mngr = checkpoint.manager(workdir, for_training=False)
    try:
        restored, _ = checkpoint.restore(mngr, target_state(config), step=step)
    finally:
        mngr.close()
    return restored
