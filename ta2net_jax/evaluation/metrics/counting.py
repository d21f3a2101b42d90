"""Repetition counting from audible events (../shared/docs/evaluation.md §5).

A video's predicted count is derived from its detected events; the ground-truth count is either an
annotated repetition count (RepCount-A, UCFRep: cycles) or the number of run-clustered audible-event
labels (Audible623, synthetic, audio onsets). Metrics, with ĉᵢ the predicted and cᵢ the GT count of
video i over N videos, exactly as TransRAC's test code:

    MAE  = (1/N) Σ |ĉᵢ − cᵢ| / (cᵢ + 0.1)      normalised MAE ("+0.1" is the code's convention)
    OBO  = (1/N) Σ 1[|ĉᵢ − cᵢ| ≤ 1]            off-by-one ACCURACY (higher is better)
    OBZ  = (1/N) Σ 1[ĉᵢ = cᵢ]                  exact-count accuracy
    RMSE = sqrt((1/N) Σ (ĉᵢ − cᵢ)²)

Counting mode (stated in every result): ``"events"`` counts contacts, ĉ = #events; ``"intervals"`` counts
the gaps between consecutive events, ĉ = max(#events − 1, 0), which is what a cycle count is for a clip
that starts and ends on a contact (evaluation.md §5: 13 contacts ↔ 12 UCFRep cycles).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["COUNT_MODES", "count_from_events", "counting_metrics", "per_video_counts"]

COUNT_MODES = ("events", "intervals")


def count_from_events(num_events: int, mode: str = "events") -> int:
    """Predicted repetition count from a number of detected events (see the module docstring)."""
    if mode not in COUNT_MODES:
        raise ValueError(f"count mode {mode!r} is not one of {COUNT_MODES}")
    n = int(num_events)
    if n < 0:
        raise ValueError(f"number of events must be >= 0, got {n}")
    return n if mode == "events" else max(n - 1, 0)


def counting_metrics(pred_counts: Sequence[float], gt_counts: Sequence[float]) -> dict:
    """MAE (normalised, +0.1), OBO, OBZ and RMSE over videos; see the module docstring.

    ``pred_counts``, ``gt_counts``: one count per video (same length, GT counts >= 0). Returns
    ``{"num_videos", "mae", "obo", "obz", "rmse"}``; with no videos every metric is None.
    """
    pred = np.asarray(pred_counts, dtype=np.float64).reshape(-1)
    gt = np.asarray(gt_counts, dtype=np.float64).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"counting_metrics: {pred.size} predicted counts for {gt.size} ground-truth counts")
    if gt.size and (not np.all(np.isfinite(gt)) or gt.min() < 0):
        raise ValueError("counting_metrics: ground-truth counts must be finite and >= 0")
    if pred.size and not np.all(np.isfinite(pred)):
        raise ValueError("counting_metrics: predicted counts must be finite")
    if gt.size == 0:
        return {"num_videos": 0, "mae": None, "obo": None, "obz": None, "rmse": None}
    err = np.abs(pred - gt)
    return {
        "num_videos": int(gt.size),
        "mae": float(np.mean(err / (gt + 0.1))),
        "obo": float(np.mean(err <= 1)),
        "obz": float(np.mean(err == 0)),
        "rmse": float(np.sqrt(np.mean(err**2))),
    }


def per_video_counts(num_events: Sequence[int], gt_counts: Sequence[float], mode: str = "events") -> list[dict]:
    """Per video: predicted count, GT count, absolute and normalised error, OBO hit (for the report tables)."""
    rows = []
    for n, c in zip(num_events, gt_counts):
        pred = count_from_events(n, mode)
        err = abs(pred - float(c))
        rows.append(
            {
                "pred_count": pred,
                "gt_count": float(c),
                "abs_error": float(err),
                "norm_error": float(err / (float(c) + 0.1)),
                "obo": bool(err <= 1),
            }
        )
    return rows
