"""oneDNN convolutions on the CPU (ta2net_jax/cpu_kernels.py): when the flag is added to $XLA_FLAGS, that it
really reaches oneDNN, and that a training step with it equals one with XLA's own kernels to float32 rounding."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
from conftest import REPO

from ta2net_jax import cpu_kernels as ck

TESTED = ck.TESTED_JAXLIB[0]


def test_adds_the_flag_to_xla_flags():
    environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert ck.configure(environ, version=TESTED)
    assert environ["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=2", ck.FLAG]
    assert ck.configure(environ, version=TESTED) and environ["XLA_FLAGS"].count(ck.FLAG_NAME) == 1  # once only
    environ = {}
    assert ck.configure(environ, version=(0, 12, 0, 1)) and environ["XLA_FLAGS"] == ck.FLAG


def test_the_users_setting_wins_and_off():
    environ = {"XLA_FLAGS": f"--{ck.FLAG_NAME}=false"}
    assert not ck.configure(environ, version=TESTED) and environ["XLA_FLAGS"] == f"--{ck.FLAG_NAME}=false"
    for off in ("xla", "XLA", "off", "eigen"):
        environ = {ck.ENV: off}
        assert not ck.configure(environ, version=TESTED) and "XLA_FLAGS" not in environ


def test_an_untested_jaxlib_is_left_alone(monkeypatch):
    # XLA aborts on a flag it does not know: a jaxlib outside the measured range never gets it.
    for version in ((0, 11, 1), ck.TESTED_JAXLIB[1], (1, 0)):
        environ = {}
        assert not ck.configure(environ, version=version) and "XLA_FLAGS" not in environ
    monkeypatch.setattr(ck, "jaxlib_version", lambda: None)  # no jaxlib installed
    environ = {}
    assert not ck.configure(environ) and "XLA_FLAGS" not in environ
    assert ck._version_tuple("0.12.0.1") == (0, 12, 0, 1)
    assert ck._version_tuple("0.13.0rc1") == (0, 13, 0)


def test_only_the_uncacheable_program_warning_is_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ck.configure({}, version=TESTED)
        prefix = "Error writing persistent compilation cache entry for"
        warnings.warn(f"{prefix} 'jit_forward': MemoryError: std::bad_alloc", UserWarning, stacklevel=1)
        warnings.warn(f"{prefix} 'jit_x': OSError: disk full", UserWarning, stacklevel=1)  # any other failure shows
    assert [str(w.message) for w in caught] == [f"{prefix} 'jit_x': OSError: disk full"]


STEP_SCRIPT = r"""
import json, sys
sys.path.insert(0, {repo!r})
sys.path.append({benchmarks!r})
import jax, numpy as np
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from ta2net_jax.config_utils import load_config
from ta2net_jax.model_info import image_size
from ta2net_jax.inflection import model_inputs
from ta2net_jax.train import create_train_state, make_train_step
from train_step import random_batch

config = load_config("configs/default_detector.py:smoke", ["train.batch_size=2"])
mesh = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Auto,), devices=jax.devices()[:1])
with jax.set_mesh(mesh):
    graphdef, state = create_train_state(config, mesh)
    data = jax.device_put(random_batch(2, int(config.model.num_frames), image_size(config), 0),
                          NamedSharding(mesh, P("data")))
    model, _ = nnx.merge(graphdef, state)
    model.eval()
    inputs = model_inputs(data, config.inflection.mode, config.inflection.flow_scale)
    outputs = jax.jit(lambda *x: model(*x))(*inputs)  # the forward pass, in inference mode
    np.savez({out!r}, *[np.asarray(x, np.float64) for x in jax.tree.leaves(outputs)])
    compiled = make_train_step(config, graphdef, mesh).lower(state, data).compile()
    onednn = "__onednn$convolution" in compiled.as_text()
    losses, grad_norms = [], []
    for _ in range(3):
        state, metrics = compiled(state, data)
        losses.append(float(metrics["loss"]))
        grad_norms.append(float(metrics["grad_norm"]))
print(json.dumps({{"onednn": onednn, "losses": losses, "grad_norms": grad_norms}}))
"""


def _run_steps(tmp_path, name, kernels):
    out = str(tmp_path / f"{name}.npz")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env[ck.ENV] = kernels
    script = STEP_SCRIPT.format(repo=REPO, benchmarks=os.path.join(REPO, "benchmarks"), out=out)
    # The flag is added as the command line adds it: by configure() in the child, before it uses a device.
    prelude = f"import sys; sys.path.insert(0, {REPO!r}); from ta2net_jax import cpu_kernels; cpu_kernels.configure()\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = np.load(out)
    return json.loads(done.stdout.strip().splitlines()[-1]), [outputs[k] for k in sorted(outputs.files)]


def test_a_training_step_on_onednn_equals_xlas_to_rounding(tmp_path):
    onednn, outputs_onednn = _run_steps(tmp_path, "onednn", "onednn")
    eigen, outputs_eigen = _run_steps(tmp_path, "eigen", "xla")
    assert onednn["onednn"] and not eigen["onednn"]  # the flag reached XLA, and the control really is Eigen's
    assert len(outputs_onednn) == len(outputs_eigen) > 0
    for a, b in zip(outputs_onednn, outputs_eigen):  # every output of the forward pass
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(np.abs(b).max(), 1e-6))
    # Three steps of training (the later losses see the updated parameters). Adam turns rounding-level
    # gradients (a bias before a BatchNorm) into whole steps, so parameters are compared through the losses.
    np.testing.assert_allclose(onednn["losses"], eigen["losses"], rtol=1e-5)
    np.testing.assert_allclose(onednn["grad_norms"], eigen["grad_norms"], rtol=1e-4)
