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

from input_pipeline import registry
from ta2net_jax.detection import events as events_lib
from ta2net_jax.evaluation import localisation
from ta2net_jax.evaluation.metrics import spatial as spatial_metrics, timing as metrics
from ta2net_jax.evaluation.metrics.ap import ap_metrics, average_precision, precision_recall_curve
from ta2net_jax.evaluation.metrics.counting import COUNT_MODES, count_from_events, counting_metrics

__all__ = [
    "temporal",
    "counting",
    "spatial",
    "pr_curve",
    "TEMPORAL_COLUMNS",
    "COUNTING_COLUMNS",
    "COUNTING_SUMMARY_COLUMNS",
]

TEMPORAL_COLUMNS = [
    ("id", "video"),
    ("num_gt", "GT events"),
    ("num_pred", "detected"),
    ("event_f1_tol1", "F1 ±1"),
    ("event_f1_tol2", "F1 ±2"),
    ("event_f1_tol3", "F1 ±3"),
    ("orig_f1_tol3", "orig. F ±3"),
    ("ap_tol3", "AP@±3"),
]
# Columns of a pooled counting table (one row per detector and count mode), after the row's own labels.
COUNTING_SUMMARY_COLUMNS = [
    ("count_mode", "count"),
    ("num_videos", "videos"),
    ("mae", "MAE"),
    ("obo", "OBO"),
    ("obz", "OBZ"),
    ("rmse", "RMSE"),
]
COUNTING_COLUMNS = [
    ("id", "video"),
    ("gt_count", "GT count"),
    ("gt_kind", "GT is"),
    ("pred_events", "#events"),
    ("err_events", "norm. err (events)"),
    ("pred_intervals", "#events − 1"),
    ("err_intervals", "norm. err (intervals)"),
]


def _candidates(video: dict, min_separation: int):
    """AP candidates: local peaks of the curve the detector thresholds (``candidate_scores``, e.g. the local
    prominence, else ``scores``), NMS at the video's own separation (``min_separation`` in the dict) if any."""
    curve = video.get("candidate_scores")
    curve = video["scores"] if curve is None else curve
    frames, scores = events_lib.peak_candidates(curve, min_separation=video.get("min_separation", min_separation))
    return frames, scores, video["gt_frames"]


def pr_curve(videos: list[dict], tol: int, min_separation: int) -> tuple[np.ndarray, np.ndarray]:
    return precision_recall_curve([_candidates(v, min_separation) for v in videos if v["gt_frames"] is not None], tol)


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
        rows.append(
            {
                "id": v["id"],
                "num_gt": m["num_labels_clustered"],
                "num_pred": m["num_predictions"],
                **{k: m[k] for k in ("event_f1_tol1", "event_f1_tol2", "event_f1_tol3", "orig_f1_tol3")},
                "ap_tol3": average_precision([cand], 3),
            }
        )
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


# ---- Spatial: where the map points at ground-truth events ----------------------------------------------

NUM_MAP_EXAMPLES = 6


def spatial(data_cfg, split: str, tune_split: str, tune: list[dict], test: list[dict]) -> tuple[dict, dict]:
    """The spatial protocol of `ta2net eval` on scored videos (evaluate.score_split): the map polarity chosen
    on `tune` (CCAM is unsupervised: its highest or its lowest cell, the one pointing better), then on `test`
    pointing accuracy of both polarities, the attended centroid's settings chosen on `tune` (localisation.py),
    cIoU / AUC against the colliding objects' boxes (when the dataset keeps them,
    input_pipeline.registry.raw_events_json), the chosen-cell histogram, the best constant cell and the
    inflection detector's peak pixel. Returns (eval.json's `spatial`, the cIoU samples per polarity).
    """
    frame_size = tuple(test[0]["frame_size"]) if test else (0, 0)
    pointing_tune = {p: pointing_accuracy(tune, frame_size, p) for p in ("peak", "inverted")}
    polarity = "inverted" if (pointing_tune["inverted"] or 0) > (pointing_tune["peak"] or 0) else "peak"
    cell = max(frame_size[0] / test[0]["maps"].shape[1], frame_size[1] / test[0]["maps"].shape[2]) if test else 0
    cious = {p: _ciou_samples(data_cfg, split, test, p) for p in ("peak", "inverted")}
    spatial_result = {
        "map_polarity": polarity,
        "map_polarity_chosen_on": tune_split,
        "validation_pointing_accuracy": pointing_tune,
        "pointing_accuracy": {p: pointing_accuracy(test, frame_size, p) for p in ("peak", "inverted")},
        "pointing_radius_px": cell,
        "ciou": {p: spatial_metrics.ciou_summary(cious[p]["model"]) for p in ("peak", "inverted")},
        "ciou_boxes": "union of the colliding objects' boxes (synthetic raw JSON); map resized to 224, "
        "median-binarised",
        "chosen_cell_histogram": _chosen_cells(test, polarity).round(3).tolist(),
        "constant_cell_prior": _constant_cell_pointing(tune, test, frame_size) if test and tune else None,
        "inflection_pointing_accuracy": _inflection_pointing(test, cell),
        "inflection_ciou": spatial_metrics.ciou_summary(cious["peak"]["inflection"]),
    }
    prior = spatial_result["constant_cell_prior"]
    # The attended centroid's settings are chosen on `tune` like the polarity; detect reads them from
    # detector.json (evaluate.py).
    spatial_result["attended_centroid"] = localisation.tune_centroid(tune, polarity)
    spatial_result["localisation"] = localisation.localisation(
        test, polarity, tuple(prior["cell_row_col"]) if prior else None, spatial_result["attended_centroid"]
    )
    return spatial_result, cious


def pointing_accuracy(videos: list[dict], image_size: tuple[int, int], polarity: str = "peak") -> float | None:
    """Fraction of ground-truth events (on scored frames) whose contact point lies within one map cell
    of the centre of the sound-source map's highest (``polarity="peak"``) or lowest cell at the event frame."""
    hits = total = 0
    for v in videos:
        h, t = spatial_metrics.pointing_hits(
            v["maps"], v["scores"], v["event_frames"], v["event_xy"], image_size, polarity
        )
        hits, total = hits + h, total + t
    return hits / total if total else None


def _inflection_pointing(videos: list[dict], radius: float) -> float | None:
    """Pointing accuracy of the inflection-magnitude peak pixel, within the model's cell radius (pixels)."""
    hits = total = 0
    for v in videos:
        for i, (frame, (x, y)) in enumerate(zip(v["event_frames"], v["event_xy"])):
            if 0 <= frame < len(v["inflection"]) and np.isfinite(v["inflection"][frame]):
                m = v["inflection_event_maps"][i]
                row, col = np.unravel_index(int(np.argmax(m)), m.shape)
                hits += int(np.hypot(col + 0.5 - x, row + 0.5 - y) <= radius)
                total += 1
    return hits / total if total else None


def _chosen_cells(videos: list[dict], polarity: str) -> np.ndarray:
    """Fraction of GT events (scored frames) at which each map cell is the chosen one ([h, w])."""
    counts = None
    for v in videos:
        counts = np.zeros(v["maps"].shape[1:]) if counts is None else counts
        for frame in v["event_frames"]:
            if 0 <= frame < len(v["scores"]) and np.isfinite(v["scores"][frame]):
                m = v["maps"][frame]
                counts[np.unravel_index(int(np.argmax(m) if polarity == "peak" else np.argmin(m)), m.shape)] += 1
    return counts / max(counts.sum(), 1) if counts is not None else np.zeros((0, 0))


def _constant_cell_pointing(tune: list[dict], test: list[dict], image_size) -> dict:
    """The prior: the one cell that points best on the tuning split, always; its accuracy on the test split."""

    def accuracy(videos, cell):
        const = [dict(v, maps=np.broadcast_to(cell, v["maps"].shape)) for v in videos]
        return pointing_accuracy(const, image_size, "peak")

    h, w = tune[0]["maps"].shape[1:]
    onehots = [np.eye(h * w)[i].reshape(h, w) for i in range(h * w)]
    best = max(range(h * w), key=lambda i: (accuracy(tune, onehots[i]) or 0, -i))
    return {"cell_row_col": [best // w, best % w], "pointing_accuracy": accuracy(test, onehots[best])}


def _ciou_samples(data_cfg, split: str, videos: list[dict], polarity: str) -> dict:
    """cIoU per GT event with boxes (synthetic raw JSON), for the model map and the inflection detector's map."""
    out = {"model": [], "inflection": [], "examples": []}
    for v in videos:
        raw = registry.raw_events_json(data_cfg, split, v["id"])
        if raw is None:
            continue
        event_index = {int(f): i for i, f in reversed(list(enumerate(v["event_frames"])))}
        for frame, boxes in spatial_metrics.synthetic_event_boxes(raw, tuple(v["frame_size"])):
            if not (0 <= frame < len(v["scores"]) and np.isfinite(v["scores"][frame])):
                continue
            gt = spatial_metrics.box_mask(boxes, v["frame_size"])
            m = v["maps"][frame] if polarity == "peak" else 1.0 - v["maps"][frame]
            out["model"].append(spatial_metrics.ciou(spatial_metrics.binarize_heatmap(m), gt))
            if frame in event_index:
                out["inflection"].append(
                    spatial_metrics.ciou(
                        spatial_metrics.binarize_heatmap(v["inflection_event_maps"][event_index[frame]]), gt
                    )
                )
            if len(out["examples"]) < NUM_MAP_EXAMPLES and (
                not out["examples"] or out["examples"][-1]["id"] != v["id"]
            ):
                out["examples"].append(
                    {
                        "id": v["id"],
                        "frame_index": frame,
                        "map": m,
                        "boxes": boxes,
                        "raw": raw,
                        "ciou": out["model"][-1],
                    }
                )
    return out
