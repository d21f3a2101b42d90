"""`ta2net export` / `ta2net import-torch` round trips (docs/export.md): JAX → safetensors / torch /
stablehlo / onnx → the target runtime → the same logits and maps within 1e-4 relative error, with a
dynamic batch size; torch → JAX → torch bit-identical."""

import json
import os
import subprocess

import numpy as np
import pytest
from torch_support import REPO, randomize_weights, rel_error, run_reference, torch_python, write_json

from ta2net_jax.cli import main as cli
from ta2net_jax.config_utils import load_config
from ta2net_jax.export import exporters, torch_format, torch_names, weights
from ta2net_jax.model import build_model, model_config

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def config():
    return exporters.with_input_spec(
        load_config(os.path.join(REPO, "configs/synthetic_small.py:smoke"), ["data.num_frames=8"])
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, config):
    """A run made by `ta2net import-torch` from a checkpoint in the original's format (random weights,
    non-trivial BatchNorm statistics)."""
    tmp = tmp_path_factory.mktemp("export")
    model = build_model(config, seed=5)
    randomize_weights(model, seed=0, map_head_scale=0.1)
    state_dict = {f"module.{k}": v for k, v in weights.torch_state_dict(model, model_config(config)).items()}
    checkpoint = tmp / "original.pt"
    torch_format.save({"epoch": 40, "state_dict": state_dict}, str(checkpoint))
    workdir = tmp / "run"
    assert (
        cli.main(
            [
                "import-torch",
                str(checkpoint),
                "--config",
                os.path.join(REPO, "configs/synthetic_small.py:smoke"),
                "--workdir",
                str(workdir),
                "--config.data.num_frames=8",
            ]
        )
        == 0
    )
    return workdir


@pytest.fixture(scope="module")
def reference(run_dir, config):
    """Inputs for 3 clips and the restored JAX model's outputs on them."""
    from ta2net_jax.checkpoint import load_model_for_inference

    model, step = load_model_for_inference(config, str(run_dir))
    assert step == 0
    rng = np.random.default_rng(1)
    video, motion, inflection = (rng.uniform(size=s).astype(np.float32) for s in exporters.input_shapes(config, 3))
    logits, source_map = exporters.inference_function(model)(video, motion, inflection)
    maps = np.asarray(source_map)
    assert np.std(logits) > 1e-3 and np.mean((maps > 1e-3) & (maps < 1 - 1e-3)) > 0.5  # a real comparison
    return {
        "video": video,
        "motion": motion,
        "inflection": inflection,
        "logits": np.asarray(logits),
        "source_map": np.asarray(source_map),
    }


def _export(run_dir, fmt, out):
    assert cli.main(["export", "--workdir", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    assert os.path.getsize(out) > 0


def _assert_close(outputs, reference, batch=slice(None)):
    for name in ("logits", "source_map"):
        assert outputs[name].shape == reference[name][batch].shape, name
        assert rel_error(outputs[name], reference[name][batch]) < TOLERANCE, name


def test_safetensors_has_every_weight_and_the_config(run_dir, config, reference, tmp_path):
    out = tmp_path / "model.safetensors"
    _export(run_dir, "safetensors", out)
    loaded_config, flat = exporters.load_safetensors(str(out))
    assert loaded_config.model.to_dict() == json.loads(config.to_json_best_effort())["model"]
    model = build_model(loaded_config)
    assert set(flat) == set(weights.flat_state(model))  # params and BatchNorm statistics
    assert any(k.endswith(".var") for k in flat) and "sim_decoder.conv3d.kernel" in flat
    weights.load_flat_state(model, flat, source=str(out))
    logits, maps = exporters.inference_function(model)(reference["video"], reference["motion"], reference["inflection"])
    _assert_close({"logits": np.asarray(logits), "source_map": np.asarray(maps)}, reference)


def test_stablehlo_deserialises_and_runs_any_batch(run_dir, reference, tmp_path):
    out = tmp_path / "model.stablehlo"
    _export(run_dir, "stablehlo", out)
    exported = exporters.load_stablehlo(str(out))
    for batch in (slice(None), slice(0, 1)):  # symbolic batch: 3 clips, then 1
        logits, maps = exported.call(
            reference["video"][batch], reference["motion"][batch], reference["inflection"][batch]
        )
        _assert_close({"logits": np.asarray(logits), "source_map": np.asarray(maps)}, reference, batch)


def test_torch_export_runs_in_pytorch(run_dir, config, reference, tmp_path):
    torch_python()
    out = tmp_path / "model.pt"
    _export(run_dir, "torch", out)
    cfg = write_json(tmp_path / "model.json", model_config(config).to_dict())
    report = json.loads(run_reference("load", "--config", cfg, "--weights", str(out)))
    assert report == {"missing": [], "unexpected": []}  # strict=True (this config has no layer4/fc)
    np.savez(tmp_path / "inputs.npz", **{k: reference[k] for k in ("video", "motion", "inflection")})
    run_reference(
        "forward",
        "--config",
        cfg,
        "--weights",
        str(out),
        "--inputs",
        str(tmp_path / "inputs.npz"),
        "--out",
        str(tmp_path / "torch.npz"),
    )
    with np.load(tmp_path / "torch.npz") as f:
        _assert_close({k: f[k] for k in ("logits", "source_map")}, reference)


def test_torch_export_refuses_trunks_the_original_cannot_run(config, tmp_path):
    fine = config.copy_and_resolve_references()
    fine.model.trunk.strides = (1, 2, 1)
    with pytest.raises(ValueError, match=r"strides is \(1, 2, 1\)"):
        exporters.export_torch(build_model(fine), fine, str(tmp_path / "model.pt"))
    assert not (tmp_path / "model.pt").exists()


def test_torch_to_jax_to_torch_is_lossless(run_dir, tmp_path):
    out = tmp_path / "back.pt"
    _export(run_dir, "torch", out)
    original = torch_names.strip_data_parallel(torch_format.load(str(run_dir.parent / "original.pt"))["state_dict"])
    back = torch_format.load(str(out))
    assert set(back) == set(original)
    for key, value in original.items():
        if key.endswith("num_batches_tracked"):
            continue  # not kept by flax (exported as 0); docs/export.md
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


def test_onnx_runs_in_onnxruntime_with_a_dynamic_batch(run_dir, reference, tmp_path):
    if not os.path.exists(exporters.ONNX_PYTHON):
        pytest.skip(
            "the ONNX env .venv-onnx is absent: `make onnx-env` creates it (jax2onnx pins an older "
            "orbax-checkpoint, so ONNX export has its own environment)"
        )
    out = tmp_path / "model.onnx"
    _export(run_dir, "onnx", out)
    env = dict(os.environ, PYTHONPATH=REPO)
    for batch in (slice(None), slice(0, 1)):
        np.savez(tmp_path / "inputs.npz", **{k: reference[k][batch] for k in ("video", "motion", "inflection")})
        subprocess.run(
            [
                exporters.ONNX_PYTHON,
                "-m",
                "ta2net_jax.export.onnx_convert",
                "run",
                str(out),
                str(tmp_path / "inputs.npz"),
                str(tmp_path / "onnx.npz"),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        with np.load(tmp_path / "onnx.npz") as f:
            _assert_close({k: f[k] for k in ("logits", "source_map")}, reference, batch)


def test_user_errors_name_the_problem(run_dir, tmp_path, capsys):
    assert (
        cli.main(
            ["export", "--workdir", str(tmp_path / "nowhere"), "--format", "torch", "--out", str(tmp_path / "x.pt")]
        )
        == 1
    )
    assert "nowhere/config.json: not found" in capsys.readouterr().err
    paper = os.path.join(REPO, "configs/audible623.py:smoke")
    assert (
        cli.main(
            [
                "import-torch",
                str(run_dir.parent / "original.pt"),
                "--config",
                paper,
                "--workdir",
                str(tmp_path / "paper"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "original.pt: does not match this model configuration" in err
    assert (
        cli.main(
            [
                "import-torch",
                str(run_dir.parent / "original.pt"),
                "--config",
                os.path.join(REPO, "configs/synthetic_small.py:smoke"),
                "--workdir",
                str(run_dir),
                "--config.data.num_frames=8",
            ]
        )
        == 1
    )
    assert "already has a checkpoint at step 0" in capsys.readouterr().err
