"""Black borders (letterbox, pillarbox) burnt into a video, found so the detectors see only the picture.

Much real footage carries static black bars: UCF101 clips shot at 16:9 and stored at 320×240 have 13–30 black
rows at the top and the bottom, 4:3 clips stored at 16:9 have black columns. The detectors resize every frame
straight to a small square (64² for the shipped model), so bars spend a quarter of those pixels on nothing,
and every contact gets that much smaller. Cropping them first is what video tools do before a resize
(FFmpeg's `cropdetect`); `read_video(..., crop_borders=True)` does it here, and `ta2net detect`,
`eval-videos` and `real-benchmark` use it (`--keep-borders` turns it off; the `reference` method never crops).

What counts as a border row (column): over every frame and every pixel of it, the grey level stays at or
below ``BLACK_LEVEL`` (24 on the 0–255 scale, FFmpeg `cropdetect`'s default limit: video black is 16 and
codecs add a few levels of noise) and is flat (standard deviation ≤ ``MAX_BORDER_STD`` grey levels), so a dark
but textured or moving part of a scene is never taken for a bar. Borders are the runs of such rows (columns)
from each edge inwards. Nothing is cropped when less than ``MIN_KEPT`` of the height or width would remain:
that is a dark or blank video, not a letterbox (the widest common letterbox, 2.39:1 in 4:3, keeps 56 %).
These constants follow from the video black level and the formats, not from any clip's score.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from input_pipeline.flow import to_gray

BLACK_LEVEL = 24.0  # grey levels (0–255): at or below it a row can be a bar (FFmpeg cropdetect's default limit)
MAX_BORDER_STD = 2.0  # grey levels: a bar is flat; dark scenery has texture, noise or motion
MIN_KEPT = 0.5  # fraction of the height and of the width that must remain, or nothing is cropped


@dataclasses.dataclass(frozen=True)
class Borders:
    """Rows (``top``, ``bottom``) and columns (``left``, ``right``) of black border, in source pixels."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def __bool__(self) -> bool:
        return any((self.top, self.bottom, self.left, self.right))

    def crop(self, frames: np.ndarray) -> np.ndarray:
        """``[..., H, W, C]`` → the picture inside the borders, ``[..., H - top - bottom, W - left - right, C]``."""
        h, w = frames.shape[-3:-1]
        return frames[..., self.top : h - self.bottom, self.left : w - self.right, :]

    def picture_box(self, source_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(y0, x0, y1, x1)``: the picture's rows y0..y1 - 1 and columns x0..x1 - 1 in source pixels."""
        h, w = source_size
        return self.top, self.left, h - self.bottom, w - self.right

    def to_source(self, x: float, y: float, size: tuple[int, int], source_size: tuple[int, int]) -> tuple[float, float]:
        """A point (x, y) in pixels of the picture resized to ``size`` (height, width) → source pixels."""
        y0, x0, y1, x1 = self.picture_box(source_size)
        return x0 + x * (x1 - x0) / size[1], y0 + y * (y1 - y0) / size[0]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class BorderProfile:
    """Per-row and per-column grey statistics of a stream of frames, accumulated one frame at a time (a
    video is decoded once for the borders and once for the resized picture, never held at full size)."""

    def __init__(self):
        self._rows = self._cols = None  # [3, H] and [3, W]: max, sum, sum of squares
        self._count_rows = self._count_cols = 0

    def add(self, rgb: np.ndarray) -> None:
        """One frame ``[H, W, 3]`` uint8 RGB."""
        grey = to_gray(rgb[None])[0].astype(np.float32)  # the luma the flow estimators see
        if self._rows is None:
            self._rows = np.zeros((3, grey.shape[0]), np.float64)
            self._cols = np.zeros((3, grey.shape[1]), np.float64)
        if grey.shape != (self._rows.shape[1], self._cols.shape[1]):
            return  # a frame of another size (a stream that changes size) says nothing about these bars
        for stats, axis in ((self._rows, 1), (self._cols, 0)):
            np.maximum(stats[0], grey.max(axis=axis), out=stats[0])
            stats[1] += grey.sum(axis=axis, dtype=np.float64)
            stats[2] += np.square(grey, dtype=np.float64).sum(axis=axis)
        self._count_rows += grey.shape[1]
        self._count_cols += grey.shape[0]

    def borders(self) -> Borders:
        if self._rows is None:
            return Borders()
        top, bottom = _edge_runs(_is_bar(self._rows, self._count_rows))
        left, right = _edge_runs(_is_bar(self._cols, self._count_cols))
        h, w = self._rows.shape[1], self._cols.shape[1]
        if h - top - bottom < MIN_KEPT * h or w - left - right < MIN_KEPT * w:
            return Borders()
        return Borders(top, bottom, left, right)


def find_borders(frames: np.ndarray) -> Borders:
    """The black borders of ``frames`` ``[N, H, W, 3]`` uint8 RGB (module docstring)."""
    profile = BorderProfile()
    for frame in frames:
        profile.add(frame)
    return profile.borders()


def _is_bar(stats: np.ndarray, count: int) -> np.ndarray:
    mean = stats[1] / count
    std = np.sqrt(np.maximum(stats[2] / count - mean**2, 0.0))
    return (stats[0] <= BLACK_LEVEL) & (std <= MAX_BORDER_STD)


def _edge_runs(bar: np.ndarray) -> tuple[int, int]:
    """Lengths of the runs of True at the start and at the end of ``bar`` (all True: the whole length twice,
    which the MIN_KEPT test then rejects)."""
    first_false = np.flatnonzero(~bar)
    if len(first_false) == 0:
        return len(bar), len(bar)
    return int(first_false[0]), int(len(bar) - 1 - first_false[-1])
