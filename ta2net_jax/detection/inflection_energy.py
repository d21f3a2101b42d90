"""Training-free detector: peaks of inflection-flow energy.

Per kept frame t the raw-(u, v) inflection flow (inflection.py, the model's own alignment) gives a
per-pixel magnitude |F⁺_{t+1} − F⁺_t| + |F⁻_{t−2} − F⁻_{t−1}| (pixels per frame²). The frame's energy is
the mean of its top 2 % pixels (a small object's contact is a few pixels; the mean over the frame would
drown it), and the curve is turned into a robust z-score per video, (e − median) / (1.4826·MAD), so one
threshold works across resolutions and videos. Events are its peaks (events.pick_events), with the
threshold tuned on the validation split like the model's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ta2net_jax.inflection import motion_and_inflection

TOP_FRACTION = 0.02
# Default picking (events.Picking) when no detector.json says otherwise; docs/evaluation_choices.md.
DEFAULT_THRESHOLD = 2.0  # robust z-units above the local (running-median) baseline
MIN_SEPARATION_S = 0.2  # seconds between two events, whatever the fps
PROMINENCE_WINDOW_S = 1.0  # seconds of running median subtracted before thresholding


@functools.partial(jax.jit, static_argnames=("top_k",))
def _energy(flow_fwd, flow_bwd, top_k: int):
    num_kept = flow_fwd.shape[0] - 3  # N − 4 kept frames
    _, inflection = motion_and_inflection(
        flow_fwd[None, 2:], flow_bwd[None, : num_kept + 1], jnp.array([num_kept]), mode="raw"
    )
    inflection = inflection[0]  # [N', H, W, 4]
    magnitude = jnp.linalg.norm(inflection[..., :2], axis=-1) + jnp.linalg.norm(inflection[..., 2:], axis=-1)
    top = jax.lax.top_k(magnitude.reshape(magnitude.shape[0], -1), top_k)[0]
    return jnp.mean(top, axis=-1)


def inflection_energy(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """flow_fwd, flow_bwd [N−1, H, W, 2] (pixels) → raw energy [N] (NaN on frames 0, 1, N−2, N−1)."""
    n = flow_fwd.shape[0] + 1
    scores = np.full(n, np.nan)
    if n < 5:
        return scores
    top_k = max(1, int(round(TOP_FRACTION * flow_fwd.shape[1] * flow_fwd.shape[2])))
    scores[2 : n - 2] = np.asarray(
        _energy(jnp.asarray(flow_fwd, jnp.float32), jnp.asarray(flow_bwd, jnp.float32), top_k)
    )
    return scores


def robust_zscore(scores: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD) over the finite entries; NaN stays NaN."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return scores
    median = np.median(finite)
    mad = 1.4826 * np.median(np.abs(finite - median))
    return (scores - median) / max(mad, 1e-6 * max(abs(median), 1.0), 1e-12)


def inflection_scores(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """The detector's per-frame score [N]: robust z-score of the inflection energy."""
    return robust_zscore(inflection_energy(flow_fwd, flow_bwd))


def energy_peak_xy(flow_fwd: np.ndarray, flow_bwd: np.ndarray, frame: int) -> tuple[float, float]:
    """(x, y) pixel of the largest inflection magnitude at a kept frame (where the motion broke)."""
    inflection = np.concatenate(
        [flow_fwd[frame + 1] - flow_fwd[frame], flow_bwd[frame - 2] - flow_bwd[frame - 1]], axis=-1
    ).astype(np.float32)
    magnitude = np.linalg.norm(inflection[..., :2], axis=-1) + np.linalg.norm(inflection[..., 2:], axis=-1)
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return col + 0.5, row + 0.5


def inflection_magnitude_maps(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Per-pixel inflection magnitude [N, H, W] (the quantity `energy_peak_xy` maximises), zeros on the
    unscored frames 0, 1, N−2, N−1: the training-free method's "where" map (overlays)."""
    n = flow_fwd.shape[0] + 1
    maps = np.zeros((n,) + flow_fwd.shape[1:3], np.float32)
    if n < 5:
        return maps
    fwd = flow_fwd[3 : n - 1].astype(np.float32) - flow_fwd[2 : n - 2]  # F⁺_{t+1} − F⁺_t, t = 2 … N−3
    bwd = flow_bwd[0 : n - 4].astype(np.float32) - flow_bwd[1 : n - 3]  # F⁻_{t−2} − F⁻_{t−1}
    maps[2 : n - 2] = np.linalg.norm(fwd, axis=-1) + np.linalg.norm(bwd, axis=-1)
    return maps
