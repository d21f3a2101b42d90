"""When each frame is shown: uniform ``k / fps``, or the file's own timestamps for variable-frame-rate video.

Most files are constant-rate and frame ``k`` is shown at ``k / fps`` seconds. Phones are not: they lower the
rate in dim light (30 → 24 fps and back), and screen recorders drop frames under load, so ``k / fps`` with the
container's *average* rate drifts from the real time by many frames over a clip. Everything that turns frames
into seconds or seconds into frames (event times in ``ta2net detect``, the dub's sounds, labels from sound)
goes through :func:`frames_to_seconds` and :func:`seconds_to_frames`, with the frames' presentation times when
the file has them. The detectors' optical flow is put per unit interval (:func:`per_unit_interval`), so uneven
spacing does not look like a change of motion.

``times_s`` is ``[N]`` float64 seconds from the first frame, or ``None`` for "uniform". :func:`presentation_times`
returns ``None`` unless uniform time would put some frame more than half a frame interval away from its
timestamp (:data:`MAX_UNIFORM_ERROR`): constant-rate files (timestamps rounded to the container's clock,
NTSC's 30000/1001) keep exactly ``k / fps``, so nothing measured on them moves, and a file whose timestamps are
missing or out of order is timed uniformly as before. Outside ``[0, N - 1]`` both mappings continue at the
average rate ``fps``.

Resampling to another rate (``prepare --fps``) selects, for output frame ``j``, the native frame shown nearest to
``j / fps`` (:func:`resample_indices`); labels in native frames follow by the same clock (:func:`map_frame_index`,
:func:`output_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_UNIFORM_ERROR = 0.5  # frame intervals: uniform time may be this far off before the timestamps are used


def presentation_times(stamps_s: Sequence[float | None], fps: float) -> np.ndarray | None:
    """``[N]`` seconds from the first frame when the timestamps are needed, else None (uniform).

    Args:
      stamps_s: each decoded frame's presentation time in seconds (None where the file has none), in the
        order the frames are shown; or the video packets' times in any order (they are sorted).
      fps: the container's (average) frame rate.
    """
    if len(stamps_s) < 2 or any(t is None for t in stamps_s) or not fps > 0:
        return None
    times = np.sort(np.asarray(stamps_s, np.float64))
    times -= times[0]
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        return None  # repeated or broken stamps: no better than uniform
    uniform = np.arange(len(times)) / fps
    return times if np.max(np.abs(times - uniform)) * fps > MAX_UNIFORM_ERROR else None


def frames_to_seconds(frames, fps: float, times_s: np.ndarray | None = None) -> np.ndarray:
    """Seconds at which (possibly fractional) native ``frames`` are shown, ``frames``' shape, float64."""
    frames = np.asarray(frames, np.float64)
    if times_s is None or len(times_s) < 2:
        return frames / fps
    last = len(times_s) - 1
    inside = np.interp(frames, np.arange(len(times_s)), times_s)
    return np.where(frames < 0, frames / fps, np.where(frames > last, times_s[-1] + (frames - last) / fps, inside))


def seconds_to_frames(seconds, fps: float, times_s: np.ndarray | None = None) -> np.ndarray:
    """Fractional native frame positions of ``seconds`` (the inverse of :func:`frames_to_seconds`), float64."""
    seconds = np.asarray(seconds, np.float64)
    if times_s is None or len(times_s) < 2:
        return seconds * fps
    last = len(times_s) - 1
    inside = np.interp(seconds, times_s, np.arange(len(times_s), dtype=np.float64))
    return np.where(
        seconds < 0, seconds * fps, np.where(seconds > times_s[-1], last + (seconds - times_s[-1]) * fps, inside)
    )


def nearest_frames(seconds, times_s: np.ndarray) -> np.ndarray:
    """The frame shown nearest to each time in ``seconds`` (ties within 1 ns: the later frame), int64, of
    ``seconds``' shape; ``times_s`` [N] increasing (a variable-rate file's timestamps)."""
    seconds = np.asarray(seconds, np.float64)
    times_s = np.asarray(times_s, np.float64)
    after = np.clip(np.searchsorted(times_s, seconds, side="left"), 1, len(times_s) - 1)
    later = times_s[after] - seconds <= seconds - times_s[after - 1] + 1e-9  # a tie up to float rounding
    return np.where(later, after, after - 1).astype(np.int64)


def interval_gains(times_s: np.ndarray | None, fps: float) -> np.ndarray | None:
    """``[N-1]`` float32 factors ``(1 / fps) / (t[k+1] - t[k])`` that turn the flow of each consecutive pair into
    the displacement over one average interval; None for uniform time (no change).

    Flow is a displacement over the pair's interval, so a frame the recorder dropped doubles one field and a
    rate that sags from 30 to 24 fps makes everything look 25 % faster: to the inflection flow (the change of
    flow) a dropped frame is two abrupt changes of motion, i.e. a false impact. Per average interval, steady
    motion stays steady whatever the spacing of the frames."""
    if times_s is None or len(times_s) < 2:
        return None
    return ((1.0 / fps) / np.diff(np.asarray(times_s, np.float64))).astype(np.float32)


def per_unit_interval(flow_fwd, flow_bwd, times_s: np.ndarray | None, fps: float):
    """``(flow_fwd, flow_bwd)`` ``[N-1, H, W, 2]`` scaled by :func:`interval_gains` (both directions of pair k
    span the same interval), in their own dtype; unchanged for uniform time (a None stays None)."""
    gains = interval_gains(times_s, fps)
    if gains is None:
        return flow_fwd, flow_bwd
    g = gains[:, None, None, None]
    return tuple(None if f is None else (np.asarray(f) * g).astype(f.dtype) for f in (flow_fwd, flow_bwd))


def describe(times_s: np.ndarray | None, fps: float) -> dict:
    """For reports: ``frame_times`` ("uniform" or "timestamps") and, for timestamps, the rate's range
    (``frame_rate_range`` [slowest, fastest] fps over the frame intervals, 5th and 95th percentiles)."""
    if times_s is None:
        return {"frame_times": "uniform"}
    rates = 1.0 / np.diff(times_s)
    return {"frame_times": "timestamps", "frame_rate_range": [float(np.percentile(rates, q)) for q in (5, 95)]}


def map_frame_index(index, native_fps: float, fps: float | None, times_s: np.ndarray | None = None):
    """Native frame index (int or array) → output frame index under resampling to `fps` (nearest; ties round
    up). `times_s`: the native frames' timestamps of a variable-rate source (meta.json `source_times_s`)."""
    if fps is None:
        return index
    if times_s is not None:
        shown_s = frames_to_seconds(index, native_fps, np.asarray(times_s, np.float64))
        return np.floor(shown_s * fps + 0.5).astype(np.int64)
    return np.floor(np.asarray(index, np.float64) * fps / native_fps + 0.5).astype(np.int64)


def output_frames(index, meta: dict, fps: float | None):
    """`map_frame_index` for a prepared video (its meta.json: native rate and, for a variable-rate source,
    timestamps; folders prepared before timestamps were kept have none and map uniformly)."""
    return map_frame_index(index, meta["native_fps"], fps, meta.get("source_times_s"))


def resample_indices(
    num_native: int, native_fps: float, fps: float | None, times_s: np.ndarray | None = None
) -> np.ndarray:
    """Which native frames to keep: [M] int64; output frame j is the native frame shown nearest to j / fps
    (uniform time: native round(j · native_fps / fps); `times_s` [≥ num_native] a variable-rate source's
    timestamps)."""
    if fps is None:
        return np.arange(num_native)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    if times_s is not None:
        times_s = np.asarray(times_s, np.float64)[:num_native]
        count = int(np.floor(times_s[-1] * fps + 1e-9)) + 1
        return nearest_frames(np.arange(count) / fps, times_s)
    count = int(np.floor((num_native - 1) * fps / native_fps + 1e-9)) + 1
    return np.minimum(np.floor(np.arange(count) * native_fps / fps + 0.5).astype(np.int64), num_native - 1)
