"""When each frame is shown: uniform ``k / fps``, or the file's own timestamps for variable-frame-rate video.

Most files are constant-rate and frame ``k`` is shown at ``k / fps`` seconds. Phones are not: they lower the
rate in dim light (30 → 24 fps and back), and screen recorders drop frames under load, so ``k / fps`` with the
container's *average* rate drifts from the real time by many frames over a clip. Everything that turns frames
into seconds or seconds into frames (event times in ``ta2net detect``, the dub's sounds, labels from sound)
goes through the two functions here, with the frames' presentation times when the file has them.

``times_s`` is ``[N]`` float64 seconds from the first frame, or ``None`` for "uniform". :func:`presentation_times`
returns ``None`` unless uniform time would put some frame more than half a frame interval away from its
timestamp (:data:`MAX_UNIFORM_ERROR`): constant-rate files (timestamps rounded to the container's clock,
NTSC's 30000/1001) keep exactly ``k / fps``, so nothing measured on them moves, and a file whose timestamps are
missing or out of order is timed uniformly as before. Outside ``[0, N - 1]`` both mappings continue at the
average rate ``fps``.
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


def describe(times_s: np.ndarray | None, fps: float) -> dict:
    """For reports: ``frame_times`` ("uniform" or "timestamps") and, for timestamps, the rate's range
    (``frame_rate_range`` [slowest, fastest] fps over the frame intervals, 5th and 95th percentiles)."""
    if times_s is None:
        return {"frame_times": "uniform"}
    rates = 1.0 / np.diff(times_s)
    return {"frame_times": "timestamps", "frame_rate_range": [float(np.percentile(rates, q)) for q in (5, 95)]}
