"""Per-frame scores -> discrete audible events, and threshold tuning (docs/original.md §12 choice 8).

Units: frame indices and separations are in frames at the clip's native rate; scores are whatever the
caller passes (P(audible) in [0, 1], a logit difference, …), compared with ``score > threshold``.

Choices made here (logged):

* A frame fires when ``score > threshold`` (strict, so ``threshold = 0.5`` on P(audible) matches argmax
  with ties going to "silent"). NaN marks an unscored frame (e.g. the first/last 2 frames of a video,
  which the original crops with ``[2:-2]``): ``NaN > t`` is False, so it never fires and it splits runs.
* Each run of consecutive firing frames is ONE event at the run's argmax (the first maximal frame on ties),
  with the peak score as its confidence (usable for AP@δ, evaluation.md §3).
* ``min_separation``: events closer than ``min_separation`` frames (|Δ| < min_separation) are merged by
  greedy non-maximum suppression: keep the highest peak, drop every event within that distance of it,
  repeat (ties: the earlier frame wins). ``min_separation = 1`` merges nothing: distinct runs are always
  >= 2 frames apart.
* ``tune_threshold`` maximises the POOLED one-to-one event F1 (``metrics.match_events``, run-clustered
  labels and predictions, as in ``metrics.evaluate_videos``) on validation videos. The default grid is 200
  linear-interpolated quantiles of the pooled finite scores (deduplicated), so it adapts to probabilities
  and to unbounded scores. Ties go to the SMALLEST threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ta2net_jax.evaluation.metrics.timing import cluster_runs, match_events, prf_from_counts

__all__ = ["pick_events", "peak_candidates", "tune_threshold", "DEFAULT_NUM_THRESHOLDS"]

DEFAULT_NUM_THRESHOLDS = 200


def _as_scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores: expected a 1-D per-frame array, got shape {s.shape}")
    return s


def pick_events(scores, threshold: float, *, min_separation: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Events from a per-frame score curve ``scores`` [N] (index = frame).

    Frames with ``score > threshold`` form runs; each run gives one event at its argmax. Events closer than
    ``min_separation`` frames are merged keeping the higher peak (greedy NMS). NaN scores never fire.
    Returns ``(frames int64 [E], peak_scores float64 [E])`` sorted by frame.
    """
    s = _as_scores(scores)
    if min_separation < 1:
        raise ValueError("min_separation must be >= 1 (frames)")
    with np.errstate(invalid="ignore"):
        fire = s > threshold  # NaN -> False
    if not fire.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    # Run boundaries from the edges of the padded boolean mask.
    edges = np.diff(np.r_[0, fire.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive
    frames = np.array([a + int(np.argmax(s[a:b])) for a, b in zip(starts, stops)], dtype=np.int64)
    frames, peaks = _nms(frames, s[frames], min_separation)
    return frames, peaks.astype(np.float64)


def _nms(frames: np.ndarray, peaks: np.ndarray, min_separation: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy NMS: keep the highest peak, drop every event closer than ``min_separation`` frames, repeat."""
    if min_separation > 1 and frames.size > 1:
        # lexsort key order: last key is primary (-peak), then frame (earlier first).
        order = np.lexsort((frames, -peaks))
        keep = np.zeros(frames.size, dtype=bool)
        alive = np.ones(frames.size, dtype=bool)
        for i in order:
            if not alive[i]:
                continue
            keep[i] = True
            alive &= np.abs(frames - frames[i]) >= min_separation
        frames, peaks = frames[keep], peaks[keep]  # boolean mask keeps frame order
    return frames, peaks


def peak_candidates(scores, *, min_separation: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Every local maximum of the score curve as a scored event candidate (for AP over thresholds).

    A frame is a candidate when its score is finite and >= its finite neighbours at ±1 frame; candidates
    closer than ``max(min_separation, 2)`` frames are merged keeping the higher one (greedy NMS, as
    ``pick_events``; 2 merges the two frames of a flat top). Returns ``(frames int64, scores float64)``.
    """
    s = _as_scores(scores)
    if s.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    padded = np.r_[-np.inf, np.where(np.isfinite(s), s, -np.inf), -np.inf]
    centre = padded[1:-1]
    is_peak = np.isfinite(s) & (centre >= padded[:-2]) & (centre >= padded[2:])
    frames = np.flatnonzero(is_peak).astype(np.int64)
    frames, peaks = _nms(frames, s[frames], max(int(min_separation), 2))
    return frames, peaks.astype(np.float64)


def _pooled_f1(
    videos: Sequence[tuple[np.ndarray, np.ndarray]], threshold: float, tol: int, min_separation: int
) -> float:
    tp = fp = fn = 0
    for s, ref in videos:
        est, _ = pick_events(s, threshold, min_separation=min_separation)
        a, b, c = match_events(ref, cluster_runs(est), tol)
        tp, fp, fn = tp + a, fp + b, fn + c
    return prf_from_counts(tp, fp, fn)[2]


def tune_threshold(
    videos: Sequence[tuple], thresholds=None, *, tol: int = 3, min_separation: int = 1
) -> tuple[float, float]:
    """Threshold maximising the pooled one-to-one event F1 at ``tol`` frames over ``videos``.

    ``videos``: list of ``(scores [N], label_frames)`` (validation split). ``thresholds``: candidate values;
    default: ``DEFAULT_NUM_THRESHOLDS`` quantiles of the pooled finite scores. Returns
    ``(best_threshold, best_f1)``; deterministic, ties -> the smallest threshold.
    """
    prepared = [(_as_scores(s), cluster_runs(lab)) for s, lab in videos]
    if thresholds is None:
        finite = np.concatenate([s[np.isfinite(s)] for s, _ in prepared]) if prepared else np.zeros(0)
        if finite.size == 0:
            raise ValueError("tune_threshold: no finite scores to build a threshold grid from")
        thresholds = np.quantile(finite, np.linspace(0.0, 1.0, DEFAULT_NUM_THRESHOLDS))
    cand = np.unique(np.asarray(thresholds, dtype=np.float64).reshape(-1))  # sorted ascending
    cand = cand[np.isfinite(cand)]
    if cand.size == 0:
        raise ValueError("tune_threshold: no finite candidate thresholds")
    best_t, best_f = float(cand[0]), -1.0
    for t in cand:  # ascending + strict '>' below => ties keep the smallest threshold
        f = _pooled_f1(prepared, float(t), tol, min_separation)
        if f > best_f:
            best_t, best_f = float(t), f
    return best_t, float(best_f)
