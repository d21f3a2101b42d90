"""AP@δ over score thresholds (metrics_ap.py) and the peak candidates it ranks (events.peak_candidates),
on hand-worked cases (../shared/docs/evaluation.md §3)."""

import numpy as np
import pytest

from ta2net_jax.detection.events import peak_candidates
from ta2net_jax.evaluation.metrics.ap import ap_metrics, average_precision, precision_recall_curve


def test_ap_hand_worked():
    # GT {10, 20}; ranked candidates (11, .9), (30, .8), (20, .7).
    # ±1: TP (p = 1/1), FP, TP (p = 2/3) → AP = (1 + 2/3) / 2 = 0.833333
    # ±0: 11 misses 10, 30 misses, 20 hits (p = 1/3) → AP = (1/3) / 2 = 0.166667
    video = ([11, 30, 20], [0.9, 0.8, 0.7], [10, 20])
    assert average_precision([video], 1) == pytest.approx(5 / 6)
    assert average_precision([video], 0) == pytest.approx(1 / 6)
    precision, recall = precision_recall_curve([video], 1)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0])


def test_ap_takes_the_closest_unmatched_ground_truth():
    # GT {10, 13}, tol 2: (12, .9) is 2 from 10 and 1 from 13 → takes 13; then (10, .5) takes 10 → AP = 1.
    # (Taking the first GT in reach instead would leave 13 to (10, .5), 3 frames away: AP = 0.5.)
    assert average_precision([([12, 10], [0.9, 0.5], [10, 13])], 2) == 1.0


def test_ap_interpolates_precision_and_counts_unfound_events():
    # GT {0, 10, 20}, ±0: (50, .9) FP, (0, .8) TP p = 1/2, (10, .7) TP p = 2/3; 20 never found.
    # interpolated [2/3, 2/3] → AP = (2/3 + 2/3 + 0) / 3 = 0.444444
    assert average_precision([([50, 0, 10], [0.9, 0.8, 0.7], [0, 10, 20])], 0) == pytest.approx(4 / 9)


def test_ap_pools_videos_and_clusters_gt_runs():
    # video A GT run 31, 32, 33 → one event at 32; video B GT {5}. Ranking: (A 32, .9) TP p 1,
    # (B 9, .8) FP at ±1, (B 5, .6) TP p 2/3 → AP = (1 + 2/3) / 2
    videos = [([32], [0.9], [31, 32, 33]), ([9, 5], [0.8, 0.6], [5])]
    assert average_precision(videos, 1) == pytest.approx(5 / 6)
    assert average_precision([([1], [1.0], [])], 1) is None  # no GT: undefined
    assert average_precision([([], [], [4])], 1) == 0.0
    m = ap_metrics(videos)
    assert set(m) == {"ap_tol0", "ap_tol1", "ap_tol2", "ap_tol3", "ap_tol4", "ap_mean_tol0124"}
    # ±4: (A 32) TP p 1/1, (B 9) is 4 from B's 5 → TP p 2/2, (B 5) FP (5 is taken) → AP = (1 + 1) / 2 = 1
    assert m["ap_tol4"] == 1.0


def test_peak_candidates():
    # local maxima ≥ both finite neighbours: frames 3 (0.5), 6 and 7 (the 0.9 flat top); NaN never counts.
    # NMS at 2 frames merges 6 and 7, keeping the earlier on the tie → frames [3, 6].
    s = [np.nan, np.nan, 0.1, 0.5, 0.2, 0.2, 0.9, 0.9, 0.3, np.nan]
    frames, scores = peak_candidates(s)
    assert frames.tolist() == [3, 6] and scores.tolist() == [0.5, 0.9]
    # a wider NMS (4 frames) also drops 3, which is 3 frames from the higher 6
    assert peak_candidates(s, min_separation=4)[0].tolist() == [6]
    assert peak_candidates([np.nan, np.nan])[0].size == 0
