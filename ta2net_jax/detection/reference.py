"""The reference detector of issue 12 (detectors.ReferenceDetector): the plain yardstick every table shows.

On grey DIS flow at 112×112 (fwd[k]: frame k → k+1, input_pipeline/flow.py):

    d[t] = mean over pixels of ‖F⁺_{t+1} − F⁺_t‖       t = 0 … N−3   (frame t, as the model's inflection
                                                                        flow; d[N−2] = d[N−1] = NaN)
    s    = d convolved with [¼, ½, ¼]                    (the end frames with the kernel clipped and
                                                           renormalised)
    events: local maxima of s above median(s) + 1·std(s), at least 3 frames apart (higher peak wins)

The detector's score is z = (s − median(s)) / std(s) (population std over the finite frames), so the
events are exactly `events.pick_events(z, 1.0, min_separation=3, mode="peaks")`.
"""

from __future__ import annotations

import numpy as np

from input_pipeline.inflection_energy import CHUNK_FRAMES

KERNEL = np.array([0.25, 0.5, 0.25])


def change_maps(flow_fwd: np.ndarray, chunk_frames: int = CHUNK_FRAMES) -> np.ndarray:
    """‖F⁺_{t+1} − F⁺_t‖ per pixel [N, H, W]; zeros on the last two frames (no F⁺_{t+1}). Computed
    `chunk_frames` frames at a time (inflection_energy.CHUNK_FRAMES: bounded temporaries on long videos)."""
    n = flow_fwd.shape[0] + 1
    maps = np.zeros((n,) + flow_fwd.shape[1:3], np.float32)
    for start in range(0, n - 2, chunk_frames):
        stop = min(start + chunk_frames, n - 2)
        change = flow_fwd[start + 1 : stop + 1].astype(np.float32) - flow_fwd[start:stop]
        maps[start:stop] = np.linalg.norm(change, axis=-1)
    return maps


def smooth(d: np.ndarray) -> np.ndarray:
    """[¼, ½, ¼] over the finite prefix of ``d``; at the ends the kernel is clipped and renormalised."""
    out = np.full(d.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(d))
    if finite.size == 0:
        return out
    x = d[: finite[-1] + 1]
    num = np.convolve(x, KERNEL, mode="same")
    den = np.convolve(np.ones_like(x), KERNEL, mode="same")
    out[: x.size] = num / den
    return out


def reference_curve(flow_fwd: np.ndarray) -> np.ndarray:
    """The smoothed mean-change curve s [N] (NaN on the last two frames)."""
    return curve_of_maps(change_maps(flow_fwd))


def curve_of_maps(maps: np.ndarray) -> np.ndarray:
    """`reference_curve` from `change_maps` already computed [N, H, W]."""
    n = maps.shape[0]
    d = np.full(n, np.nan)
    if n >= 3:
        d[: n - 2] = maps[: n - 2].mean(axis=(1, 2))
    return smooth(d)


def standardise(s: np.ndarray) -> np.ndarray:
    """(s − median) / std over the finite entries (std floored so a constant curve gives zeros)."""
    finite = s[np.isfinite(s)]
    if finite.size == 0:
        return s
    return (s - np.median(finite)) / max(float(np.std(finite)), 1e-12)


def reference_scores(flow_fwd: np.ndarray) -> np.ndarray:
    return scores_of_maps(change_maps(flow_fwd))


def scores_of_maps(maps: np.ndarray) -> np.ndarray:
    """`reference_scores` from `change_maps` already computed [N, H, W] (the detector keeps the maps)."""
    return standardise(curve_of_maps(maps))
