"""Scoring a high-frame-rate video at a bounded rate: `stride` interleaved phases, each scored on its own.

Why: on generator v2 (10–60 fps) the shipped model finds fewer contacts in 30–60 fps videos than in 10–29
fps ones; between two frames of a 60 fps video a contact changes the motion by half as much as at 30 fps,
while the flow's error per field does not shrink. Scoring such a video as two 30 fps videos (frames 0, 2,
4, … and 1, 3, 5, …) and putting the scores back in place raised v2 F1 ±3 (docs/RESULTS.md §4, "Analysis
rate"). ``ta2net eval`` chooses the rate on the validation split (``eval.analysis_max_fps``
candidates) and records it in detector.json (``analysis_rate``); ``ta2net detect`` scores the same way.

Rule (units: frames at the video's native rate unless named ``_fps``):

* ``stride = max(1, rint(nominal_fps(fps) / max_fps))`` (NumPy ``rint``: 45 fps at a 30 fps bound → 2, 44 → 1),
  lowered until each phase keeps at least ``min_phase_frames`` frames; ``max_fps`` None or 0 → 1 (native rate).
* ``nominal_fps``: the rate rounded to the nearest whole frame rate first. The bound was chosen on videos at
  whole rates (10–60 fps), where 30 fps is scored in phases at a 20 fps bound and 29 fps is not; without the
  rounding a 29.97 fps video (NTSC, the common "30 fps" of cameras and broadcast) or a phone's variable-rate
  29.9 would fall on the other side of that line from a 30 fps one (29.97 / 20 = 1.4985 rounds to 1, 30 / 20
  = 1.5 to 2), by data that never held such a rate.
* Phase ``p`` (0 ≤ p < stride) is frames ``p, p + stride, …``: a video at ``fps / stride`` with flow between
  its own consecutive frames. Its per-frame scores and maps go back to those native frames, so every native
  frame is scored once, by the phase that holds it; events, separations and tolerances stay in native
  frames. Frames a phase cannot score (its first and last two) are NaN, as at the native rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["nominal_fps", "stride_for", "interleave", "score_phases"]


def nominal_fps(fps: float) -> float:
    """``fps`` rounded to the nearest whole frame rate (29.97 → 30, 59.94 → 60, 23.976 → 24; module doc); a
    rate below 1 fps is kept."""
    fps = float(fps)
    return float(round(fps)) if fps >= 1 else fps


def stride_for(fps: float, max_fps: float | None, num_frames: int, min_phase_frames: int = 16) -> int:
    """The phase stride for a video of ``num_frames`` frames at ``fps`` scored at no more than ``max_fps``."""
    if not max_fps or not fps or fps <= 0:
        return 1
    stride = max(1, int(np.rint(nominal_fps(fps) / float(max_fps))))
    while stride > 1 and num_frames // stride < min_phase_frames:
        stride -= 1
    return stride


def interleave(parts: Sequence[np.ndarray], num_frames: int) -> np.ndarray:
    """Per-phase arrays ``[N_p, ...]`` (phase p holds native frames p, p + S, …; S = len(parts)) → ``[N, ...]``."""
    stride = len(parts)
    out = np.full((num_frames,) + np.shape(parts[0])[1:], np.nan, np.float32)
    for phase, part in enumerate(parts):
        expected = len(range(phase, num_frames, stride))
        if len(part) != expected:
            raise ValueError(f"phase {phase} of {stride}: {len(part)} frames, expected {expected} of {num_frames}")
        out[phase::stride] = part
    return out


def score_phases(
    score_phase: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]],
    frames: np.ndarray,
    fps: float,
    stride: int,
    times_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scores [N] and maps [N, h, w] of ``frames`` [N, H, W, 3] scored as ``stride`` phases.

    ``score_phase(frames, fps)`` scores one phase as a video of its own (its frames [N_p, H, W, 3] at
    ``fps / stride``, flow between them estimated by the caller's estimator) and returns its (scores [N_p],
    maps [N_p, h, w]). With ``times_s`` ([N] the frames' timestamps, a variable-rate file:
    input_pipeline/frame_times.py) it is called as ``score_phase(frames, fps, times_s=the phase's [N_p])``."""
    values, maps = [], []
    for phase in range(stride):
        timed = {} if times_s is None else {"times_s": times_s[phase::stride]}
        v, m = score_phase(frames[phase::stride], fps / stride, **timed)
        values.append(np.asarray(v, np.float32))
        maps.append(np.asarray(m, np.float32))
    n = frames.shape[0]
    return interleave(values, n), interleave(maps, n)
