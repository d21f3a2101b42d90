"""Running the PyTorch side of parity/export tests (tests/torch_ref) in its own env, through files."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PYTHON = os.path.join(REPO, ".venv-torch", "bin", "python")
REFERENCE = os.path.join(REPO, "tests", "torch_ref", "run_reference.py")


def torch_python() -> str:
    if not os.path.exists(TORCH_PYTHON):
        pytest.skip(
            "the PyTorch env .venv-torch is absent: `make torch-env` (scripts/torch_env.sh) creates it "
            "(Python 3.11 + torch 2.13.0 CPU); `make test` does so when Python 3.11 exists"
        )
    return TORCH_PYTHON


def run_reference(*args: str) -> str:
    proc = subprocess.run([torch_python(), REFERENCE, *args], capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise AssertionError(f"run_reference.py {args[0]} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def write_json(path, obj) -> str:
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def rel_error(actual, expected) -> float:
    """max |actual − expected| / max |expected|: the error relative to the array's scale."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def randomize_weights(model, seed: int, map_head_scale: float) -> None:
    """Non-trivial BatchNorm statistics and affine terms (so eval-mode BatchNorm is really compared), and
    the spatial map head scaled by `map_head_scale`: with random weights it saturates the sigmoid to
    exactly 0 or 1, which any implementation matches."""
    from ta2net_jax.export import weights

    rng = np.random.default_rng(seed)
    flat = weights.flat_state(model)
    for name, value in flat.items():
        if name.endswith(".mean") or (name.endswith(".bias") and "bn" in name):
            flat[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
        elif name.endswith(".var") or (name.endswith(".scale") and "bn" in name):
            flat[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    flat["disent.activation_head.kernel"] = flat["disent.activation_head.kernel"] * map_head_scale
    weights.load_flat_state(model, flat, source="test")
