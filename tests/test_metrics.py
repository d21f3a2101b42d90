"""Hand-worked checks of ta2net_jax.evaluation.metrics.timing (evaluation.md §1–2). All positions are frames."""

import json
import os

import numpy as np
import pytest

from ta2net_jax.evaluation.metrics.timing import cluster_runs, evaluate_videos, match_events, original_metrics

# v_SoccerJuggling_g23_c01 (Audible623 train labels, 240 frames @ 29.97 fps): 19 labelled frames forming
# 13 contacts; runs 31–33, 110–112, 183–184, 237–238 (evaluation.md §1, §7).
SOCCER_LABELS = np.array([12, 31, 32, 33, 53, 72, 96, 110, 111, 112, 132, 150, 164, 183, 184, 204, 222, 237, 238])
SOCCER_NUM_FRAMES = 240
# One prediction per contact centre, run centre = floor((first + last) / 2): 31–33 -> 32, 110–112 -> 111,
# 183–184 -> 183, 237–238 -> 237.
SOCCER_CENTRES = np.array([12, 32, 53, 72, 96, 111, 132, 150, 164, 183, 204, 222, 237])
REALDATA_LABELS = "/work/shared/realdata/ucf101_audible623/labels.json"


# ---------------------------------------------------------------- original (many-to-one) metric


def test_original_empty_gives_zeros():
    zeros = dict(recall=0.0, precision=0.0, f1=0.0, num_error=0.0, pos_error=0.0)
    assert original_metrics([], [10, 20]) == zeros
    assert original_metrics([10], []) == zeros
    assert original_metrics([], []) == zeros
    # n1 == 0: the only prediction is 50 frames from the only label -> zeros as well (not R = 0, P = 0 …).
    assert original_metrics([60], [10]) == zeros


def test_original_exact_hits():
    m = original_metrics([10, 20, 30], [10, 20, 30])
    assert m == dict(recall=1.0, precision=1.0, f1=1.0, num_error=0.0, pos_error=0.0)


def test_original_one_prediction_finds_two_labels():
    # Labels 10 and 14 (4 apart), one prediction at 12: |12-10| = 2 <= 3 and |12-14| = 2 <= 3, so
    # n1 = 2 (both labels found), n2 = 1, FP = 1 - 1 = 0 -> R = 2/2, P = 2/(2+0) = 1, F = 1.
    # A one-to-one matching would give R = 1/2.
    m = original_metrics([12], [10, 14])
    assert m["recall"] == 1.0 and m["precision"] == 1.0 and m["f1"] == 1.0
    assert m["num_error"] == 0.0
    assert m["pos_error"] == 2.0  # mean(2, 2)
    assert match_events([10, 14], [12], 3) == (1, 0, 1)


def test_original_two_predictions_hit_one_label():
    # One label at 20, predictions 18 and 22: both within 3 -> n2 = 2, FP = 0; n1 = 1 -> R = P = F = 1.
    m = original_metrics([18, 22], [20])
    assert m["recall"] == 1.0 and m["precision"] == 1.0 and m["f1"] == 1.0
    assert m["pos_error"] == 2.0
    assert match_events([20], [18, 22], 3) == (1, 1, 0)  # one-to-one: the second prediction is a FP


def test_original_precision_mixes_counts():
    # Labels 10, 14, 40; predictions 12, 60, 80.
    # n1 = 2 (10 and 14 found by 12; 40 not found), n2 = 1 (only 12 hits), so
    # TP = 2, FN = 1, FP = 3 - 1 = 2 -> R = 2/3, P = 2/(2+2) = 1/2, F = 2*(1/2)*(2/3)/(1/2+2/3) = 4/7.
    m = original_metrics([12, 60, 80], [10, 14, 40])
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["num_error"] == 1.0
    assert m["pos_error"] == pytest.approx(2.0)


def test_original_pos_error_and_order_independence():
    # Labels 100, 200, 300; predictions 101, 203 (300 missed).
    # found: 100 (dist 1), 200 (dist 3) -> pos_error = (1+3)/2 = 2; R = 2/3, P = 2/2.
    m = original_metrics([203, 101], [300, 100, 200])  # unsorted input is fine
    assert m["pos_error"] == pytest.approx(2.0)
    assert m["recall"] == pytest.approx(2 / 3) and m["precision"] == 1.0
    assert m["num_error"] == 1.0


def test_original_tolerance_boundary():
    assert original_metrics([13], [10])["recall"] == 1.0  # distance 3 counts
    assert original_metrics([14], [10])["recall"] == 0.0  # distance 4 does not
    assert original_metrics([7], [10])["f1"] == 1.0  # symmetric: -3 counts
    assert original_metrics([14], [10], tol=4)["f1"] == 1.0


def test_original_keeps_duplicates_like_the_original():
    # Labels [61, 61] (a duplicate index as in fVU85a0AhQI) and one prediction at 61:
    # the original counts the label twice -> n1 = 2, |label| = 2, R = 1, P = 2/(2+0) = 1.
    m = original_metrics([61], [61, 61])
    assert m["recall"] == 1.0 and m["precision"] == 1.0


# ---------------------------------------------------------------- worked example (evaluation.md §1)


def test_soccer_labels_match_realdata_file():
    if not os.path.exists(REALDATA_LABELS):
        pytest.skip("shared realdata labels.json not present")
    with open(REALDATA_LABELS) as f:
        d = json.load(f)["v_SoccerJuggling_g23_c01"]
    assert d["audible623"]["frames"] == SOCCER_LABELS.tolist()
    assert d["n_frames_decoded"] == SOCCER_NUM_FRAMES


def test_worked_example_contact_centres():
    import mir_eval

    assert SOCCER_LABELS.size == 19 and SOCCER_CENTRES.size == 13
    np.testing.assert_array_equal(cluster_runs(SOCCER_LABELS), SOCCER_CENTRES)
    # Original metric: every label is within 1 frame of a centre, every centre hits -> R = P = F = 1.
    m = original_metrics(SOCCER_CENTRES, SOCCER_LABELS)
    assert (m["recall"], m["precision"], m["f1"]) == (1.0, 1.0, 1.0)
    # One-to-one on RAW labels: 13 matches of 19 -> R = 13/19 ≈ 0.684, P = 1, F = 26/32 = 0.8125 ≈ 0.81.
    f, p, r = mir_eval.onset.f_measure(SOCCER_LABELS.astype(float), SOCCER_CENTRES.astype(float), window=3)
    assert r == pytest.approx(13 / 19) and round(r, 2) == 0.68
    assert p == 1.0
    assert f == pytest.approx(0.8125) and round(f, 2) == 0.81
    assert match_events(SOCCER_LABELS, SOCCER_CENTRES, 3) == (13, 0, 6)
    # After clustering the label runs: 13 vs 13, all matched -> F = 1.
    assert match_events(cluster_runs(SOCCER_LABELS), SOCCER_CENTRES, 3) == (13, 0, 0)
    out = evaluate_videos([(SOCCER_CENTRES, SOCCER_LABELS)])
    assert out["event_f1_tol3"] == 1.0 and out["orig_f1_tol3"] == 1.0


def test_worked_example_every_frame():
    pred = np.arange(SOCCER_NUM_FRAMES)
    # 95 of the 240 frames lie within ±3 of a label: n2 = 95, n1 = 19, FP = 240 - 95 = 145.
    within = (np.abs(pred[:, None] - SOCCER_LABELS[None, :]).min(axis=1) <= 3).sum()
    assert within == 95
    m = original_metrics(pred, SOCCER_LABELS)
    assert m["recall"] == 1.0
    assert m["precision"] == pytest.approx(19 / 164) and round(m["precision"], 3) == 0.116
    assert m["f1"] == pytest.approx(2 * (19 / 164) / (1 + 19 / 164)) and round(m["f1"], 2) == 0.21
    assert m["pos_error"] == 0.0 and m["num_error"] == 0.0
    # The run-clustered view sees a single predicted event (frame (0 + 239) // 2 = 119): 0 hits at tol 3.
    np.testing.assert_array_equal(cluster_runs(pred), [119])


# ---------------------------------------------------------------- clustering and one-to-one matching


def test_cluster_runs():
    assert cluster_runs([]).tolist() == []
    assert cluster_runs([5]).tolist() == [5]
    # unsorted, with a duplicate; runs 3–5 -> 4, 9 -> 9, 11–12 -> 11 (floor of 11.5), 20–23 -> 21
    assert cluster_runs([12, 5, 3, 4, 4, 9, 11, 20, 21, 22, 23]).tolist() == [4, 9, 11, 21]
    assert cluster_runs(np.array([7.0, 8.0])).tolist() == [7]  # whole-number floats accepted
    assert cluster_runs([10, 12]).tolist() == [10, 12]  # a gap of one frame is not a run
    assert cluster_runs([10, 11]).dtype == np.int64
    with pytest.raises(ValueError):
        cluster_runs([1.5])


def test_match_events_tolerances():
    ref, est = [10, 20, 30], [11, 22, 33]  # offsets 1, 2, 3
    assert match_events(ref, est, 1) == (1, 2, 2)
    assert match_events(ref, est, 2) == (2, 1, 1)
    assert match_events(ref, est, 3) == (3, 0, 0)
    assert match_events([], [5], 3) == (0, 1, 0)
    assert match_events([5], [], 3) == (0, 0, 1)
    assert match_events([], [], 3) == (0, 0, 0)


def test_match_events_bipartite_beats_greedy():
    # ref 10, 13; est 12, 15; window 2. Greedy nearest-first would give est 12 to ref 13 (distance 1),
    # leaving est 15 with no free ref (|15-10| = 5) -> 1 match. The maximum matching pairs 10–12 and 13–15
    # (both distance 2) -> 2 matches.
    ref, est = [10, 13], [12, 15]
    assert match_events(ref, est, 2) == (2, 0, 0)
    assert match_events(ref, est, 1) == (1, 1, 1)  # only 13–12 is within 1
    assert match_events(ref, est, 3) == (2, 0, 0)


# ---------------------------------------------------------------- split-level aggregation


def test_evaluate_videos_pooled_vs_video_mean():
    # Video A: labels 10, 50, 90 (clustered: same); predictions 10, 52, 200.
    #   tol 1: 10 hit; 52 is 2 away -> TP 1, FP 2, FN 2 -> F = 2/(2+2+2) = 1/3
    #   tol 2/3: TP 2, FP 1, FN 1 -> F = 4/6 = 2/3
    # Video B: labels 5, 6, 7 (one run -> 6); predictions 6, 30 -> TP 1, FP 1, FN 0 -> F = 2/3 at all tol.
    # Pooled tol 3: TP 3, FP 2, FN 1 -> P = 3/5, R = 3/4, F = 6/(6+3) = 2/3; video mean = (2/3+2/3)/2.
    # Pooled tol 1: TP 2, FP 3, FN 2 -> P = 2/5, R = 1/2, F = 4/9; video mean = (1/3 + 2/3)/2 = 1/2.
    videos = [([10, 52, 200], [10, 50, 90]), ([6, 30], [5, 6, 7])]
    out = evaluate_videos(videos)
    assert out["num_videos"] == 2
    assert out["event_precision_tol3"] == pytest.approx(3 / 5)
    assert out["event_recall_tol3"] == pytest.approx(3 / 4)
    assert out["event_f1_tol3"] == pytest.approx(2 / 3)
    assert out["event_f1_tol3_video_mean"] == pytest.approx(2 / 3)
    assert out["event_precision_tol1"] == pytest.approx(2 / 5)
    assert out["event_recall_tol1"] == pytest.approx(1 / 2)
    assert out["event_f1_tol1"] == pytest.approx(4 / 9)
    assert out["event_f1_tol1_video_mean"] == pytest.approx(1 / 2)
    assert out["num_labels_clustered"] == 4 and out["num_predictions"] == 5
    assert out["num_labels_raw"] == 6 and out["num_predictions_raw"] == 5
    # Original metric on RAW frames, mean over videos:
    #   A: n1 = 2 (10, 50), n2 = 2 -> R = 2/3, P = 2/(2+1) = 2/3, F = 2/3.
    #   B: n1 = 3 (5, 6, 7 all within 1 of 6), n2 = 1 -> R = 1, P = 3/(3+1) = 3/4, F = 6/7.
    assert out["orig_recall_tol3"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["orig_precision_tol3"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert out["orig_f1_tol3"] == pytest.approx((2 / 3 + 6 / 7) / 2)
    json.dumps(out)  # JSON-ready


def test_evaluate_videos_empty_video_conventions():
    # Video with no labels and no predictions: per-video F1 = 1 (documented), original metric = zeros.
    # Video with labels but no predictions: F1 = 0.
    out = evaluate_videos([([], []), ([], [10])], tolerances=(3,))
    assert out["event_f1_tol3_video_mean"] == pytest.approx(0.5)
    assert out["event_f1_tol3"] == 0.0 and out["event_recall_tol3"] == 0.0
    assert out["orig_f1_tol3"] == 0.0
    assert "event_f1_tol1" not in out
    # Run-clustering of predictions: 3 adjacent predicted frames near one label are ONE event (no FP).
    out = evaluate_videos([([19, 20, 21], [20])])
    assert out["event_precision_tol1"] == 1.0 and out["num_predictions"] == 1
