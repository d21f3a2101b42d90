"""benchmarks/input_ablation.py: each ablation replaces exactly the input it names, the predictor patch is undone,
and the pooled figures count a missed contact and a false alarm."""

import numpy as np
import pytest
from benchmark_scripts import load_benchmark

from ta2net_jax import inference
from ta2net_jax.detection.events import Picking


def _windows(rng):
    return {
        "frames": rng.integers(0, 256, (2, 4, 8, 8, 3), dtype=np.uint8),
        "flow_fwd": rng.normal(size=(2, 5, 8, 8, 2)).astype(np.float32),
        "flow_bwd": rng.normal(size=(2, 5, 8, 8, 2)).astype(np.float32),
        "num_valid": np.array([4, 3]),
    }


def test_each_ablation_replaces_only_its_input():
    ablation = load_benchmark("input_ablation")
    w = _windows(np.random.default_rng(0))
    same = ablation.ablate(w, "none")
    assert all(np.array_equal(same[k], w[k]) for k in w)

    grey = ablation.ablate(w, "grey_frames")
    assert grey["frames"].dtype == np.uint8 and np.all(grey["frames"] == 128)
    assert np.array_equal(grey["flow_fwd"], w["flow_fwd"])

    static = ablation.ablate(w, "static_frames")
    assert np.array_equal(static["frames"][:, 3], w["frames"][:, 0]) and np.array_equal(
        static["frames"][:, 0], w["frames"][:, 0]
    )
    assert not np.array_equal(static["frames"], w["frames"])

    still = ablation.ablate(w, "no_motion")
    assert not still["flow_fwd"].any() and not still["flow_bwd"].any()
    assert np.array_equal(still["frames"], w["frames"])

    faster = ablation.ablate(w, "flow_x1.5")
    np.testing.assert_allclose(faster["flow_bwd"], 1.5 * w["flow_bwd"], rtol=1e-6)
    assert np.array_equal(faster["num_valid"], w["num_valid"])

    with pytest.raises(ValueError, match="unknown ablation"):
        ablation.ablate(w, "blur")


def test_the_predictor_patch_is_undone():
    ablation = load_benchmark("input_ablation")
    plain = inference.Predictor.__call__
    with pytest.raises(RuntimeError):
        with ablation.ablated("grey_frames"):
            assert inference.Predictor.__call__ is not plain
            raise RuntimeError
    assert inference.Predictor.__call__ is plain


def test_pooled_counts_a_miss_and_a_false_alarm():
    ablation = load_benchmark("input_ablation")
    scores = np.full(50, 0.1)
    scores[[10, 30]] = 0.9  # a contact found (10) and a false alarm (30)
    scores[40] = 0.4  # a contact under the threshold
    picking = Picking(threshold=0.5, min_separation_s=0.05)
    m = ablation.pooled([(scores, np.array([10, 40]), 25.0, picking)])
    assert m["detected"] == 2 and m["f1_tol3"] == pytest.approx(0.5)
    # Ranked 10 (TP), 30 (FP), 40 (TP): AP = (1 + 2/3) / 2.
    assert m["ap_tol3"] == pytest.approx((1 + 2 / 3) / 2)
