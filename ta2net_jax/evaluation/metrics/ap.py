"""AP@δ frames over score thresholds (../shared/docs/evaluation.md §3, E2E-Spot `compute_mAPs` style).

Candidates are scored events, e.g. every local peak of a video's score curve (events.peak_candidates),
so sweeping a threshold over them traces the precision-recall curve; AP needs no tuned threshold.

For a tolerance δ (frames):

1. all candidates of the split are ranked by score, highest first (ties: video order, then frame);
2. walking down the ranking, each candidate takes the **closest still-unmatched** ground-truth event of its
   own video within δ frames (a TP; ties: the earlier GT frame), otherwise it is a FP;
3. at each TP the precision so far is recorded; the precisions are made monotone (each replaced by the
   maximum at equal or higher recall) and AP = Σ interpolated precision / #GT events, i.e. the area under
   the interpolated PR curve with one recall step per GT event (unfound events contribute 0).

Ground truth is run-clustered first (metrics.cluster_runs), as for the one-to-one F1; fractional GT (audio
onsets) is rounded to the nearest frame by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ta2net_jax.evaluation.metrics.timing import cluster_runs

__all__ = ["AP_TOLERANCES", "average_precision", "ap_metrics", "precision_recall_curve"]

AP_TOLERANCES = (0, 1, 2, 3, 4)  # frames; evaluation.md §3 lists {0, 1, 2, 4}; 3 is the ±3 of the other metrics


def _ranked_matches(videos: Sequence[tuple], tol: float) -> tuple[np.ndarray, int]:
    """Per ranked candidate: True for a TP; and the number of GT events."""
    truth = [cluster_runs(gt) for _, _, gt in videos]
    total = int(sum(t.size for t in truth))
    cands = []
    for v, (frames, scores, _) in enumerate(videos):
        frames = np.asarray(frames).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if frames.shape != scores.shape:
            raise ValueError(f"video {v}: {frames.size} candidate frames but {scores.size} scores")
        cands.extend((-float(s), v, int(f)) for f, s in zip(frames, scores))
    cands.sort()
    used = [np.zeros(t.size, dtype=bool) for t in truth]
    tp = np.zeros(len(cands), dtype=bool)
    for i, (_, v, f) in enumerate(cands):
        gt = truth[v]
        if gt.size == 0:
            continue
        dist = np.abs(gt - f).astype(np.float64)
        dist[used[v] | (dist > tol)] = np.inf
        j = int(np.argmin(dist))  # first minimum: the earlier GT frame on ties
        if np.isfinite(dist[j]):
            used[v][j] = True
            tp[i] = True
    return tp, total


def precision_recall_curve(videos: Sequence[tuple], tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) after each ranked candidate (for plots). ``videos``: (frames, scores, gt)."""
    tp, total = _ranked_matches(videos, tol)
    if tp.size == 0:
        return np.zeros(0), np.zeros(0)
    hits = np.cumsum(tp)
    return hits / np.arange(1, tp.size + 1), hits / max(total, 1)


def average_precision(videos: Sequence[tuple], tol: float) -> float | None:
    """AP at ±``tol`` frames over ``videos`` = [(candidate frames, candidate scores, GT frames)], pooled.

    None when the split has no GT event (AP is undefined); 0.0 when there are GT events but no TP.
    """
    tp, total = _ranked_matches(videos, tol)
    if total == 0:
        return None
    if not tp.any():
        return 0.0
    precision_at_tp = (np.cumsum(tp) / np.arange(1, tp.size + 1))[tp]
    interpolated = np.maximum.accumulate(precision_at_tp[::-1])[::-1]
    return float(interpolated.sum() / total)


def ap_metrics(videos: Sequence[tuple], tolerances: Sequence[int] = AP_TOLERANCES) -> dict:
    """{"ap_tol{δ}": AP for each δ, "ap_mean_tol0124": mean over δ ∈ {0, 1, 2, 4} where all are defined}."""
    out = {f"ap_tol{int(k)}": average_precision(videos, k) for k in tolerances}
    standard = [out.get(f"ap_tol{k}") for k in (0, 1, 2, 4)]
    out["ap_mean_tol0124"] = float(np.mean(standard)) if all(a is not None for a in standard) else None
    return out
