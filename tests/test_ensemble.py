"""benchmarks/ensemble.py: the members' margins are averaged, so a false alarm of one member that the other
scores far below its threshold goes, and each candidate's offset is chosen on the tuning folders."""

import numpy as np
from benchmark_scripts import load_benchmark

from ta2net_jax.detection.events import Picking


def test_the_mean_of_two_members_drops_what_only_one_of_them_believes():
    ensemble = load_benchmark("ensemble")
    n = 60
    a, b = np.full(n, -0.5), np.full(n, -0.5)
    a[10], b[10] = 0.05, 0.25  # the contact: both above their thresholds
    a[30], b[30] = 0.3, -0.5  # a false alarm of a alone, beyond any offset of the grid (|δ| ≤ 0.1)
    a[50], b[50] = -0.3, 0.2  # and one of b alone
    video = {"video": "clip.mp4", "gt": np.array([10]), "fps": 25.0, "a": a, "b": b}
    picking = Picking(threshold=0.0, min_separation_s=0.05)
    tuned, real = {"folder": [video]}, {"set": [video]}

    for member in ("a", "b"):  # a contact and a false alarm at every offset that keeps the contact
        alone = ensemble._evaluate(tuned, real, [member], picking)
        assert round(alone["criterion"], 3) == 0.667 and alone["tune"]["folder"]["detected"] == 2
    both = ensemble._evaluate(tuned, real, ["a", "b"], picking)
    assert both["criterion"] == 1.0 and both["delta"] == 0.0 and both["real"] == {"set": [1.0]}
    assert both["tune"]["folder"]["detected"] == 1
