"""benchmarks/weight_average.py: the uniform weight average of bundles fine-tuned from one model."""

import json

import numpy as np
import pytest
from benchmark_scripts import load_benchmark
from safetensors.numpy import load_file, save_file

soup = load_benchmark("weight_average")


def _member(path, scale, *, steps=7, width=3):
    path.mkdir(parents=True)
    weights = {
        "trunk/kernel": np.full((2, width), scale, np.float32),
        "bn/mean": np.array([scale, -scale], np.float32),
        "bn/count": np.array([steps], np.int32),
    }
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "ta2net-jax", "config": "{}", "step": "5"})
    (path / "config.json").write_text(json.dumps({"model": {"width": width}, "seed": scale}))
    (path / "locator").mkdir()
    (path / "locator" / "model.safetensors").write_bytes(b"locator")
    tuned = {"model_threshold": 0.5 + scale, "calibration": {"folders": {}}, "thresholds_by_flow": {"tvl1-jax": {}}}
    (path / "detector.json").write_text(json.dumps(tuned))
    return str(path)


def test_the_average_is_the_mean_of_the_members_with_the_first_ones_picking(tmp_path):
    members = [_member(tmp_path / "a", 1.0), _member(tmp_path / "b", 2.0), _member(tmp_path / "c", 6.0)]
    soup.write_average(members, str(tmp_path / "soup"))
    averaged = load_file(str(tmp_path / "soup" / "model.safetensors"))
    np.testing.assert_array_equal(averaged["trunk/kernel"], np.full((2, 3), 3.0, np.float32))
    np.testing.assert_array_equal(averaged["bn/mean"], [3.0, -3.0])
    assert averaged["bn/count"].tolist() == [7] and averaged["trunk/kernel"].dtype == np.float32
    tuned = json.loads((tmp_path / "soup" / "detector.json").read_text())
    assert tuned == {"model_threshold": 1.5}  # the first member's picking; its calibration is its own
    assert (tmp_path / "soup" / "locator" / "model.safetensors").read_bytes() == b"locator"


def test_members_of_different_models_are_refused_by_name(tmp_path):
    first = _member(tmp_path / "a", 1.0)
    with pytest.raises(ValueError, match="model configs differ"):
        soup.write_average([first, _member(tmp_path / "wide", 1.0, width=4)], str(tmp_path / "x"))
    flats = [{"w": np.zeros(2, np.float32)}, {"w": np.zeros(3, np.float32)}]
    with pytest.raises(ValueError, match=r"b: w is float32\(3,\)"):
        soup.average_weights(flats, ["a", "b"])
    with pytest.raises(ValueError, match="integer tensor that differs"):
        soup.average_weights([{"n": np.array([1])}, {"n": np.array([2])}], ["a", "b"])
    with pytest.raises(ValueError, match="other tensors"):
        soup.average_weights([{"n": np.array([1])}, {"m": np.array([1])}], ["a", "b"])
