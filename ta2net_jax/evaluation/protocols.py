"""The temporal and counting protocols over a list of scored videos, shared by `ta2net eval` (synthetic
splits) and `ta2net eval-videos` (real clips with label files).

A scored video is a dict with ``id``, ``scores`` [N] (NaN = unscored), ``events`` (detected frames),
``gt_frames`` (raw GT event frames, or None when the video has only a count) and ``gt_count`` (the GT
repetition count: an annotated count, else the number of run-clustered GT events; None if neither).

Temporal (videos with ``gt_frames``): the original ±3 metric, one-to-one F1 at ±1/2/3 (metrics.py), and
AP@δ over the local peaks of the score curve (metrics_ap.py). Counting (videos with ``gt_count``):
MAE / OBO / OBZ / RMSE (metrics_counting.py) for both counting modes, "events" and "intervals".
"""
from __future__ import annotations

import numpy as np

from ta2net_jax.detection import events as events_lib
from ta2net_jax.evaluation.metrics import timing as metrics
from ta2net_jax.evaluation.metrics.ap import ap_metrics, average_precision, precision_recall_curve
from ta2net_jax.evaluation.metrics.counting import COUNT_MODES, count_from_events, counting_metrics

__all__ = ["temporal", "counting", "pr_curve", "TEMPORAL_COLUMNS", "COUNTING_COLUMNS"]

TEMPORAL_COLUMNS = [("id", "video"), ("num_gt", "GT events"), ("num_pred", "detected"),
                    ("event_f1_tol1", "F1 ±1"), ("event_f1_tol2", "F1 ±2"), ("event_f1_tol3", "F1 ±3"),
                    ("orig_f1_tol3", "orig. F ±3"), ("ap_tol3", "AP@±3")]
COUNTING_COLUMNS = [("id", "video"), ("gt_count", "GT count"), ("gt_kind", "GT is"), ("pred_events", "#events"),
                    ("err_events", "norm. err (events)"), ("pred_intervals", "#events − 1"),
                    ("err_intervals", "norm. err (intervals)")]


def _candidates(video: dict, min_separation: int):
    frames, scores = events_lib.peak_candidates(video["scores"], min_separation=min_separation)
    return frames, scores, video["gt_frames"]


def pr_curve(videos: list[dict], tol: int, min_separation: int) -> tuple[np.ndarray, np.ndarray]:
    return precision_recall_curve([_candidates(v, min_separation) for v in videos if v["gt_frames"] is not None],
                                  tol)


def temporal(videos: list[dict], min_separation: int) -> tuple[dict, list[dict]]:
    """(pooled metrics, per-video rows) over the videos that have GT event frames."""
    labelled = [v for v in videos if v["gt_frames"] is not None]
    if not labelled:
        return {"num_videos": 0}, []
    pooled = metrics.evaluate_videos([(v["events"], v["gt_frames"]) for v in labelled])
    cands = [_candidates(v, min_separation) for v in labelled]
    pooled.update(ap_metrics(cands))
    rows = []
    for v, cand in zip(labelled, cands):
        m = metrics.evaluate_videos([(v["events"], v["gt_frames"])])
        rows.append({"id": v["id"], "num_gt": m["num_labels_clustered"], "num_pred": m["num_predictions"],
                     **{k: m[k] for k in ("event_f1_tol1", "event_f1_tol2", "event_f1_tol3", "orig_f1_tol3")},
                     "ap_tol3": average_precision([cand], 3)})
    return pooled, rows


def counting(videos: list[dict]) -> tuple[dict, list[dict]]:
    """({mode: counting metrics}, per-video rows) over the videos with a GT count."""
    counted = [v for v in videos if v.get("gt_count") is not None]
    out, rows = {}, []
    for mode in COUNT_MODES:
        pred = [count_from_events(len(v["events"]), mode) for v in counted]
        out[mode] = {"count_mode": mode, **counting_metrics(pred, [v["gt_count"] for v in counted])}
    for v in counted:
        row = {"id": v["id"], "gt_count": float(v["gt_count"]), "gt_kind": v.get("gt_count_kind", "events")}
        for mode in COUNT_MODES:
            c = count_from_events(len(v["events"]), mode)
            row[f"pred_{mode}"] = c
            row[f"err_{mode}"] = abs(c - row["gt_count"]) / (row["gt_count"] + 0.1)
        rows.append(row)
    return out, rows


def gt_count(gt_frames, annotated_count=None) -> tuple[float | None, str | None]:
    """(count, kind): the annotated repetition count ("cycles") if any, else #run-clustered GT events."""
    if annotated_count is not None:
        return float(annotated_count), "cycles"
    if gt_frames is None:
        return None, None
    return float(metrics.cluster_runs(gt_frames).size), "events"
