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
* Real footage (issue 12): ``separation_frames`` turns a separation in SECONDS into frames at a video's fps
  (``max(1, round(s·fps))``), so a 60 fps video keeps events as far apart in time as a 15 fps one.
  ``prominence_window`` (frames, 0 = off) makes picking adaptive per video: the curve minus its running
  median over a centred window (``local_prominence``) is thresholded instead of the raw curve, so a slow
  drift of the background motion neither hides events nor fires a run of them. ``mode="peaks"`` fires at
  every local maximum above the threshold (>= both finite neighbours; flat tops merge) instead of one
  event per run: the rule of scipy-style peak finders (the ``reference`` detector). ``Picking`` holds all
  of a detector's parameters (stored in detector.json as ``<name>_picking``).
* ``tune_picking`` chooses a picking's threshold: the one maximising the POOLED one-to-one event F1
  (``metrics.match_events``, run-clustered labels and predictions, as in ``metrics.evaluate_videos``) on
  validation videos. The default grid is 200 linear-interpolated quantiles of the pooled finite thresholded
  curves (deduplicated), so it adapts to probabilities and to unbounded scores. Ties go to the SMALLEST
  threshold.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from ta2net_jax.evaluation.metrics.timing import cluster_runs, match_events, prf_from_counts

__all__ = [
    "pick_events",
    "peak_candidates",
    "separation_frames",
    "local_prominence",
    "Picking",
    "tune_picking",
    "DEFAULT_NUM_THRESHOLDS",
    "best_threshold",
]

DEFAULT_NUM_THRESHOLDS = 200


def _as_scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"scores: expected a 1-D per-frame array, got shape {s.shape}")
    return s


def separation_frames(seconds: float, fps: float) -> int:
    """A minimum separation in seconds as frames at ``fps``: ``max(1, round(seconds·fps))``."""
    if not (fps > 0):
        raise ValueError(f"fps must be > 0, got {fps}")
    return max(1, int(round(float(seconds) * float(fps))))


def local_prominence(scores, window: int) -> np.ndarray:
    """``scores`` minus their running median over a centred window of ``window`` frames (finite entries only;
    the window is clipped at the ends). NaN stays NaN. ``window <= 1`` returns the scores unchanged."""
    s = _as_scores(scores)
    if window <= 1 or s.size == 0:
        return s.copy()
    half = int(window) // 2
    # NaN padding = the window clipped at the ends (nanmedian ignores it, as it ignores non-finite scores).
    padded = np.concatenate([np.full(half, np.nan), np.where(np.isfinite(s), s, np.nan), np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window: its baseline is NaN
        base = np.nanmedian(windows, axis=1)
    return s - base


def pick_events(
    scores, threshold: float, *, min_separation: int = 1, prominence_window: int = 0, mode: str = "runs"
) -> tuple[np.ndarray, np.ndarray]:
    """Events from a per-frame score curve ``scores`` [N] (index = frame).

    ``mode="runs"``: frames with ``score > threshold`` form runs; each run gives one event at its argmax.
    ``mode="peaks"``: every local maximum (``peak_candidates``) with ``score > threshold`` is an event.
    Events closer than ``min_separation`` frames are merged keeping the higher peak (greedy NMS). NaN scores
    never fire. ``prominence_window`` > 1: the curve is first replaced by ``local_prominence`` (score minus
    the running median over that many frames), and the returned peak scores are prominences.
    Returns ``(frames int64 [E], peak_scores float64 [E])`` sorted by frame.
    """
    s = _as_scores(scores)
    if min_separation < 1:
        raise ValueError("min_separation must be >= 1 (frames)")
    if mode not in ("runs", "peaks"):
        raise ValueError(f"mode must be 'runs' or 'peaks', got {mode!r}")
    s = local_prominence(s, prominence_window)
    if mode == "peaks":
        frames, peaks = peak_candidates(s, min_separation=1)
        keep = peaks > threshold
        frames, peaks = _nms(frames[keep], peaks[keep], min_separation)
        return frames, peaks.astype(np.float64)
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


@dataclasses.dataclass(frozen=True)
class Picking:
    """Everything that turns one detector's score curve into events, per video.

    ``threshold`` (score units); the minimum separation is ``min_separation_s`` seconds at the video's fps
    (``separation_frames``) or, when that is None, ``min_separation_frames`` frames whatever the fps;
    ``prominence_window_s`` seconds of running median subtracted first (0 = off); ``mode`` "runs" or "peaks".
    """

    threshold: float
    min_separation_s: float | None = None
    min_separation_frames: int = 1
    prominence_window_s: float = 0.0
    mode: str = "runs"

    def separation(self, fps: float) -> int:
        if self.min_separation_s is None:
            return max(1, int(self.min_separation_frames))
        return separation_frames(self.min_separation_s, fps)

    def window(self, fps: float) -> int:
        """The prominence window in frames at ``fps`` (0 = off; odd, so it is centred)."""
        if not self.prominence_window_s:
            return 0
        return 2 * (int(round(self.prominence_window_s * fps)) // 2) + 1

    def pick(self, scores, fps: float) -> tuple[np.ndarray, np.ndarray]:
        return pick_events(
            scores,
            self.threshold,
            min_separation=self.separation(fps),
            prominence_window=self.window(fps),
            mode=self.mode,
        )

    def curve(self, scores, fps: float) -> np.ndarray:
        """The curve that is thresholded (the prominence when a window is set): AP candidates come from it."""
        return local_prominence(scores, self.window(fps))

    def replace(self, **changes) -> Picking:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Picking:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown picking parameters {sorted(unknown)}; known: {sorted(fields)}")
        return cls(**d)


def best_threshold(candidates, score) -> tuple[float, float, dict]:
    """The candidate threshold with the highest ``score(threshold)``, that score and every candidate's
    ({threshold: score}). Non-finite candidates are dropped, the rest sorted; ties go to the smallest threshold
    (the one sweep behind ``tune_picking`` and ``ta2net calibrate``)."""
    cand = np.unique(np.asarray(candidates, dtype=np.float64).reshape(-1))  # sorted ascending
    cand = cand[np.isfinite(cand)]
    if cand.size == 0:
        raise ValueError("no finite candidate thresholds")
    tried = {float(t): float(score(float(t))) for t in cand}
    best = max(tried, key=lambda t: (tried[t], -t))  # highest score, then the smallest threshold
    return best, tried[best], tried


def tune_picking(videos: Sequence[tuple], picking: Picking, *, tol: int = 3, thresholds=None) -> tuple[Picking, float]:
    """``picking`` with the threshold maximising the pooled one-to-one event F1 at ``tol`` frames.

    ``videos``: list of ``(scores [N], label_frames, fps)``; everything but the threshold (separation in
    seconds → frames per video, prominence window, mode) is kept. Default grid: ``DEFAULT_NUM_THRESHOLDS``
    quantiles of the pooled finite thresholded curves (``Picking.curve``). Ties → the smallest threshold.
    """
    # The thresholded curve does not depend on the threshold: computed once per video, then picked as is.
    curves = [
        (picking.curve(_as_scores(s), fps), cluster_runs(lab), picking.separation(float(fps))) for s, lab, fps in videos
    ]
    if thresholds is None:
        finite = np.concatenate([c[np.isfinite(c)] for c, _, _ in curves]) if curves else np.zeros(0)
        if finite.size == 0:
            raise ValueError("tune_picking: no finite scores to build a threshold grid from")
        thresholds = np.quantile(finite, np.linspace(0.0, 1.0, DEFAULT_NUM_THRESHOLDS))

    def pooled_f1(threshold: float) -> float:
        counts = np.zeros(3, np.int64)
        for curve, ref, separation in curves:
            events = pick_events(curve, threshold, min_separation=separation, mode=picking.mode)[0]
            counts += match_events(ref, cluster_runs(events), tol)
        return prf_from_counts(*(int(c) for c in counts))[2]

    try:
        threshold, f1, _ = best_threshold(thresholds, pooled_f1)
    except ValueError:
        raise ValueError("tune_picking: no finite candidate thresholds") from None
    return picking.replace(threshold=threshold), f1


def picking_for(detector_cls, run, config) -> Picking:
    """A detector's picking (`detector_cls`: a detectors.py class; `run`: its detectors.Run or None; `config`:
    the run's): `<name>_picking` from the run's detector.json, else the detector's default with
    `<name>_threshold` (older detector.json files) and the run's eval separation: `eval.min_separation_s`
    (seconds) or the older `eval.min_separation` (frames). A detector with `fixed_picking` (the reference)
    ignores the run's separation."""
    tuned = run.tuned if run is not None else {}
    if isinstance(tuned.get(f"{detector_cls.name}_picking"), dict):
        return Picking.from_dict(tuned[f"{detector_cls.name}_picking"])
    picking = detector_cls.default_picking()
    if tuned.get(f"{detector_cls.name}_threshold") is not None:
        picking = picking.replace(threshold=float(tuned[f"{detector_cls.name}_threshold"]))
    if config is not None and not detector_cls.fixed_picking:
        seconds = config.eval.get("min_separation_s")
        if seconds is not None:  # candidates for `eval` to choose from: the first one until it has chosen
            picking = picking.replace(min_separation_s=float(np.atleast_1d(seconds)[0]))
        elif config.eval.get("min_separation") is not None:
            picking = picking.replace(min_separation_s=None, min_separation_frames=int(config.eval.min_separation))
    return picking
