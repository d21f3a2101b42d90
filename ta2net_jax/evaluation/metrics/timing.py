"""Event-timing metrics for audible-action detection (docs: ../shared/docs/evaluation.md §1–2, §8).

All positions and tolerances are in **frames at the clip's native rate** (Audible623 mixes 25, 29.97 and
≈ 30 fps, so ±3 frames is ±0.10–0.12 s). Nothing here needs JAX; it runs on numpy (+ mir_eval for the
one-to-one matching).

Two families of metrics are reported side by side:

* ``original_metrics``: a faithful re-implementation of ``metrics(pred, label)`` in ``trainer/train_util.py``
  of WenlongWan/Audible623 (±3 frames, **many-to-one**: one prediction may "find" several labels, several
  predictions may hit one label; precision mixes label and prediction counts). It is applied to the RAW
  frame arrays exactly as the original would see them: unsorted, duplicates kept, label runs not merged.
* one-to-one event P/R/F1 (``match_events``, ``evaluate_videos``): maximum bipartite matching
  (``mir_eval.util.match_events``) at ±1/±2/±3 frames, on **run-clustered** labels and predictions.

Choices made here (logged, see docs/original.md §12 choices 8–9):

* Run clustering (``cluster_runs``): a run of consecutive frames ``a, a+1, …, b`` becomes ONE event at
  ``(a + b) // 2`` (floor of the mean of first and last frame). For an even-length run this is the lower of
  the two middle frames, e.g. 183–184 -> 183, 237–238 -> 237. Same rule for labels and predictions.
* Aggregation: both POOLED (sum TP/FP/FN over the split, then P/R/F1) and the MEAN over videos of per-video F1.
* Empty cases of the one-to-one metric: a video (or split) with no labels and no predictions has
  P = R = F1 = 1.0 (nothing to find, nothing wrongly claimed); otherwise a zero denominator gives 0.0
  (``mir_eval.onset.f_measure`` convention), so labels without predictions give R = P = F1 = 0.
* ``orig_*`` in ``evaluate_videos`` is the plain mean over ALL videos of ``original_metrics``; videos for
  which the original returns all zeros (no predictions, no labels, or nothing found) count as zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["original_metrics", "cluster_runs", "match_events", "evaluate_videos", "prf_from_counts"]

ORIGINAL_TOL = 3  # frames; hard-coded in the original metrics()


def _as_frames(x, name: str) -> np.ndarray:
    """1-D numeric array of frame positions (frames) from a list, tuple or array; rejects scalars, N-D, NaN."""
    a = np.asarray(x)
    if a.ndim == 0:
        raise ValueError(f"{name}: expected a 1-D array of frame indices, got a scalar")
    a = a.reshape(-1) if a.size == 0 else a
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of frame indices, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name}: expected numeric frame indices, got dtype {a.dtype}")
    if a.size and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: frame indices must be finite")
    # An empty list becomes float64; keep it usable as an int array.
    return a.astype(np.int64) if a.size == 0 else a


def original_metrics(pred, label, tol: int = ORIGINAL_TOL) -> dict:
    """The original Audible623 metric for one video (evaluation.md §1), tolerance ``tol`` frames.

    ``pred``, ``label``: 1-D arrays of frame indices, used as given (no sorting, deduplication or run
    merging, matching the original). Returns a dict with keys ``recall``, ``precision``, ``f1``,
    ``num_error`` (= FN = |label| - n1, a count) and ``pos_error`` (mean over found labels of the distance
    in frames to the nearest prediction; each term <= tol). All zeros when ``pred`` or ``label`` is empty
    or no label is found (n1 == 0), as in the original.
    """
    pred = _as_frames(pred, "pred")
    label = _as_frames(label, "label")
    zeros = dict(recall=0.0, precision=0.0, f1=0.0, num_error=0.0, pos_error=0.0)
    if pred.size == 0 or label.size == 0:
        return zeros
    # dist[i, j] = |label[i] - pred[j]|; float so that fractional frames (e.g. audio onsets) also work.
    dist = np.abs(label.astype(np.float64)[:, None] - pred.astype(np.float64)[None, :])
    nearest_pred = dist.min(axis=1)  # per label
    nearest_label = dist.min(axis=0)  # per prediction
    found = nearest_pred <= tol
    n1 = int(found.sum())  # labels found (not one-to-one)
    n2 = int((nearest_label <= tol).sum())  # predictions that hit some label
    if n1 == 0:
        return zeros
    tp, fn, fp = n1, label.size - n1, pred.size - n2
    recall = tp / (tp + fn)
    precision = tp / (tp + fp)  # mixes a label count (n1) with a prediction count (|pred| - n2)
    f1 = 2 * recall * precision / (recall + precision)
    return dict(
        recall=float(recall),
        precision=float(precision),
        f1=float(f1),
        num_error=float(abs(n1 - label.size)),
        pos_error=float(nearest_pred[found].mean()),
    )


def cluster_runs(frames) -> np.ndarray:
    """Sort, deduplicate and merge runs of consecutive frames into one event each (frames, int64).

    A run ``a, a+1, …, b`` becomes the single frame ``(a + b) // 2`` (floor of the run centre). Frame
    indices must be integer-valued (a float array of whole numbers is accepted); round fractional
    positions (e.g. audio onsets) before clustering.
    """
    a = _as_frames(frames, "frames")
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.all(a == np.round(a)):
        raise ValueError("cluster_runs: frame indices must be integer-valued")
    u = np.unique(a.astype(np.int64))  # sorted, deduplicated
    breaks = np.flatnonzero(np.diff(u) != 1) + 1
    starts = u[np.r_[0, breaks]]
    ends = u[np.r_[breaks - 1, u.size - 1]]
    return (starts + ends) // 2


def match_events(ref, est, window: int) -> tuple[int, int, int]:
    """One-to-one (maximum bipartite) matching of ``est`` to ``ref`` within ``window`` frames.

    Uses ``mir_eval.util.match_events`` (Hopcroft–Karp), so a pair counts when |ref - est| <= window.
    Returns ``(tp, fp, fn)`` counts. ``ref`` and ``est`` are used as given; cluster them first if wanted.
    """
    ref = _as_frames(ref, "ref").astype(np.float64)
    est = _as_frames(est, "est").astype(np.float64)
    if ref.size == 0 or est.size == 0:  # mir_eval is not needed (and warns) on empty input
        return 0, int(est.size), int(ref.size)
    # Imported lazily: mir_eval is an evaluation extra, not needed to import the package.
    from mir_eval.util import match_events as _mir_match

    tp = len(_mir_match(ref, est, window))
    return tp, int(est.size) - tp, int(ref.size) - tp


def prf_from_counts(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, f1) from counts; (1, 1, 1) when there is nothing to find and nothing predicted."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)  # == 2PR/(P+R) when tp > 0, and 0 when tp == 0
    return float(precision), float(recall), float(f1)


def evaluate_videos(videos: Sequence[tuple], tolerances: Sequence[int] = (1, 2, 3)) -> dict:
    """Metrics over a split. ``videos``: list of ``(pred_frames, label_frames)``, both raw frame indices.

    Returns a flat JSON-ready dict (floats and ints):

    * ``num_videos``;
    * for each k in ``tolerances`` (frames): ``event_precision_tol{k}``, ``event_recall_tol{k}``,
      ``event_f1_tol{k}`` POOLED over the split (TP/FP/FN summed, then P/R/F1), and
      ``event_f1_tol{k}_video_mean`` (mean of per-video F1; a video without labels and predictions has
      F1 = 1.0), all on run-clustered labels and run-clustered predictions, one-to-one matching;
    * ``orig_recall_tol3``, ``orig_precision_tol3``, ``orig_f1_tol3``: mean over videos of
      ``original_metrics`` (tol 3) on the RAW frames;
    * counts: ``num_labels_clustered``, ``num_predictions`` (run-clustered predictions, i.e. what the event
      metric scores), ``num_labels_raw``, ``num_predictions_raw`` (raw array lengths).
    """
    tolerances = tuple(int(k) for k in tolerances)
    n = len(videos)
    pooled = {k: [0, 0, 0] for k in tolerances}
    f1_sum = {k: 0.0 for k in tolerances}
    orig_sum = dict(recall=0.0, precision=0.0, f1=0.0)
    n_lab_c = n_pred_c = n_lab_raw = n_pred_raw = 0
    for pred_raw, label_raw in videos:
        pred_raw = _as_frames(pred_raw, "pred")
        label_raw = _as_frames(label_raw, "label")
        ref, est = cluster_runs(label_raw), cluster_runs(pred_raw)
        n_lab_c += ref.size
        n_pred_c += est.size
        n_lab_raw += label_raw.size
        n_pred_raw += pred_raw.size
        for k in tolerances:
            tp, fp, fn = match_events(ref, est, k)
            for i, c in enumerate((tp, fp, fn)):
                pooled[k][i] += c
            f1_sum[k] += prf_from_counts(tp, fp, fn)[2]
        orig = original_metrics(pred_raw, label_raw, tol=ORIGINAL_TOL)
        for key in orig_sum:
            orig_sum[key] += orig[key]

    out: dict = {"num_videos": n}
    for k in tolerances:
        p, r, f = prf_from_counts(*pooled[k])
        out[f"event_f1_tol{k}"] = f
        out[f"event_precision_tol{k}"] = p
        out[f"event_recall_tol{k}"] = r
        out[f"event_f1_tol{k}_video_mean"] = f1_sum[k] / n if n else 0.0
    for key, s in orig_sum.items():
        out[f"orig_{key}_tol{ORIGINAL_TOL}"] = s / n if n else 0.0
    out.update(
        num_labels_clustered=int(n_lab_c),
        num_predictions=int(n_pred_c),
        num_labels_raw=int(n_lab_raw),
        num_predictions_raw=int(n_pred_raw),
    )
    return out
