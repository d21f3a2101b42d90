"""Inflection-flow energy of a video: the training-free cue behind the `inflection` detector
(ta2net_jax/detection/detectors.py) and the visual curve that audio labels are aligned to (audio_labels.py).

Per kept frame t the raw-(u, v) inflection flow (the model's own alignment, ta2net_jax/inflection.py) gives a
per-pixel magnitude |F⁺_{t+1} − F⁺_t| + |F⁻_{t−2} − F⁻_{t−1}| (pixels per frame²). The frame's energy is
the mean of its top 2 % pixels (a small object's contact is a few pixels; the mean over the frame would
drown it), and the curve is turned into a robust z-score per video, (e − median) / (1.4826·MAD), so one
threshold works across resolutions and videos. Events are its peaks (events.pick_events), with the
threshold tuned on the validation split like the model's.
"""

from __future__ import annotations

import numpy as np

TOP_FRACTION = 0.02
# Frames on each side of an event whose magnitude is summed to locate it (`location_magnitude`). The change
# of a contact is split over neighbouring kept frames (the forward and backward terms straddle it, and the
# contact falls between two frames), so one frame's argmax often lands on another moving object. Chosen on
# the validation split of synthetic_collisions/v2_64 with the shipped model (pointing accuracy of the
# attended peak: 0.616 at h = 0, 0.672 at h = 1; training-free peak 0.435 → 0.557); docs/RESULTS.md §4.
LOCATION_HALF_WINDOW = 1
# Frames whose temporaries exist at once ([256, H, W, 2] float32: 25 MiB at 112²): a long video's peak memory
# is its frames, flows and one map (a 10-minute 30 fps video at 112²: 3.5 GiB in all), not several whole-video
# copies of them (10.8 GiB before; benchmarks/RESULTS.md "Long videos").
CHUNK_FRAMES = 256


def inflection_energy(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """flow_fwd, flow_bwd [N−1, H, W, 2] (pixels) → raw energy [N] (NaN on frames 0, 1, N−2, N−1): the mean
    of the top `TOP_FRACTION` of `inflection_magnitude_maps` per kept frame."""
    return energy_of_maps(inflection_magnitude_maps(flow_fwd, flow_bwd))


def energy_of_maps(maps: np.ndarray, chunk_frames: int = CHUNK_FRAMES) -> np.ndarray:
    """`inflection_magnitude_maps` [N, H, W] → raw energy [N] (NaN on frames 0, 1, N−2, N−1), `chunk_frames`
    frames at a time (the partition copies what it sorts)."""
    n = maps.shape[0]
    scores = np.full(n, np.nan)
    if n < 5:
        return scores
    pixels = maps[0].size
    top_k = max(1, int(round(TOP_FRACTION * pixels)))
    for start in range(2, n - 2, chunk_frames):
        stop = min(start + chunk_frames, n - 2)
        magnitude = maps[start:stop].reshape(stop - start, pixels)
        scores[start:stop] = np.partition(magnitude, pixels - top_k, axis=1)[:, -top_k:].mean(axis=1)
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
    return scores_of_maps(inflection_magnitude_maps(flow_fwd, flow_bwd))


def scores_of_maps(maps: np.ndarray) -> np.ndarray:
    """`inflection_scores` from maps already computed (`inflection_magnitude_maps`), bit for bit the same."""
    return robust_zscore(energy_of_maps(maps))


def inflection_magnitude(flow_fwd: np.ndarray, flow_bwd: np.ndarray, frame: int) -> np.ndarray:
    """[H, W] per-pixel inflection magnitude |F⁺_{t+1} − F⁺_t| + |F⁻_{t−2} − F⁻_{t−1}| at a kept frame t."""
    fwd = flow_fwd[frame + 1].astype(np.float32) - flow_fwd[frame]
    bwd = flow_bwd[frame - 2].astype(np.float32) - flow_bwd[frame - 1]
    return np.linalg.norm(fwd, axis=-1) + np.linalg.norm(bwd, axis=-1)


def location_magnitude(
    flow_fwd: np.ndarray, flow_bwd: np.ndarray, frame: int, half_window: int = LOCATION_HALF_WINDOW
) -> np.ndarray:
    """[H, W] inflection magnitude summed over the kept frames frame − h … frame + h (clipped to 2 … N−3):
    what an event at `frame` is located by (`LOCATION_HALF_WINDOW`). Zeros when no kept frame is in reach."""
    n = flow_fwd.shape[0] + 1
    total = np.zeros(flow_fwd.shape[1:3], np.float32)
    for t in range(max(frame - half_window, 2), min(frame + half_window, n - 3) + 1):
        total += inflection_magnitude(flow_fwd, flow_bwd, t)
    return total


def windowed_maps(maps: np.ndarray, half_window: int = LOCATION_HALF_WINDOW) -> np.ndarray:
    """[N, H, W] per-frame maps (`inflection_magnitude_maps`) → [N, H, W] sums over frames t − h … t + h
    (clipped at the ends): `location_magnitude` for every frame at once."""
    csum = np.concatenate([np.zeros((1,) + maps.shape[1:], np.float64), np.cumsum(maps, axis=0, dtype=np.float64)])
    n = maps.shape[0]
    lo = np.clip(np.arange(n) - half_window, 0, n)
    hi = np.clip(np.arange(n) + half_window + 1, 0, n)
    return (csum[hi] - csum[lo]).astype(np.float32)


def energy_peak_xy(flow_fwd: np.ndarray, flow_bwd: np.ndarray, frame: int) -> tuple[float, float]:
    """(x, y) pixel centre of the largest inflection magnitude around `frame` (`location_magnitude`): where
    the motion broke."""
    magnitude = location_magnitude(flow_fwd, flow_bwd, frame)
    row, col = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return col + 0.5, row + 0.5


def inflection_magnitude_maps(
    flow_fwd: np.ndarray, flow_bwd: np.ndarray, chunk_frames: int = CHUNK_FRAMES
) -> np.ndarray:
    """Per-pixel inflection magnitude [N, H, W] (the quantity `energy_peak_xy` maximises), zeros on the
    unscored frames 0, 1, N−2, N−1: the training-free method's "where" map (overlays). Computed
    `chunk_frames` frames at a time, so the differences never exist for the whole video at once."""
    n = flow_fwd.shape[0] + 1
    maps = np.zeros((n,) + flow_fwd.shape[1:3], np.float32)
    for start in range(2, n - 2, chunk_frames):  # kept frames t = 2 … N−3
        stop = min(start + chunk_frames, n - 2)
        fwd = flow_fwd[start + 1 : stop + 1].astype(np.float32) - flow_fwd[start:stop]  # F⁺_{t+1} − F⁺_t
        bwd = flow_bwd[start - 2 : stop - 2].astype(np.float32) - flow_bwd[start - 1 : stop - 1]  # F⁻_{t−2} − F⁻_{t−1}
        maps[start:stop] = np.linalg.norm(fwd, axis=-1) + np.linalg.norm(bwd, axis=-1)
    return maps
