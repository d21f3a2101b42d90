"""Hand-worked checks of ta2net_jax.detection.events (score -> events, threshold tuning) and
ta2net_jax.evaluation.plots."""

import numpy as np
import pytest

from ta2net_jax.detection.events import Picking, best_threshold, pick_events, tune_picking
from ta2net_jax.evaluation.plots import plot_timeline

NAN = np.nan


def test_pick_events_runs_and_argmax():
    # frame:   0    1    2    3    4    5    6    7    8    9
    s = [0.1, 0.6, 0.9, 0.7, 0.2, 0.5, 0.8, 0.8, 0.3, 0.6]
    # > 0.5: runs 1–3 (peak 0.9 at 2), 6–7 (tie 0.8 -> first, 6), 9 (0.6). Frame 5 (= 0.5) is not > 0.5.
    frames, peaks = pick_events(s, 0.5)
    assert frames.tolist() == [2, 6, 9]
    assert peaks.tolist() == [0.9, 0.8, 0.6]
    assert frames.dtype == np.int64 and peaks.dtype == np.float64


def test_pick_events_nothing_fires():
    frames, peaks = pick_events([0.1, 0.2, NAN], 0.5)
    assert frames.size == 0 and peaks.size == 0
    assert pick_events([], 0.5)[0].size == 0


def test_pick_events_nan_never_fires_and_splits_runs():
    # Unscored border frames (NaN) never fire; a NaN inside a run splits it into two runs.
    s = [NAN, NAN, 0.9, 0.8, NAN, 0.7, 0.95, NAN, NAN]
    frames, peaks = pick_events(s, 0.5)
    assert frames.tolist() == [2, 6]
    assert peaks.tolist() == [0.9, 0.95]
    assert pick_events(s, -np.inf)[0].tolist() == [2, 6]  # even the lowest threshold ignores NaN


def test_pick_events_min_separation():
    # Runs 0 (0.8), 3 (0.9), 6 (0.85), 20 (0.6); all single frames.
    s = np.zeros(25)
    s[[0, 3, 6, 20]] = [0.8, 0.9, 0.85, 0.6]
    assert pick_events(s, 0.5)[0].tolist() == [0, 3, 6, 20]  # min_separation=1 merges nothing
    # min_separation 3: |0-3| = 3 and |3-6| = 3 are not < 3 -> nothing merged.
    assert pick_events(s, 0.5, min_separation=3)[0].tolist() == [0, 3, 6, 20]
    # min_separation 4: highest peak 3 (0.9) suppresses 0 and 6 (3 frames away); 20 stays.
    frames, peaks = pick_events(s, 0.5, min_separation=4)
    assert frames.tolist() == [3, 20] and peaks.tolist() == [0.9, 0.6]
    # NMS, not chaining: with 0 (0.9), 3 (0.8), 6 (0.95) and min_separation 4, 6 suppresses 3, then 0
    # survives (6 frames from 6) -> [0, 6].
    s2 = np.zeros(10)
    s2[[0, 3, 6]] = [0.9, 0.8, 0.95]
    assert pick_events(s2, 0.5, min_separation=4)[0].tolist() == [0, 6]
    # Equal peaks: the earlier frame wins.
    s3 = np.zeros(10)
    s3[[2, 4]] = 0.7
    assert pick_events(s3, 0.5, min_separation=3)[0].tolist() == [2]
    with pytest.raises(ValueError):
        pick_events(s, 0.5, min_separation=0)


def _planted_video(n, labels, pos=0.8, neg=0.3, rng=None):
    """Scores: `pos` at label frames, `neg` (+ tiny deterministic jitter below 0.05) elsewhere; NaN borders."""
    s = np.full(n, neg) + (rng.uniform(0, 0.05, n) if rng is not None else 0.0)
    s[labels] = pos
    s[:2] = NAN
    s[-2:] = NAN
    return s, labels


def tune_threshold(videos, thresholds=None):
    """The threshold and pooled F1 that events.tune_picking chooses for the plain picking (runs above the
    threshold, no separation, no prominence) over (scores, labels) at 25 fps."""
    picking, f1 = tune_picking([(s, lab, 25.0) for s, lab in videos], Picking(threshold=0.0), thresholds=thresholds)
    return picking.threshold, f1


def test_tune_threshold_separates_planted_positives():
    rng = np.random.default_rng(0)
    videos = [_planted_video(100, [10, 40, 70], rng=rng), _planted_video(80, [20, 50], rng=rng)]
    t, f = tune_threshold(videos)
    # Every negative is < 0.35 and every positive is 0.8: any t in [max negative, 0.8) gives F1 = 1
    # (a slightly lower t may also, when the only negatives above it sit next to a label and merge into
    # its run). So check the property itself: at t exactly the planted frames come out.
    assert f == 1.0
    assert t < 0.8
    for s, lab in videos:
        assert pick_events(s, t)[0].tolist() == lab
    # With the grid given explicitly: 0.1 fires everywhere (one long run per stretch -> poor F1),
    # 0.5 and 0.6 both separate perfectly -> tie -> the smallest, 0.5.
    t, f = tune_threshold(videos, thresholds=[0.6, 0.1, 0.5])
    assert (t, f) == (0.5, 1.0)


def test_tune_threshold_ties_to_smallest_and_unbounded_scores():
    # Logit-like scores far outside [0, 1]; labels at 5 and 15 with score 10, background -10.
    s = np.full(20, -10.0)
    s[[5, 15]] = 10.0
    t, f = tune_threshold([(s, [5, 15])])
    # The quantile grid contains exactly two distinct values, -10 and 10; -10 separates (F1 = 1),
    # 10 fires nothing (F1 = 0).
    assert (t, f) == (-10.0, 1.0)
    # All-tied candidates: the smallest wins.
    t, f = tune_threshold([(s, [5, 15])], thresholds=[3.0, -5.0, 0.0])
    assert (t, f) == (-5.0, 1.0)
    with pytest.raises(ValueError, match="no finite scores"):
        tune_threshold([(np.full(5, NAN), [1])])
    with pytest.raises(ValueError, match="no finite candidate"):
        tune_threshold([(s, [5, 15])], thresholds=[NAN])


def _check_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > min_bytes
    # IHDR width/height (big-endian) at bytes 16–24: 1400 x 400 px.
    assert int.from_bytes(data[16:20], "big") == 1400
    assert int.from_bytes(data[20:24], "big") == 400


def test_best_threshold_sorts_drops_non_finite_and_ties_to_smallest():
    seen = []

    def score(t):
        seen.append(t)
        return {0.1: 0.2, 0.3: 0.7, 0.5: 0.7, 0.9: 0.4}[t]

    best, value, tried = best_threshold([0.9, np.nan, 0.5, 0.3, 0.1, np.inf, 0.3], score)
    assert (best, value) == (0.3, 0.7)  # 0.3 and 0.5 tie: the smaller threshold
    assert seen == [0.1, 0.3, 0.5, 0.9]  # each finite candidate once, ascending
    assert tried == {0.1: 0.2, 0.3: 0.7, 0.5: 0.7, 0.9: 0.4}
    with pytest.raises(ValueError, match="no finite candidate"):
        best_threshold([np.nan, -np.inf], score)


def test_plot_timeline_writes_png(tmp_path):
    rng = np.random.default_rng(1)
    s = rng.uniform(0, 0.4, 240)
    labels = [12, 31, 32, 33, 53, 72, 96]
    s[labels] = 0.9
    s[:2] = NAN
    frames, _ = pick_events(s, 0.5)
    p1 = tmp_path / "with_labels.png"
    plot_timeline(
        p1,
        s,
        fps=29.97,
        events=frames,
        labels=labels,
        threshold=0.5,
        title="soccer",
        extra_curves={"smoothed": np.convolve(np.nan_to_num(s), np.ones(5) / 5, "same")},
    )
    _check_png(p1)
    p2 = tmp_path / "sub" / "no_labels.png"  # parent directory is created
    plot_timeline(p2, s * 20 - 10, fps=25.0, events=frames)  # unbounded scores, no labels/threshold
    _check_png(p2)
