"""Repeated frames (frame-rate conversion artefacts), found and dropped before flow.

Video from the web and from broadcast is often converted between frame rates by repeating frames: 25 →
29.97 fps repeats one frame in six (the UCF101 soccer clip in ``../shared/realdata`` is such a file), 15 → 30
repeats every frame, 24 → 60 repeats in a 2-3 pattern. A repeated frame makes the motion stop for one interval
and resume at the next, so its optical flow is zero between two normal fields: to the inflection flow (the
temporal difference of the flow), and to every detector built on it, that is exactly the abrupt change of
motion an impact makes. Each repeat is a false contact.

The fix is to analyse the frames that carry new content only, at the rate they really have, and to put the
per-frame results back on the native frames: :func:`drop_repeats` returns the kept frames and a
:class:`FrameRepeats` that maps back. ``ta2net detect`` / ``eval-videos`` / ``real-benchmark`` do this for every
detector but the ``reference`` (``--keep-repeats`` turns it off); event frames and times stay in native frames.

What counts as a repeat. ``d[i]`` is the mean absolute grey-level difference between frames ``i`` and ``i + 1``
(``[N-1]``). A *candidate* (:func:`repeat_candidates`) is a run of at most ``MAX_RUN`` intervals ``i … j``
whose every ``d`` is below ``REPEAT_RATIO`` × the smaller of the two intervals that border it (``d[i-1]`` and
``d[j+1]``), those border intervals showing motion (≥ ``MIN_MOTION`` grey levels). Codec noise makes a decoded
repeat differ from its original by a few tenths of a grey level, against several grey levels for the intervals
around it; a slowing motion (a stick at the top of its swing) falls over several intervals and is not a sharp
gap. Candidates count only when they form a regular cadence (:func:`cadence`), as a conversion makes them: a
camera that stops now and then, or a scene that stands still, makes candidates at irregular places and is left
alone (generator v2's shaky cameras do; an occasional stutter of a capture is left alone too). The constants
were fixed from the mechanism and checked on synthetic videos with repeats inserted at known frames
(tests/test_frame_repeats.py, benchmarks/frame_repeats.py) and on 320 v2 and v1 renders: a cadence in one,
a scene at rest under a periodic lighting flicker, where dropping changes nothing; docs/evaluation_choices.md 2c.

Frames in the kept set always include frame 0. Dropping repeats never drops new content: a repeated frame is
(up to noise) a copy of the frame before it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REPEAT_RATIO = 0.25  # a repeat differs from its predecessor by < 25 % of the motion on either side of it
MIN_MOTION = 0.2  # grey levels (0–255): the bordering intervals must move at least this much
MAX_RUN = 2  # frames: a conversion repeats a frame once or twice (24 → 60 fps: 2-3 pulldown); longer = a still
MIN_RUNS = 4  # a cadence needs this many repeat runs
MIN_REGULAR = 0.8  # and this share of the gaps between them on the cadence
CHUNK_FRAMES = 256  # frames converted to float at once (`frame_differences`)


def frame_differences(frames: np.ndarray, chunk_frames: int = CHUNK_FRAMES) -> np.ndarray:
    """Mean absolute grey-level difference between consecutive frames, ``[N-1]`` (grey levels, 0–255).

    `frames`: ``[N, H, W, 3]`` RGB or ``[N, H, W]`` grey, any numeric dtype on a 0–255 scale. Converted to
    float `chunk_frames` frames at a time: a float32 copy of a whole 10-minute video at 112² would be 2.5 GiB."""
    frames = np.asarray(frames)
    differences = np.zeros((max(len(frames) - 1, 0),), np.float32)
    for start in range(0, len(frames) - 1, chunk_frames):
        stop = min(start + chunk_frames, len(frames) - 1)
        grey = frames[start : stop + 1].astype(np.float32)
        if grey.ndim == 4:
            grey = grey.mean(axis=-1)
        differences[start:stop] = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    return differences


def repeat_candidates(frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of frames that look repeated, each ``(first, count)`` in native frames (``count`` ≤
    ``MAX_RUN``): frames ``first … first + count - 1`` each repeat the frame before them. See the module doc."""
    d = frame_differences(frames)
    runs = []
    i = 1
    while i < len(d):
        if d[i] >= REPEAT_RATIO * d[i - 1]:
            i += 1
            continue
        j = i
        while j + 1 < len(d) and d[j + 1] < REPEAT_RATIO * d[i - 1]:
            j += 1
        if j + 1 < len(d) and j - i + 1 <= MAX_RUN:
            border = min(d[i - 1], d[j + 1])
            if border >= MIN_MOTION and d[i : j + 1].max() < REPEAT_RATIO * border:
                runs.append((i + 1, j - i + 1))  # interval k joins frames k and k + 1: frame k + 1 repeats
        i = j + 1
    return runs


def cadence(starts: np.ndarray) -> int | None:
    """The period in frames of a regular cadence of repeat runs starting at `starts` (``[M]`` increasing native
    frames), or None when they are not regular. Regular: at least ``MIN_RUNS`` runs, and at least
    ``MIN_REGULAR`` of the gaps between them are the commonest gap ``a``, ``a + 1`` (a rate ratio that is not
    an integer, e.g. 24 → 60 fps repeats in a 2-3 pattern) or a multiple of them (a repeat in a still moment
    cannot be seen, so one run in a cycle may be missing)."""
    if len(starts) < MIN_RUNS:
        return None
    gaps = np.diff(starts)
    values, counts = np.unique(gaps, return_counts=True)
    a = int(values[np.argmax(counts)])
    allowed = {k * a for k in (1, 2, 3)} | {k * (a + 1) for k in (1, 2, 3)}
    if np.mean([g in allowed for g in gaps]) < MIN_REGULAR:
        return None
    return a


def find_repeats(frames: np.ndarray) -> np.ndarray:
    """``[N]`` bool: True where frame ``i`` repeats frame ``i - 1`` as part of a regular cadence (frame 0 never).
    See the module doc."""
    runs = repeat_candidates(frames)
    repeats = np.zeros(len(frames), bool)
    if cadence(np.array([first for first, _ in runs])) is None:
        return repeats
    for first, count in runs:
        repeats[first : first + count] = True
    return repeats


@dataclasses.dataclass(frozen=True)
class FrameRepeats:
    """Which native frames were kept, and how to put per-frame results back on the native frames.

    `kept`: ``[K]`` increasing native indices of the frames that carry new content (``kept[0] == 0``);
    `num_frames`: N, the native frame count."""

    kept: np.ndarray
    num_frames: int

    @property
    def repeated(self) -> np.ndarray:
        """Native indices of the dropped (repeated) frames, ``[N - K]``."""
        mask = np.ones(self.num_frames, bool)
        mask[self.kept] = False
        return np.flatnonzero(mask)

    def fps(self, native_fps: float) -> float:
        """The rate the kept frames really have: native fps × the share of frames kept (over the kept span)."""
        span = int(self.kept[-1]) if len(self.kept) else 0
        if len(self.kept) < 2 or span == 0:
            return float(native_fps)
        return float(native_fps) * (len(self.kept) - 1) / span

    def to_native(self, values: np.ndarray) -> np.ndarray:
        """``[K, ...]`` per-kept-frame values → ``[N, ...]``: a repeated frame gets the value of the frame it
        repeats (the last kept frame before it). With nothing repeated, `values` itself (no copy: on a long
        video the per-pixel maps are its largest array)."""
        values = np.asarray(values)
        if len(self.kept) == self.num_frames:
            return values
        owner = np.searchsorted(self.kept, np.arange(self.num_frames), side="right") - 1
        return values[owner]

    def kept_position(self, native_frame: int) -> int:
        """The position in the kept sequence of the frame that native frame `native_frame` shows."""
        return int(np.searchsorted(self.kept, native_frame, side="right") - 1)


def drop_repeats(frames: np.ndarray) -> tuple[np.ndarray, FrameRepeats]:
    """The frames without repeats ``[K, ...]`` (``frames`` itself when none repeats: no copy) and the
    :class:`FrameRepeats` that maps results back."""
    kept = np.flatnonzero(~find_repeats(frames))
    frames = np.asarray(frames)
    return (frames if len(kept) == len(frames) else frames[kept]), FrameRepeats(kept=kept, num_frames=len(frames))


def no_repeats(num_frames: int) -> FrameRepeats:
    """The identity mapping (every frame kept), for ``--keep-repeats``."""
    return FrameRepeats(kept=np.arange(num_frames), num_frames=num_frames)
