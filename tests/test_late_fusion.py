"""benchmarks/late_fusion.py: the fused margin picks exactly the model's events at w = 0, and the training-free
margin adds an event the model misses once its weight lifts that frame over 0."""

import numpy as np
from benchmark_scripts import load_benchmark

from ta2net_jax.detection.events import Picking


def test_weight_zero_is_the_model_and_the_inflection_margin_adds_a_missed_contact():
    fusion = load_benchmark("late_fusion")
    n = 60
    model = np.full(n, -0.2)
    model[[0, n - 1]] = np.nan  # frames the model cannot score
    model[10] = 0.3  # a contact the model finds
    model[40] = -0.05  # one it scores just under its threshold
    inflection = np.full(n, -1.0)
    inflection[40] = 2.0  # ... which the training-free detector finds
    inflection[[0, n - 1]] = np.nan
    video = {"video": "clip.mp4", "gt": np.array([10, 40]), "fps": 25.0, "model": model, "inflection": inflection}
    picking = Picking(threshold=0.0, min_separation_s=0.05)

    alone = fusion._f1([video], 0.0, picking)
    assert (alone["detected"], alone["recall"], alone["precision"]) == (1, 0.5, 1.0)
    # 2.0 · w must beat the model's −0.05 there (w > 0.025), while elsewhere −0.2 − w stays below 0.
    assert fusion._f1([video], 0.02, picking)["detected"] == 1
    both = fusion._f1([video], 0.05, picking)
    assert (both["detected"], both["f1_tol3"]) == (2, 1.0)
